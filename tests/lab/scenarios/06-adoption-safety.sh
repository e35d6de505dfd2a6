# shellcheck shell=bash
# Adoption's safety net under real systemd. `apply --undo-adopt` gives Node-RED back to the
# installer's unit; then an adoption whose new unit cannot start (node = /bin/false) is
# handed back by systemd (OnFailure=) and reverted by apply, so Node-RED never stops serving
# for good. Finally a normal apply adopts again, from a fresh copy.
need_redwarden
depends_on 02-apply-works

serves_cred() {
    local body=""
    for _ in $(seq 60); do body=$(http GET /lab-cred) && break; sleep 1; done
    assert_eq "ok" "$body" "$1"
}
# The flows of 02 (with /lab-cred) are in both folders; 04/05 replaced the adopted ones.
rc=0
in_ct redwarden apply --undo-adopt || rc=$?
[[ $rc -eq 0 || $rc -eq 1 ]] || fail "apply --undo-adopt exited $rc"
for _ in $(seq 30); do [[ "$(in_ct systemctl is-active nodered.service || true)" == active ]] && break; sleep 1; done
assert_eq "active" "$(in_ct systemctl is-active nodered.service || true)" "nodered.service after --undo-adopt"
# Conflicts= stops redwarden.service, which is ordered after nodered.service, before it starts.
for _ in $(seq 30); do [[ "$(in_ct systemctl is-active redwarden.service || true)" == inactive ]] && break; sleep 1; done
assert_eq "inactive" "$(in_ct systemctl is-active redwarden.service || true)" "redwarden.service after --undo-adopt"
serves_cred "pi's Node-RED serves its own flows again"

# A retry whose new unit fails: systemd starts the old one, apply restores its boot links.
in_ct sh -c 'rm /var/lib/redwarden/adoption && mkdir -p /etc/redwarden && printf "[nodered]\nnode = \"/bin/false\"\n" > /etc/redwarden/redwarden.toml'
rc=0
in_ct redwarden apply || rc=$?
assert_eq 1 "$rc" "apply whose adoption fails (findings remain)"
in_ct grep -q '^phase=failed' /var/lib/redwarden/adoption || fail "the failed adoption is not recorded"
assert_eq "active" "$(in_ct systemctl is-active nodered.service || true)" "nodered.service after the failed switch"
assert_eq "enabled" "$(in_ct systemctl is-enabled nodered.service || true)" "nodered.service boots again"
[[ "$(in_ct systemctl is-enabled redwarden.service || true)" != enabled ]] || fail "redwarden.service still enabled after the revert"
serves_cred "Node-RED still serves after the failed switch"
redwarden_json check >/dev/null
# Not grep -q: it would leave while finding_ids still writes, and pipefail would see EPIPE.
finding_ids | grep -x adopt.failed >/dev/null || fail "check does not report adopt.failed"

# What the old Node-RED writes between the copy and its stop is carried over (adopt-sync):
# here, global context that it holds in memory and writes to its file only as it stops. A
# store of its own ("file"): the default store stays in memory, so the later scenarios' flows
# (09 keeps 40 MB buffers in context) are not written to disk as Node-RED stops.
in_ct sh -c 'sed -i "s|^module.exports = {|&\n    contextStorage: { default: { module: \"memory\" }, file: { module: \"localfilesystem\", config: { flushInterval: 3600 } } },|" /home/pi/.node-red/settings.js'
in_ct systemctl restart nodered.service
wait_nodered
deploy_flow '{"id":"ctx-tab","label":"context","nodes":[
  {"id":"ctx-set-in","type":"http in","z":"ctx-tab","url":"/lab-ctx-set","method":"get","wires":[["ctx-set"]]},
  {"id":"ctx-set","type":"function","z":"ctx-tab","func":"global.set(\"lab\", msg.req.query.v, \"file\");\nmsg.payload = \"set\";\nreturn msg;","outputs":1,"wires":[["ctx-set-out"]]},
  {"id":"ctx-set-out","type":"http response","z":"ctx-tab","statusCode":"","wires":[]},
  {"id":"ctx-get-in","type":"http in","z":"ctx-tab","url":"/lab-ctx","method":"get","wires":[["ctx-get"]]},
  {"id":"ctx-get","type":"function","z":"ctx-tab","func":"msg.payload = String(global.get(\"lab\", \"file\"));\nreturn msg;","outputs":1,"wires":[["ctx-get-out"]]},
  {"id":"ctx-get-out","type":"http response","z":"ctx-tab","statusCode":"","wires":[]}]}' /flow
ctx_value="v$RANDOM$RANDOM"
for _ in $(seq 20); do [[ "$(http GET "/lab-ctx-set?v=$ctx_value")" == set ]] && break; sleep 0.5; done
assert_eq "$ctx_value" "$(http GET /lab-ctx)" "pi's Node-RED holds the context value"
! grep -rqs "$ctx_value" "$LAB_ROOT/home/pi/.node-red/context" ||
    fail "the context value is on disk before the switch: this would not test the carry-over"

# Fixed configuration, failure record removed: apply adopts again.
in_ct sh -c 'rm /etc/redwarden/redwarden.toml /var/lib/redwarden/adoption'
rc=0
in_ct redwarden apply || rc=$?
# Findings apply cannot fix (the Node-RED settings audit) may remain; nothing fixable may.
[[ $rc -eq 0 || $rc -eq 1 ]] || fail "apply after fixing the configuration exited $rc"
redwarden_json check >/dev/null
fixable=$(finding_ids fixable)
[[ -z "$fixable" ]] || fail "fixable findings after adopting again: $(echo "$fixable" | tr '\n' ' ')"
assert_eq "active" "$(in_ct systemctl is-active redwarden.service)" "redwarden.service adopted again"
assert_eq "inactive" "$(in_ct systemctl is-active nodered.service || true)" "nodered.service after adopting again"
# A retry copies afresh (pi's flows of 02, not the suite's that later scenarios deployed in the
# earlier copy), and keeps the earlier copy aside.
serves_cred "the fresh copy serves pi's flows"
compgen -G "$LAB_ROOT/var/lib/node-red.redwarden-previous-*" >/dev/null || fail "the earlier copy was not kept aside"
grep -rqs "$ctx_value" "$LAB_ROOT/var/lib/node-red/context" ||
    fail "the context pi's Node-RED wrote as it stopped is not in the adopted copy"
assert_eq "$ctx_value" "$(http GET /lab-ctx)" "the adopted Node-RED has the context written after the copy"
in_ct journalctl -u redwarden.service -o cat --no-pager | grep "carried over" >&2 ||
    fail "adopt-sync did not run before the adopted Node-RED"
