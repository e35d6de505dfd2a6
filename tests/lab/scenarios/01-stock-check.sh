# shellcheck shell=bash
# On the untouched installer state, `redwarden check --json` reports the
# known problems and exits 1.
need_redwarden

# make sure the credential file exists: deploy a flow with a credentialed node
if [[ "$(stat_ct /home/pi/.node-red/flows_cred.json)" == missing ]]; then
    deploy_flow '[{"id":"lab-tab","type":"tab","label":"lab"},
      {"id":"lab-broker","type":"mqtt-broker","name":"lab","broker":"127.0.0.1","port":"1883",
       "credentials":{"user":"lab","password":"s3cret"}}]'
    for _ in $(seq 20); do [[ "$(stat_ct /home/pi/.node-red/flows_cred.json)" != missing ]] && break; sleep 0.5; done
fi
# the installer state, judged from outside
assert_eq "644 pi pi" "$(stat_ct /home/pi/.node-red/flows_cred.json)" "stock flows_cred.json"
assert_eq "644 pi pi" "$(stat_ct /home/pi/.node-red/.config.runtime.json)" "stock .config.runtime.json"
assert_eq "644 pi pi" "$(stat_ct /home/pi/.node-red/settings.js)" "stock settings.js"

rc=$(redwarden_json check)
assert_eq 1 "$rc" "redwarden check exit code on the stock state"
ids=$(finding_ids) || fail "check --json is not the expected JSON: $(head -c 200 "$LAB_RUN/rw.json")"
log "findings: $(echo "$ids" | tr '\n' ' ')"
for want in user.service-login-user user.service-sudo perms.credentials-readable perms.settings-writable; do
    grep -qx "$want" <<<"$ids" || fail "finding $want missing (got: $(echo "$ids" | tr '\n' ' '))"
done
