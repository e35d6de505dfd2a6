# shellcheck shell=bash
# A flows.json left empty (a power cut on an SD card mid-write) is restored before Node-RED
# starts, so the flows answer again: from the copy the supervisor takes before each start,
# into a file that is still the service user's and 0600. Then the same with a flow deployed
# after the last start, which must survive too. Leaves redwarden.service serving as it found it.
need_redwarden
depends_on 02-apply-works
rw_baseline
on_exit rw_restore

flows=/var/lib/node-red/flows.json
FIXED='{"id":"fx-tab","type":"tab","label":"fixed"},
  {"id":"fx-in","type":"http in","z":"fx-tab","url":"/lab-fixed","method":"get","wires":[["fx-fn"]]},
  {"id":"fx-fn","type":"function","z":"fx-tab","func":"msg.payload = \"fixed-ok\";\nreturn msg;","outputs":1,"wires":[["fx-out"]]},
  {"id":"fx-out","type":"http response","z":"fx-tab","statusCode":"","wires":[]}'
LATE='{"id":"lt-in","type":"http in","z":"fx-tab","url":"/lab-late","method":"get","wires":[["lt-fn"]]},
  {"id":"lt-fn","type":"function","z":"fx-tab","func":"msg.payload = \"late-ok\";\nreturn msg;","outputs":1,"wires":[["lt-out"]]},
  {"id":"lt-out","type":"http response","z":"fx-tab","statusCode":"","wires":[]}'

answers() {
    local body=""
    for _ in $(seq 20); do body=$(http GET "$1") && break; sleep 0.5; done
    printf '%s' "$body"
}

# truncate_and_start: stop, empty flows.json in place (owner and mode kept), start; prints
# the start's time for rw_journal.
truncate_and_start() {
    local t
    in_ct systemctl stop redwarden.service
    in_ct truncate -s 0 "$flows"
    assert_eq "600 nodered nodered 0" "$(stat_ct "$flows") $(stat -c %s "$LAB_ROOT$flows")" "flows.json emptied in place"
    t=$(now)
    in_ct systemctl start redwarden.service || true
    wait_serving "$(lab_slow 60)" >/dev/null || fail "not serving after starting with an empty flows.json: $WAITED"
    printf '%s\n' "$t"
}

# ---- 1. A flow that was running at the last start
t0=$(now)
deploy_flow "[$FIXED]"
assert_eq "fixed-ok" "$(answers /lab-fixed)" "GET /lab-fixed once deployed"
in_ct systemctl restart redwarden.service
wait_serving "$(lab_slow 60)" >/dev/null || fail "not serving after a restart: $WAITED"
# Copied once the supervisor saw the deploy, or when Node-RED stopped, or before the start:
# whichever comes first (under qemu the deploy's copy can precede the restart).
rw_journal "$t0" | grep -E "redwarden: backed up (the deployed )?flows to /var/lib/node-red/.redwarden/backups/" >/dev/null ||
    fail "no 'backed up flows to' in the journal between the deploy and the restart"

t1=$(truncate_and_start)
assert_eq "fixed-ok" "$(answers /lab-fixed)" "GET /lab-fixed after flows.json was emptied"
restored=$(rw_journal "$t1" | grep -o "flows.json was empty or damaged: restored it from [^ ]*" | sed -n 1p || true)
[[ -n "$restored" ]] || fail "no 'flows.json was empty or damaged: restored it from ...' in the journal"
assert_eq "600 nodered nodered" "$(stat_ct "$flows")" "restored flows.json"
python3 -c 'import json, sys; json.load(open(sys.argv[1]))' "$LAB_ROOT$flows" || fail "the restored flows.json is not JSON"
assert_eq "700 nodered nodered" "$(stat_ct /var/lib/node-red/.redwarden/backups)" "the backups folder"
note "flows.json emptied: $restored; /lab-fixed answers again"

# ---- 2. A flow deployed after the last start: the editor's usual way of working
deploy_flow "[$FIXED,$LATE]"
assert_eq "late-ok" "$(answers /lab-late)" "GET /lab-late once deployed"
t2=$(truncate_and_start)
restored=$(rw_journal "$t2" | grep -o "flows.json was empty or damaged: restored it from [^ ]*" | sed -n 1p || true)
[[ -n "$restored" ]] || fail "no 'flows.json was empty or damaged' line for the second restore"
assert_eq "fixed-ok" "$(answers /lab-fixed)" "GET /lab-fixed after the second restore"
late=$(answers /lab-late) || true
[[ "$late" == late-ok ]] ||
    fail "a flow deployed after the last start was lost: once flows.json was emptied, GET /lab-late answers HTTP $(http_code); the supervisor restored ${restored##* }, a copy older than the deploy (copies are made only when Node-RED starts)"
note "a flow deployed after the last start survives too: $restored"
