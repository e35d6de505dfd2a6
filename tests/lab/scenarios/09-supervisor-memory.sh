# shellcheck shell=bash
# A leaking Node-RED is restarted gracefully at the soft memory limit, long before the unit's
# MemoryMax= would have the kernel kill it: a function node keeps 40 MB buffers in its context;
# once the resident memory stays above memory_limit for memory_samples probes, the supervisor
# stops Node-RED with SIGINT (no SIGKILL needed) and starts a fresh one, and `redwarden
# status` names the reason. Leaves redwarden.service serving as it found it.
need_redwarden
depends_on 02-apply-works
rw_baseline
on_exit rw_restore

# 200 MiB, as on a small Pi; at least 64 MiB above what Node-RED already uses here (under
# qemu-user the emulator's own memory counts too).
rw_status_json || fail "redwarden status --json: $(cat "$LAB_RUN/status.err")"
rss0=$(json_get "$LAB_RUN/status.json" rss_bytes)
[[ "$rss0" =~ ^[0-9]+$ ]] || fail "no rss_bytes in redwarden status --json: $(cat "$LAB_RUN/status.json")"
rss0=$((rss0 >> 20))
limit=$((rss0 + 64 > 200 ? rss0 + 64 : 200))
samples=2
rw_config "[supervise]
probe_interval_secs = 1
memory_limit = \"${limit}M\"
memory_samples = $samples" >/dev/null
deploy_flow '[{"id":"lk-tab","type":"tab","label":"leak"},
  {"id":"lk-in","type":"http in","z":"lk-tab","url":"/lab-leak","method":"get","wires":[["lk-fn"]]},
  {"id":"lk-fn","type":"function","z":"lk-tab","func":"const chunks = context.get(\"chunks\") || [];\nchunks.push(Buffer.alloc(40e6, 1));\ncontext.set(\"chunks\", chunks);\nmsg.payload = String(chunks.length);\nreturn msg;","outputs":1,"wires":[["lk-out"]]},
  {"id":"lk-out","type":"http response","z":"lk-tab","statusCode":"","wires":[]}]'
old=$(nr_pid)

t0=$(now)
hits=0 rss=0
# Enough 40 MB chunks to pass the limit twice over; stop once the supervisor has acted.
for _ in $(seq $((limit / 40 + 6))); do
    proc_alive "$old" || break
    http GET /lab-leak >/dev/null && hits=$((hits + 1))
    rss=$(($(host_status_of "$old" VmRSS 2>/dev/null | awk '{ print $1 }' || true) + 0 >> 10))
    log "hit $hits: Node-RED resident memory $rss MiB (limit $limit MiB)"
    sleep 1.5
done
wait_serving "$(lab_slow 60)" "$old" >/dev/null || fail "no new Node-RED serving after $hits leaking requests: $WAITED"
took=$(elapsed "$t0")

rw_status_json || fail "redwarden status --json: $(cat "$LAB_RUN/status.err")"
last=$(json_get "$LAB_RUN/status.json" last_exit)
# MiB with one decimal: the figure rounded up, the limit down.
[[ "$last" =~ ^resident\ memory\ ([0-9]+\.[0-9])\ MiB\ stayed\ above\ the\ limit\ of\ $limit\.0\ MiB$ ]] ||
    fail "last_exit in redwarden status is '$last', want 'resident memory N.N MiB stayed above the limit of $limit.0 MiB'"
over=${BASH_REMATCH[1]}
awk -v o="$over" -v l="$limit" 'BEGIN { exit !(o > l) }' || fail "last_exit says $over MiB, not above the limit of $limit MiB"
warned=$(rw_journal "$t0" | grep -c "above the limit of $limit\.0 MiB ([0-9] of $samples)" || true)
((warned >= samples)) || fail "$warned 'above the limit' warnings in the journal, want at least $samples"
stopped=$(rw_journal_at "$t0" "stayed above the limit of $limit.0 MiB: stopping it")
[[ -n "$stopped" ]] || fail "no 'stayed above the limit of $limit.0 MiB: stopping it' in the journal"
# Graceful: Node-RED stopped on SIGINT; nothing had to be killed.
if rw_journal "$t0" | grep "did not stop within" >/dev/null; then
    fail "the leaking Node-RED had to be killed: $(rw_journal "$t0" | grep "did not stop within")"
fi
rss_new=$(($(json_get "$LAB_RUN/status.json" rss_bytes || echo 0) >> 20))
note "memory: Node-RED used $rss0 MiB; limit $limit MiB over $samples samples of 1 s; after $hits leaking requests it was at $over MiB, stopped gracefully at +${stopped}s, a new one ($rss_new MiB) serves after $took"
