# After a reboot, Node-RED comes back by itself, the flow from 02 answers,
# and the hardening holds. (Runs after 02 in the same boot.)
need_redwarden
depends_on 02-apply-works

reboot_ct

body=""
for _ in $(seq 30); do body=$(http GET "/lab-echo?q=42") && break; sleep 1; done
assert_eq "echo:42" "$body" "GET /lab-echo?q=42 after reboot"

s=$(stat_ct /home/pi/.node-red/settings.js)
[[ "$s" == "640 root "* ]] || fail "settings.js is '$s' after reboot, want 640 root:<group>"
for f in flows_cred.json .config.runtime.json; do
    s=$(stat_ct "/home/pi/.node-red/$f")
    [[ "$s" == 600\ * ]] || fail "$f is '$s' after reboot, want 0600"
done

rc=$(redwarden_json check)
fixable=$(finding_ids fixable) || fail "check --json is not the expected JSON"
[[ -z "$fixable" ]] || fail "fixable findings after reboot: $(echo "$fixable" | tr '\n' ' ')"
log "check after reboot: rc $rc, remaining: $(finding_ids | tr '\n' ' ')"
