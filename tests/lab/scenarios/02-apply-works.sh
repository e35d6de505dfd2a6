# shellcheck shell=bash
# The package on the installer's state, as an administrator installs it: `dpkg -i`, a reboot.
# At boot redwarden-apply.service fixes what it can and adopts Node-RED into the dedicated user
# and redwarden.service's sandbox; `redwarden apply` by hand then has nothing fixable left, and
# Node-RED keeps working: a flow deployed before (with a stored credential, so its key must
# travel) answers after, without a redeploy.
need_redwarden

# Before: pi's Node-RED serves /lab-cred, which calls /lab-secret through an http request node
# with basic auth from its stored credentials; /lab-secret says "ok" only for the right ones.
deploy_flow '[{"id":"lab-tab","type":"tab","label":"lab"},
  {"id":"lab-in","type":"http in","z":"lab-tab","url":"/lab-echo","method":"get","wires":[["lab-fn"]]},
  {"id":"lab-fn","type":"function","z":"lab-tab","func":"msg.payload = \"echo:\" + msg.req.query.q;\nreturn msg;","outputs":1,"wires":[["lab-out"]]},
  {"id":"lab-out","type":"http response","z":"lab-tab","statusCode":"","wires":[]},
  {"id":"sec-in","type":"http in","z":"lab-tab","url":"/lab-secret","method":"get","wires":[["sec-fn"]]},
  {"id":"sec-fn","type":"function","z":"lab-tab","func":"const want = \"Basic \" + Buffer.from(\"lab:s3cret\").toString(\"base64\");\nmsg.payload = msg.req.headers.authorization === want ? \"ok\" : \"denied\";\nreturn msg;","outputs":1,"wires":[["sec-out"]]},
  {"id":"sec-out","type":"http response","z":"lab-tab","statusCode":"","wires":[]},
  {"id":"cred-in","type":"http in","z":"lab-tab","url":"/lab-cred","method":"get","wires":[["cred-req"]]},
  {"id":"cred-req","type":"http request","z":"lab-tab","method":"GET","ret":"txt","url":"http://127.0.0.1:1880/lab-secret","authType":"basic","credentials":{"user":"lab","password":"s3cret"},"wires":[["cred-out"]]},
  {"id":"cred-out","type":"http response","z":"lab-tab","statusCode":"","wires":[]}]'
body=""
for _ in $(seq 20); do body=$(http GET "/lab-cred") && break; sleep 0.5; done
assert_eq "ok" "$body" "GET /lab-cred before apply (stored credential)"

# 15-bake-time starts an image from here: pi's userDir as the package finds it.
rm -rf "$LAB_RUN/bake-input" && mkdir -p "$LAB_RUN/bake-input"
cp -a "$LAB_ROOT/home/pi/.node-red" "$LAB_RUN/bake-input/pi-userdir"

# The lab's copies of the binaries go; the package brings its own to /usr/bin.
in_ct rm -f /usr/local/bin/redwarden /usr/local/bin/redwarden-front
# The lab's own configuration (arm64: no nftables under qemu-user) is the administrator's: kept.
in_ct dpkg -i --force-confdef --force-confold /root/redwarden.deb >&2 || fail "dpkg -i redwarden.deb failed"
for unit in redwarden-apply.service redwarden-drift.path redwarden-drift.timer; do
    assert_eq "enabled" "$(in_ct systemctl is-enabled "$unit" || true)" "$unit after dpkg -i"
done
in_ct getent passwd nodered >/dev/null || fail "the package's postinst made no nodered account"
assert_eq "active" "$(in_ct systemctl is-active nodered.service || true)" "pi's Node-RED after dpkg -i (nothing applied before the reboot)"
reboot_ct
# redwarden-apply.service adopted at boot and started redwarden.service on probation.
state=""
for _ in $(seq "$(lab_slow 120)"); do
    state=$(in_ct systemctl is-active redwarden.service || true)
    [[ "$state" == active ]] && break
    sleep 1
done
assert_eq "active" "$state" "redwarden.service after the reboot (adopted by redwarden-apply.service at boot)"
in_ct journalctl -b -u redwarden-apply.service -o cat --no-pager | grep "adopt the Node-RED of nodered.service" >&2 ||
    fail "redwarden-apply.service did not adopt at boot"

rc=0
in_ct redwarden apply || rc=$?
[[ $rc -eq 0 || $rc -eq 1 ]] || fail "redwarden apply exited $rc"

rc=$(redwarden_json check)
fixable=$(finding_ids fixable) || fail "check --json is not the expected JSON"
[[ -z "$fixable" ]] || fail "fixable findings remain after apply: $(echo "$fixable" | tr '\n' ' ')"
log "check after apply: rc $rc, remaining: $(finding_ids | tr '\n' ' ')"

# Adopted: redwarden.service runs Node-RED as nodered from /var/lib/node-red; the installer's
# unit is off, and the original folder is still there, tightened.
# apply restarts redwarden.service (--no-block) once it has written the enforced settings.
state=""
for _ in $(seq 120); do
    state=$(in_ct systemctl is-active redwarden.service || true)
    [[ "$state" == active ]] && break
    sleep 0.5
done
assert_eq "active" "$state" "redwarden.service"
assert_eq "inactive" "$(in_ct systemctl is-active nodered.service || true)" "nodered.service"
wait_nodered 120
pid=$(nr_pid)
[[ -n "$pid" ]] || fail "no Node-RED process found"
uid=$(host_status_of "$pid" Uid | awk '{print $1}')
assert_eq "$(awk -F: '$1 == "nodered" {print $3}' "$LAB_ROOT/etc/passwd")" "$uid" "Node-RED's uid (from the host's /proc)"
assert_eq "0000000000000000" "$(host_status_of "$pid" CapEff)" "Node-RED's effective capabilities"
assert_eq "1" "$(host_status_of "$pid" NoNewPrivs)" "Node-RED's NoNewPrivs"
assert_eq "2" "$(host_status_of "$pid" Seccomp)" "Node-RED's seccomp mode"
assert_eq "640 root nodered" "$(stat_ct /var/lib/node-red/settings.js)" "adopted settings.js"
for f in flows_cred.json .config.runtime.json; do
    assert_eq "600 nodered nodered" "$(stat_ct "/var/lib/node-red/$f")" "adopted $f"
    s=$(stat_ct "/home/pi/.node-red/$f")
    [[ "$s" == "600 pi "* ]] || fail "original $f is '$s', want 600 pi"
done
assert_eq "640 root pi" "$(stat_ct /home/pi/.node-red/settings.js)" "original settings.js"

# The flows and credentials came along: no redeploy, and the credential still decrypts.
body=""
for _ in $(seq 20); do body=$(http GET "/lab-echo?q=42") && break; sleep 0.5; done
assert_eq "echo:42" "$body" "GET /lab-echo?q=42 after adoption"
assert_eq "ok" "$(http GET /lab-cred)" "GET /lab-cred after adoption (the credential key travelled)"

# What on-boot apply made, for 15-bake-time to compare a baked image with.
machine_state_digest >"$LAB_RUN/boot-state.txt" || fail "state_digest.py failed"
