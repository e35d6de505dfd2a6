# shellcheck shell=bash
# The supervisor under real systemd: `redwarden run` is redwarden.service's main process and
# Node-RED its one child. Any user reads its state (`redwarden status`); from the host's /proc
# it is the service user with no capabilities and no_new_privs, and its environment is closed
# to that user. kill -9 of it, and a frozen supervisor (systemd's watchdog), both end with
# exactly one Node-RED serving again. Leaves redwarden.service serving as it found it.
need_redwarden
depends_on 02-apply-works
rw_baseline
on_exit rw_restore

nodered_uid=$(awk -F: '$1 == "nodered" { print $3 }' "$LAB_ROOT/etc/passwd")
[[ -n "$nodered_uid" ]] || fail "no nodered user in the container"

# exactly_one_nodered WHAT: one Node-RED process in the container, the child of the unit's
# main process, and nothing else in the unit's cgroup once the supervisor's audit (a
# `redwarden check` child evaluating settings.js with node, for a while after each start) has
# ended. Prints its host pid.
exactly_one_nodered() {
    local -a pids
    local main sup cg procs
    [[ -n "$(rw_wait_findings "$(lab_slow 30)")" ]] || fail "$1: the supervisor's audit never finished: $(cat "$LAB_RUN/status.json")"
    mapfile -t pids < <(ct_procs nodered | awk '{ print $1 }')
    [[ ${#pids[@]} -eq 1 ]] || fail "$1: ${#pids[@]} Node-RED processes in the container, want 1: $(ct_procs nodered | tr '\n' ';')"
    main=$(rw_main_pid)
    sup=$(host_pid "$main")
    assert_eq "$sup" "$(proc_read "${pids[0]}" stat | awk '{ print $4 }')" "$1: Node-RED's parent is the unit's main process ($main)"
    cg=$(in_ct systemctl show -P ControlGroup redwarden.service)
    # cgroup v2, or the hybrid layout of a cgroup v1 host. A process outside the container's
    # pid namespace reads as 0: one still exiting, or another lab's when two labs run at once
    # (their nspawn payload cgroups can coincide); only the container's own are judged.
    # shellcheck disable=SC2016 # expanded by the container's sh
    procs=$(in_ct sh -c 'for d in /sys/fs/cgroup /sys/fs/cgroup/unified /sys/fs/cgroup/systemd; do
        [ -r "$d$1/cgroup.procs" ] && exec cat "$d$1/cgroup.procs"; done; exit 1' _ "$cg" | { grep -vx 0 || true; } | sort -n | tr '\n' ' ')
    assert_eq "$(printf '%s\n' "$main" "$(ct_procs all | awk -v p="${pids[0]}" '$1 == p { print $2 }')" | sort -n | tr '\n' ' ')" \
        "$procs" "$1: processes in redwarden.service's cgroup (supervisor, Node-RED)"
    printf '%s\n' "${pids[0]}"
}

# ---- 1. `redwarden status`, as users without any privilege
for user in nobody pi; do
    out=$(in_ct runuser -u "$user" -- redwarden status 2>&1) || fail "redwarden status as $user failed: $out"
    [[ "$out" =~ (^|$'\n')phase[[:space:]]+serving ]] || fail "redwarden status as $user does not say serving: $out"
done
rw_status_json || fail "redwarden status --json as nobody failed: $(cat "$LAB_RUN/status.err")"
main=$(rw_main_pid)
nr=$(exactly_one_nodered "before")
nr_ct=$(ct_procs all | awk -v p="$nr" '$1 == p { print $2 }')
python3 - "$LAB_RUN/status.json" "$main" "$nr_ct" <<'EOF' || fail "redwarden status --json: $(cat "$LAB_RUN/status.json")"
import json, sys
s = json.load(open(sys.argv[1]))
want = {"phase": "serving", "supervisor_pid": int(sys.argv[2]), "nodered_pid": int(sys.argv[3]),
        "probe_ok": True, "safe_mode": False}
bad = ["%s=%r (want %r)" % (k, s.get(k), v) for k, v in want.items() if s.get(k) != v]
for k in ("uptime_secs", "rss_bytes", "started_at", "updated_at", "restarts"):
    if not isinstance(s.get(k), int): bad.append("%s=%r (want a number)" % (k, s.get(k)))
if bad:
    print("; ".join(bad), file=sys.stderr); sys.exit(1)
EOF
findings=$(rw_wait_findings "$(lab_slow 30)")
[[ -n "$findings" ]] || fail "redwarden status never reports a findings count: $(cat "$LAB_RUN/status.json")"
note "status: 'redwarden status' as nobody and pi says serving; --json parses (supervisor $main, Node-RED $nr_ct, $findings findings)"

# ---- 2. The supervisor as the host sees it
sup=$(host_pid "$main")
[[ -n "$sup" ]] || fail "MainPID $main has no process"
assert_eq "$nodered_uid $nodered_uid $nodered_uid $nodered_uid" "$(host_status_of "$sup" Uid | xargs)" "supervisor's Uid (real, effective, saved, fs)"
assert_eq "0000000000000000" "$(host_status_of "$sup" CapEff)" "supervisor's CapEff"
assert_eq "0000000000000000" "$(host_status_of "$sup" CapPrm)" "supervisor's CapPrm"
assert_eq "1" "$(host_status_of "$sup" NoNewPrivs)" "supervisor's NoNewPrivs"
assert_eq "$nr" "$(proc_read "$nr" stat | awk '{ print $5 }')" "Node-RED leads its own process group"
# Non-dumpable: the kernel gives its /proc files to root, while Node-RED's stay the service user's.
assert_eq "0" "$(proc_owner "$sup" environ)" "owner of the supervisor's /proc/PID/environ (non-dumpable)"
assert_eq "$nodered_uid" "$(proc_owner "$nr" environ)" "owner of Node-RED's /proc/PID/environ"
if out=$(in_ct runuser -u nodered -- cat "/proc/$main/environ" 2>&1); then
    fail "the service user reads the supervisor's environment: $(tr '\0' ' ' <<<"$out" | head -c 200)"
fi
note "identity: supervisor uid $nodered_uid (nodered), CapEff 0, NoNewPrivs 1; /proc/$main/environ: '${out##*: }' for nodered"

# ---- 3. kill -9 of the supervisor: systemd restarts it; no orphan, no second Node-RED
restarts0=$(in_ct systemctl show -P NRestarts redwarden.service)
t0=$(now)
proc_kill KILL "$sup"
new=$(wait_serving "$(lab_slow 60)" "$nr") || fail "not serving again after kill -9 of the supervisor: $WAITED"
took=$(elapsed "$t0")
! proc_alive "$nr" || fail "the old Node-RED (host pid $nr) survived its supervisor's kill -9"
assert_one_restart "$restarts0" "$t0" "after kill -9 of the supervisor"
main2=$(rw_main_pid)
[[ "$main2" != "$main" ]] || fail "MainPID is still $main after kill -9"
assert_eq "$new" "$(exactly_one_nodered "after kill -9")" "the Node-RED that serves"
note "kill -9 of the supervisor (MainPID $main): Node-RED serves again in $took (MainPID $main2, one Node-RED)"

# ---- 4. A frozen supervisor: no watchdog pings, systemd kills and restarts it
main=$main2 nr=$new
sup=$(host_pid "$main")
restarts0=$(in_ct systemctl show -P NRestarts redwarden.service)
t0=$(now)
proc_kill STOP "$sup"
# Node-RED itself is not stopped with it: it answers while its supervisor is frozen.
sleep 3
assert "Node-RED answers while its supervisor is stopped" http GET / >/dev/null
deadline=$((SECONDS + 60))
while [[ "$(rw_main_pid)" == "$main" ]] && ((SECONDS < deadline)); do sleep 0.5; done
killed_after=$(elapsed "$t0")
[[ "$(rw_main_pid)" != "$main" ]] || { proc_kill CONT "$sup"; fail "the stopped supervisor (MainPID $main) was still the main process 60 s later: no watchdog"; }
new=$(wait_serving "$(lab_slow 60)" "$nr") || fail "not serving again after the watchdog restart: $WAITED"
took=$(elapsed "$t0")
wd=$(rw_journal_at "$t0" "Watchdog timeout")
[[ -n "$wd" ]] || fail "no 'Watchdog timeout' from systemd in the journal"
assert_one_restart "$restarts0" "$t0" "after the watchdog"
exactly_one_nodered "after the watchdog" >/dev/null
note "SIGSTOP of the supervisor: systemd's watchdog fired after ${wd}s, MainPID replaced after $killed_after, Node-RED serves again after $took"
