# shellcheck shell=bash
# A crash loop ends visibly instead of flapping forever. A flow whose exec node runs
# `kill -9 $PPID` as soon as the flows start kills Node-RED at every start: the supervisor
# restarts it at once, then after a growing pause (capped by backoff_max_secs), and after
# crash_loop_exits exits starts it once in safe mode (flows stopped), where it serves. When
# that one dies too (SIGKILL from the host), the supervisor gives up with exit code 3, which
# the unit does not restart: redwarden.service is failed and says why. Leaves
# redwarden.service serving as it found it (flows and configuration restored, reset-failed).
need_redwarden
depends_on 02-apply-works
rw_baseline
on_exit rw_restore

backoff_max=2 exits=5
unit_show() { in_ct systemctl show -P "$1" redwarden.service; }

# Stopped, the crash flow goes straight into flows.json (a deploy would race the crash).
in_ct systemctl stop redwarden.service
# stable_after_secs: under qemu-user a start alone takes half a minute; no run may count as stable.
rw_write_config "[supervise]
backoff_max_secs = $backoff_max
crash_loop_exits = $exits
crash_loop_window_secs = 900
stable_after_secs = 600
safe_mode = true"
in_ct sh -c 'cat >/var/lib/node-red/flows.json && chown nodered:nodered /var/lib/node-red/flows.json && chmod 0600 /var/lib/node-red/flows.json' <<'EOF'
[{"id":"cl-tab","type":"tab","label":"crash"},
 {"id":"cl-inj","type":"inject","z":"cl-tab","once":true,"onceDelay":0.2,"repeat":"","topic":"","payload":"","payloadType":"date","wires":[["cl-exec"]]},
 {"id":"cl-exec","type":"exec","z":"cl-tab","command":"kill -9 $PPID","addpay":"","append":"","useSpawn":"false","timer":"","oldrc":false,"wires":[[],[],[]]}]
EOF
restarts0=$(unit_show NRestarts)
t0=$(now)
in_ct systemctl start --no-block redwarden.service

# ---- 1. Restarts with a growing, capped pause, then safe mode, where Node-RED serves
deadline=$((SECONDS + (exits + 1) * $(lab_slow 12) + 30))
phase=none
while ((SECONDS < deadline)); do
    phase=$(rw_phase)
    [[ "$phase" == safe-mode && "$(json_get "$LAB_RUN/status.json" probe_ok)" == true ]] && break
    sleep 0.5
done
to_safe=$(elapsed "$t0")
[[ "$phase" == safe-mode ]] || fail "no safe mode after the crash loop (phase $phase): $(rw_journal "$t0" | grep -c 'redwarden: started Node-RED') starts"
assert_eq "true" "$(json_get "$LAB_RUN/status.json" safe_mode)" "safe_mode in redwarden status"
assert_eq "$exits" "$(json_get "$LAB_RUN/status.json" restarts)" "restarts in redwarden status"
last_exit=$(json_get "$LAB_RUN/status.json" last_exit)
[[ "$last_exit" == "killed by signal 9"* ]] || fail "last_exit in redwarden status: '$last_exit', want 'killed by signal 9'"
[[ "$(unit_show StatusText)" == "crash loop: Node-RED pid "*" serves in safe mode, flows stopped"* ]] ||
    fail "StatusText in safe mode: $(unit_show StatusText)"
assert "the editor answers in safe mode" http GET / >/dev/null
# The pauses, from the supervisor's own lines: "... restarting[ in safe mode (...)] in X s".
mapfile -t pauses < <(rw_journal "$t0" | sed -n 's/.*redwarden: Node-RED killed by signal 9.* after [0-9]* s; restarting\( in safe mode\)\{0,1\}.* in \([0-9.]*\) s$/\2\1/p')
assert_eq "$exits" "${#pauses[@]}" "restarts in the journal ('killed by signal 9 ...; restarting ...')"
python3 - "$backoff_max" "${pauses[@]}" <<'EOF' || fail "restart pauses ${pauses[*]}: want 0, then about 1 s, then growing up to ${backoff_max} s (±20 %), the last one into safe mode"
import sys
cap, pauses = float(sys.argv[1]), sys.argv[2:]
secs = [float(p.split()[0]) for p in pauses]
ok = secs[0] == 0 and 0.8 <= secs[1] <= 1.2 and all(s <= cap for s in secs)
ok = ok and all(secs[i] >= min(2 ** (i - 1), cap) * 0.8 - 0.05 for i in range(1, len(secs)))
ok = ok and pauses[-1].endswith("in safe mode") and not any(p.endswith("in safe mode") for p in pauses[:-1])
sys.exit(not ok)
EOF
rw_journal "$t0" | grep "redwarden: started Node-RED, pid [0-9]*, in safe mode" >/dev/null || fail "no 'started Node-RED, pid N, in safe mode' in the journal"
note "crash loop: $exits exits, pauses $(printf '%s s, ' "${pauses[@]}" | sed 's/ in safe mode s/ s (into safe mode)/; s/, $//'); safe mode serves after $to_safe"

# ---- 2. Safe mode dies too: the supervisor gives up, the unit fails and stays failed
nr=$(nr_pid)
[[ -n "$nr" ]] || fail "no Node-RED process in safe mode"
t1=$(now)
proc_kill KILL "$nr"
deadline=$((SECONDS + $(lab_slow 20)))
while [[ "$(unit_show ActiveState)" != failed ]] && ((SECONDS < deadline)); do sleep 0.3; done
gave_up=$(elapsed "$t1")
assert_eq "failed" "$(unit_show ActiveState)" "redwarden.service after safe mode died too"
assert_eq "exit-code" "$(unit_show Result)" "Result of redwarden.service"
assert_eq "3" "$(unit_show ExecMainStatus)" "ExecMainStatus of redwarden.service (the crash-loop exit code)"
sleep 5 # RestartSec=2: a restart would have begun by now
assert_eq "failed" "$(unit_show ActiveState)" "redwarden.service 5 s later (RestartPreventExitStatus=3)"
assert_eq "$restarts0" "$(unit_show NRestarts)" "NRestarts (systemd did not restart the supervisor)"
status_text=$(unit_show StatusText)
[[ "$status_text" == "gave up: crash loop ("* ]] || fail "StatusText after giving up: '$status_text'"
rw_journal "$t1" | grep "redwarden: Node-RED is in a crash loop: .*giving up so the unit fails" >/dev/null ||
    fail "no 'Node-RED is in a crash loop: ... giving up so the unit fails' in the journal"
[[ -z "$(ct_procs nodered)" ]] || fail "Node-RED processes left after the give-up: $(ct_procs nodered | tr '\n' ';')"
! http GET / >/dev/null 2>&1 || fail "something still answers on port 1880 after the give-up"
note "safe mode killed: the supervisor gave up after $gave_up; unit failed, Result=exit-code, ExecMainStatus=3, not restarted; StatusText: $status_text"

# `redwarden status` must say so too, for a user without access to the journal.
status_out=$(in_ct runuser -u nobody -- redwarden status 2>&1) || true
[[ "$status_out" =~ (^|$'\n')phase[[:space:]]+crash-loop ]] ||
    fail "after the give-up, redwarden status does not say crash-loop: '$status_out' (/run/redwarden: $(in_ct sh -c 'ls -A /run/redwarden 2>&1 | tr "\n" " "'); the unit's RuntimeDirectory= is removed when it stops)"
