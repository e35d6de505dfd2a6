# shellcheck shell=bash
# A hung Node-RED is replaced within a bound. A function node that never returns
# (`while (true) {}`) blocks Node-RED's event loop: probes get no answer, and SIGINT, which
# Node-RED handles on that loop, is never acted on, so the supervisor must SIGKILL it once the
# grace it gives a hung Node-RED is over (the probe timeout, at most the stop timeout). A
# Node-RED stopped with SIGSTOP from the host goes the same way. Each time a new Node-RED
# serves within probe_interval x probe_failures + probe timeout + stop timeout + one start.
# Leaves redwarden.service serving as it found it.
need_redwarden
depends_on 02-apply-works
rw_baseline
on_exit rw_restore

# The defaults, written out. A probe times out after half the interval (2.5 s).
interval=5 failures=3 probe_timeout=2.5 stop=10
rw_config "[supervise]
probe_interval_secs = $interval
probe_failures = $failures
stop_timeout_secs = $stop" >/dev/null
start=$(lab_slow 15)
bound=$(python3 -c 'import sys; print(int(float(sys.argv[1]) * int(sys.argv[2]) + float(sys.argv[3]) + int(sys.argv[4]) + int(sys.argv[5])))' \
    "$interval" "$failures" "$probe_timeout" "$stop" "$start")

deploy_flow '[{"id":"hg-tab","type":"tab","label":"hang"},
  {"id":"hg-in","type":"http in","z":"hg-tab","url":"/lab-hang","method":"get","wires":[["hg-fn"]]},
  {"id":"hg-fn","type":"function","z":"hg-tab","func":"while (true) {}\nreturn msg;","outputs":1,"wires":[["hg-out"]]},
  {"id":"hg-out","type":"http response","z":"hg-tab","statusCode":"","wires":[]},
  {"id":"ok-in","type":"http in","z":"hg-tab","url":"/lab-ok","method":"get","wires":[["ok-fn"]]},
  {"id":"ok-fn","type":"function","z":"hg-tab","func":"msg.payload = \"ok\";\nreturn msg;","outputs":1,"wires":[["ok-out"]]},
  {"id":"ok-out","type":"http response","z":"hg-tab","statusCode":"","wires":[]}]'
body=""
for _ in $(seq 20); do body=$(http GET /lab-ok) && break; sleep 0.5; done
assert_eq "ok" "$body" "GET /lab-ok before the hang"

busy_loop() { curl -s -o /dev/null --max-time 2 "$NR_URL/lab-hang" || true; }
sigstop() { proc_kill STOP "$1"; }

# hung WHAT TRIGGER: TRIGGER (given Node-RED's host pid) hangs Node-RED; a new one must serve
# within the bound, after the SIGINT went unheard for the whole grace.
hung() {
    local what=$1 old t0 took p1 p2 p3 declared killed grace
    old=$(nr_pid)
    t0=$(now)
    "$2" "$old"
    wait_serving "$((bound + 30))" "$old" >/dev/null || fail "$what: no new Node-RED serving $((bound + 30)) s later: $WAITED"
    took=$(elapsed "$t0")
    python3 -c 'import sys; sys.exit(float(sys.argv[1]) >= float(sys.argv[2]))' "${took%s}" "$bound" ||
        fail "$what: a new Node-RED served only after $took, want < ${bound}s"
    ! proc_alive "$old" || fail "$what: the hung Node-RED (host pid $old) is still there"
    p1=$(rw_journal_at "$t0" "probe 1 of $failures:")
    p2=$(rw_journal_at "$t0" "probe 2 of $failures:")
    p3=$(rw_journal_at "$t0" "probe 3 of $failures:")
    declared=$(rw_journal_at "$t0" "Node-RED hung: $failures probes in a row got no answer: stopping it")
    [[ -n "$declared" ]] || fail "$what: no 'hung: $failures probes in a row got no answer: stopping it' in the journal"
    grace=$(rw_journal "$t0" | sed -n 's/.*redwarden: Node-RED did not stop within \([0-9.]*\)s of SIGINT: killing it$/\1/p' | sed -n 1p)
    [[ -n "$grace" ]] || fail "$what: no 'Node-RED did not stop within ... of SIGINT: killing it' in the journal"
    killed=$(rw_journal_at "$t0" "Node-RED did not stop within ${grace}s of SIGINT: killing it")
    python3 -c 'import sys; g = float(sys.argv[3]); sys.exit(not (0 < g <= float(sys.argv[4]) and float(sys.argv[2]) - float(sys.argv[1]) >= g - 0.3))' \
        "$declared" "$killed" "$grace" "$stop" ||
        fail "$what: SIGKILL at +${killed}s for a hang declared at +${declared}s, with a grace of ${grace}s (want the whole grace, at most the ${stop}s stop timeout)"
    rw_status_json || fail "$what: redwarden status --json: $(cat "$LAB_RUN/status.err")"
    assert_eq "hung: $failures probes in a row got no answer" "$(json_get "$LAB_RUN/status.json" last_exit)" "$what: last_exit in redwarden status"
    assert_eq "ok" "$(http GET /lab-ok)" "$what: GET /lab-ok from the new Node-RED"
    note "$what: probes failed at +${p1}s +${p2}s +${p3}s, hung declared at +${declared}s, SIGKILL at +${killed}s (SIGINT unheard for ${grace}s), new Node-RED serves after $took (bound ${bound}s)"
}

hung "function node in an endless loop" busy_loop
hung "Node-RED stopped with SIGSTOP from the host" sigstop
