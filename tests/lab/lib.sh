# shellcheck shell=bash
# Helpers for the redwarden lab: sourced by run.sh and by every scenario.
#
# State of the running lab lives in $LAB_RUN/state (written by boot_ct), so a
# scenario (a separate bash process) can reboot the container and the runner
# still finds it afterwards.
#
# Variables set by run.sh and exported to scenarios:
#   LAB_DIR     tests/lab            LAB_RUN   this run's folder (rootfs/, logs/, state)
#   LAB_ROOT    $LAB_RUN/rootfs      LAB_NAME  machine name (also veth: ve-$LAB_NAME)
#   LAB_ARCH    amd64|arm64          LAB_FLAVOUR deb18|node22
#   LAB_NET     e.g. 192.168.251     LAB_HOST_IP / LAB_CT_IP   .1 / .2
#   NR_URL      http://$LAB_CT_IP:1880
#   LAB_NR_USER / LAB_NR_PASS        admin credentials used when adminAuth is on

LAB_CT_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

log() { printf '[lab] %s\n' "$*" >&2; }
die() {
    printf '[lab] ERROR: %s\n' "$*" >&2
    # inside a scenario, this is its reason
    if [[ -n "${LAB_REASON_FILE:-}" && ! -s "${LAB_REASON_FILE}" ]]; then
        printf '%s\n' "$*" >"$LAB_REASON_FILE" 2>/dev/null || true
    fi
    exit 2
}

now() { printf '%s' "${EPOCHREALTIME/,/.}"; }
elapsed() { python3 -c 'import sys; print("%.1fs" % (float(sys.argv[2]) - float(sys.argv[1])))' "$1" "$(now)"; }

# ---------------------------------------------------------------- scenario API
# fail REASON: the scenario fails with this one-line reason.
fail() {
    printf '%s\n' "$*" >"${LAB_REASON_FILE:-/dev/stderr}"
    printf 'FAIL: %s\n' "$*" >&2
    exit 1
}
pass() { exit 0; }
# report: stdin becomes this scenario's report, which the runner prints under its result line.
report() { cat >"${LAB_REASON_FILE%.reason}.report"; }
# skip REASON: the scenario does not apply here (counted as skipped).
skip() {
    printf '%s\n' "$*" >"${LAB_REASON_FILE:-/dev/stderr}"
    exit 77
}
# assert DESCRIPTION CMD...: run CMD, fail with DESCRIPTION if it fails.
assert() {
    local what=$1
    shift
    "$@" || fail "$what"
}
# assert_eq WANT GOT DESCRIPTION
assert_eq() {
    [[ "$1" == "$2" ]] || fail "$3: want '$1', got '$2'"
}

# _run_scenario FILE: how run.sh runs one scenario (in its own bash process).
_run_scenario() {
    set -euo pipefail
    # shellcheck disable=SC2154
    trap 'rc=$?; if [[ $rc -ne 0 && $rc -ne 77 && ! -s "$LAB_REASON_FILE" ]]; then
            echo "command failed (rc $rc): $BASH_COMMAND" >"$LAB_REASON_FILE"; fi' EXIT
    # shellcheck disable=SC1090
    source "$1"
}

# ---------------------------------------------------------------- state
lab_state_load() {
    # shellcheck disable=SC1091
    [[ -r "$LAB_RUN/state" ]] && source "$LAB_RUN/state"
    return 0
}
lab_state_save() {
    printf 'LAB_BOOT_PID=%s\nLAB_LEADER=%s\n' "${LAB_BOOT_PID:-}" "${LAB_LEADER:-}" >"$LAB_RUN/state"
}

pid_alive() {
    local st
    [[ -n "${1:-}" && -r /proc/$1/stat ]] || return 1
    st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
    [[ -n "$st" && "$st" != Z ]]
}

# ---------------------------------------------------------------- inside
# in_ct CMD...: run CMD inside the container (all its namespaces, its root),
# with a clean environment. Exit status is CMD's.
in_ct() {
    lab_state_load
    pid_alive "$LAB_LEADER" || die "container is not running"
    nsenter -t "$LAB_LEADER" -m -u -i -n -p -C -r -w -- \
        /usr/bin/env -i PATH="$LAB_CT_PATH" HOME=/root LANG=C.UTF-8 TERM="${TERM:-dumb}" "$@"
}

# ct_shell_hint: the command that opens a shell in the machine by hand.
ct_shell_hint() { lab_state_load; echo "nsenter -t $LAB_LEADER -m -u -i -n -p -C -r -w bash"; }

# ---------------------------------------------------------------- from the host
# http METHOD URL [DATA]: curl from the host (a LAN peer). URL may be a path,
# then it is relative to $NR_URL. Prints the body; the status code goes to
# $LAB_RUN/http_code (read it with http_code). Returns 0 for 2xx/3xx.
# Extra curl arguments can be given in the HTTP_ARGS array.
http() {
    local method=$1 url=$2 code
    [[ "$url" == /* ]] && url="$NR_URL$url"
    local -a args=(-sS -k --max-time 20 -X "$method" -o "$LAB_RUN/http_body" -w '%{http_code}')
    [[ $# -ge 3 ]] && args+=(--data-binary "$3")
    if [[ -n "${HTTP_ARGS+x}" ]]; then args+=("${HTTP_ARGS[@]}"); fi
    code=$(curl "${args[@]}" "$url") || code=000
    printf '%s' "$code" >"$LAB_RUN/http_code"
    cat "$LAB_RUN/http_body" 2>/dev/null || true
    [[ "$code" =~ ^[23] ]]
}
http_code() { cat "$LAB_RUN/http_code" 2>/dev/null || echo 000; }

# stat_ct PATH: "MODE OWNER GROUP" of PATH in the container, judged from the
# host (lstat on the run's rootfs; uid/gid mapped through the container's
# /etc/passwd and /etc/group). Prints "missing" if the file does not exist.
stat_ct() {
    python3 - "$LAB_ROOT" "$1" <<'EOF'
import os, sys, stat
root, path = sys.argv[1], sys.argv[2]
def names(f):
    m = {}
    try:
        for line in open(os.path.join(root, f)):
            p = line.split(":")
            if len(p) > 2: m.setdefault(int(p[2]), p[0])
    except OSError: pass
    return m
try:
    st = os.lstat(root + "/" + path.lstrip("/"))
except FileNotFoundError:
    print("missing"); sys.exit(0)
u, g = names("etc/passwd"), names("etc/group")
print("%o %s %s" % (stat.S_IMODE(st.st_mode), u.get(st.st_uid, st.st_uid), g.get(st.st_gid, st.st_gid)))
EOF
}

# nr_pid: host pid of the outermost Node-RED process in the container (a Node-RED child
# process has a Node-RED parent). Empty if none.
nr_pid() {
    ct_procs nodered | awk '{ parent[$1] = $3 } END { for (p in parent) if (!(parent[p] in parent)) print p }' |
        sort -n | head -n 1
}

# A process of the machine by the pid ct_procs gives (the host's, for a container): its
# /proc/PID/FILE, whether it exists, who owns one of its /proc files, a signal to it.
proc_read() { cat "/proc/$1/$2"; }
proc_alive() { [[ -e "/proc/$1" ]]; }
proc_owner() { stat -c %u "/proc/$1/$2"; }
proc_kill() { kill -s "$1" "$2"; }
# host_status_of PID FIELD: a line of /proc/PID/status (e.g. Uid, CapEff).
host_status_of() { proc_read "$1" status | awk -v f="$2:" '$1 == f { $1 = ""; sub(/^ /, ""); print }'; }

# nr_token: a bearer token for the admin API when adminAuth is on (empty if off).
nr_token() {
    local login
    login=$(http GET /auth/login) || true
    if [[ "$login" == *'"credentials"'* ]]; then
        # Without LAB_NR_PASS: the one a scenario set with `redwarden passwd` ($LAB_RUN/nr-password),
        # or else the one apply generated (root-only file in the container).
        local pass=${LAB_NR_PASS:-$(cat "$LAB_RUN/nr-password" 2>/dev/null ||
            awk '/^password:/ { print $2 }' "$LAB_ROOT/var/lib/redwarden/admin-password" 2>/dev/null)}
        pass=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$pass")
        http POST /auth/token "client_id=node-red-admin&grant_type=password&scope=*&username=${LAB_NR_USER:-admin}&password=$pass" >"$LAB_RUN/token.json" ||
            fail "POST /auth/token failed ($(http_code)); set LAB_NR_USER/LAB_NR_PASS"
        python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["access_token"])' "$LAB_RUN/token.json"
    fi
}

# deploy_flow JSON [/flow]: full deploy through the admin API, or with /flow one more flow tab
# ({"label":...,"nodes":[...]}) beside the deployed ones. Fails the scenario on error.
deploy_flow() {
    local token body
    token=$(nr_token)
    local -a HTTP_ARGS=(-H 'Content-Type: application/json' -H 'Node-RED-Deployment-Type: full')
    [[ -n "$token" ]] && HTTP_ARGS+=(-H "Authorization: Bearer $token")
    body=$(http POST "${2:-/flows}" "$1") || fail "deploy failed: HTTP $(http_code) $body"
    log "deployed: $body"
}

# redwarden_json ARGS...: run `redwarden ARGS --json` inside; stdout to
# $LAB_RUN/rw.json, exit code printed.
redwarden_json() {
    local rc=0
    in_ct redwarden "$@" --json >"$LAB_RUN/rw.json" 2>"$LAB_RUN/rw.stderr" || rc=$?
    cat "$LAB_RUN/rw.stderr" >&2
    printf '%s' "$rc"
}
# finding_ids [fixable]: ids in $LAB_RUN/rw.json (only fixable ones with the argument).
finding_ids() {
    python3 - "$LAB_RUN/rw.json" "${1:-}" <<'EOF'
import json, sys
doc = json.load(open(sys.argv[1]))
for f in doc.get("findings", []):
    if sys.argv[2] == "fixable" and not f.get("fixable"): continue
    print(f["id"])
EOF
}
# depends_on SCENARIO: skip unless that scenario passed earlier in this boot.
depends_on() {
    grep -qx "$1" "$LAB_RUN/passed" 2>/dev/null || skip "needs $1, which did not pass in this run"
}
need_redwarden() {
    [[ -x "$LAB_ROOT/usr/bin/redwarden" ]] || fail "redwarden binary not installed in the lab (see run.sh output)"
}

# ---------------------------------------------------------------- scenario extras
# note MSG: a line of this scenario's report (printed under its result line), and of its log.
note() {
    log "$*"
    printf '%s\n' "$*" >>"${LAB_REASON_FILE%.reason}.report"
}

# on_exit CMD: run CMD (a function name, in a subshell) when the scenario ends, whatever the
# outcome, before the runner's own EXIT trap. If CMD fails, a passing scenario fails.
on_exit() {
    local -a prev=()
    eval "prev=($(trap -p EXIT))"
    # shellcheck disable=SC2064,SC2154 # expanded now on purpose: CMD and the previous trap
    trap "__rc=\$?; set +e
        if ! ( $1 ); then
            log '$1 failed'
            if [[ \$__rc -eq 0 || \$__rc -eq 77 ]]; then echo '$1 failed (see the log)' >\"\$LAB_REASON_FILE\"; __rc=1; fi
        fi
        (exit \$__rc); ${prev[2]:-}
        exit \$__rc" EXIT
}

# lab_slow SECONDS: a time budget scaled for the arch (qemu runs ARM about 5x slower).
lab_slow() { if [[ "${LAB_ARCH:-amd64}" == amd64 ]]; then echo "$1"; else echo $(($1 * 5)); fi; }
# machine_state_digest: tests/lab/state_digest.py of the machine's root.
machine_state_digest() { "$LAB_DIR/state_digest.py" "$LAB_ROOT"; }
# lab_lower: the read-only layers of the run's root (overlay lowerdir syntax).
lab_lower() { printf '%s' "$LAB_IMAGE"; }
# lab_qemu_user: true when the lab's arm64 userland runs under qemu-user (the container lab),
# which cannot pass nftables netlink, create user namespaces or honour setuid.
lab_qemu_user() { [[ "${LAB_ARCH:-amd64}" == arm64 ]] && ! lab_vm; }
# lab_vm: true when the machine is a VM on a real ARM kernel (run.sh --vm, tests/lab/vm.sh).
lab_vm() { [[ "${LAB_VM:-0}" == 1 ]]; }

# CT_PROCS_PY LEADER all|nodered: one line per process in LEADER's pid namespace (every
# process when LEADER is empty): PID NSPID PPID STATE UID COMM ARGV...
CT_PROCS_PY=$(cat <<'EOF'
import os, sys
leader, only = sys.argv[1], sys.argv[2]
try:
    ns = os.readlink("/proc/%s/ns/pid" % leader) if leader else None
except OSError:
    sys.exit(0)
for d in sorted((d for d in os.listdir("/proc") if d.isdigit()), key=int):
    try:
        if ns and os.readlink("/proc/%s/ns/pid" % d) != ns: continue
        argv = [a.decode(errors="replace") for a in open("/proc/%s/cmdline" % d, "rb").read().split(b"\0") if a]
        comm = open("/proc/%s/comm" % d).read().strip()
        stat = open("/proc/%s/stat" % d).read().rsplit(")", 1)[1].split()
        status = {l.split(":")[0]: l.split()[1:] for l in open("/proc/%s/status" % d) if ":" in l}
    except (OSError, IndexError):
        continue
    if only == "nodered":
        a0 = os.path.basename(argv[0].split(" ")[0]) if argv else ""
        if comm in ("bash", "sh", "env", "dash"): continue
        if not (a0 == "node-red" or any(a.endswith("red.js") for a in argv)): continue
    print(d, status["NSpid"][-1], stat[1], stat[0], status["Uid"][0], comm, " ".join(argv) or "[%s]" % comm)
EOF
)
# ct_procs all|nodered: one line per process in the container, judged from the host:
# HOSTPID CTPID HOSTPPID STATE UID COMM ARGV... With `nodered`, only Node-RED processes (node
# running red.js, or titled node-red), whatever their parent.
ct_procs() {
    lab_state_load
    python3 - "$LAB_LEADER" "$1" <<<"$CT_PROCS_PY"
}
# host_pid CTPID: the host pid of a process of the container (empty if there is none).
host_pid() { ct_procs all | awk -v p="$1" '$2 == p { print $1 }'; }

# ---------------------------------------------------------------- the supervisor
# For the scenarios on `redwarden run` (07 and later): redwarden.service's main process
# supervises Node-RED as its child.

# rw_main_pid: redwarden.service's MainPID, a pid of the container (0 when it has none).
rw_main_pid() { in_ct systemctl show -P MainPID redwarden.service; }
# rw_status_json: `redwarden status --json`, run as nobody, to $LAB_RUN/status.json; returns its exit code.
rw_status_json() { in_ct runuser -u nobody -- redwarden status --json >"$LAB_RUN/status.json" 2>"$LAB_RUN/status.err"; }
# json_get FILE KEY: one top-level value of a JSON file (empty for null or absent).
json_get() {
    python3 -c 'import json, sys; v = json.load(open(sys.argv[1])).get(sys.argv[2]); print("" if v is None else str(v).lower() if isinstance(v, bool) else v)' "$1" "$2"
}
# rw_wait_findings SECS: the findings count of the running supervisor's background audit, once
# it has reached `redwarden status` (the audit runs after Node-RED serves; a killed supervisor's
# status file, with its count, outlives it); empty after SECS without.
rw_wait_findings() {
    local findings="" deadline=$((SECONDS + $1))
    while ((SECONDS < deadline)); do
        if rw_status_json && [[ "$(json_get "$LAB_RUN/status.json" supervisor_pid 2>/dev/null)" == "$(rw_main_pid)" ]]; then
            findings=$(json_get "$LAB_RUN/status.json" findings 2>/dev/null)
            [[ -n "$findings" ]] && break
        fi
        sleep 1
    done
    printf '%s\n' "$findings"
}
# rw_phase: the supervisor's phase as `redwarden status --json` says, or `none`.
rw_phase() {
    if rw_status_json; then json_get "$LAB_RUN/status.json" phase 2>/dev/null || echo none; else echo none; fi
}
# rw_journal EPOCH: redwarden.service's journal since EPOCH (the supervisor's lines, Node-RED's
# and systemd's about the unit), each line stamped with its UNIX time.
rw_journal() { in_ct journalctl -u redwarden.service --since "@${1%.*}" --no-pager -q -o short-unix; }
# rw_journal_at EPOCH TEXT: seconds from EPOCH to the first journal line since then holding TEXT
# (empty if none).
rw_journal_at() { rw_journal "$1" | awk -v t0="$1" -v text="$2" '!done && index($0, text) { printf "%.1f\n", $1 - t0; done = 1 }'; }
# assert_one_restart RESTARTS0 EPOCH WHAT: systemd restarted redwarden.service exactly once since
# EPOCH, when NRestarts was RESTARTS0. Under qemu-user, systemd itself is emulated and cannot
# always kill the old cgroup ("Failed to kill control group: Input/output error"), so a restart
# can die in systemd's own setup with 219/CGROUP, before redwarden runs, and be retried. Those
# are counted out there and said; where systemd runs native any extra restart fails.
assert_one_restart() {
    local want=$(($1 + 1)) setup_failures=0
    if lab_qemu_user; then
        setup_failures=$(rw_journal "$2" | grep -c 'code=exited, status=219/CGROUP') || true
        ((setup_failures == 0)) || note "$3: $setup_failures restart(s) died in emulated systemd's cgroup setup (219/CGROUP) and were retried"
    fi
    assert_eq "$((want + setup_failures))" "$(in_ct systemctl show -P NRestarts redwarden.service)" "NRestarts $3"
}

# wait_serving SECONDS [OLD_HOSTPID]: until redwarden.service is active, its supervisor says
# serving and Node-RED answers GET / from the host, from another process than OLD_HOSTPID.
# Prints the Node-RED host pid; returns 1 after SECONDS (WAITED says what was seen last).
WAITED=
wait_serving() {
    local deadline=$((SECONDS + $1)) old=${2:-} pid code active phase
    while :; do
        pid=$(nr_pid)
        active=$(in_ct systemctl is-active redwarden.service 2>/dev/null) || true
        phase=$(rw_phase)
        code=$(curl -sk -o /dev/null -w '%{http_code}' --max-time 3 "$NR_URL/") || code=000
        WAITED="unit $active, phase $phase, GET / $code, Node-RED pid ${pid:-none}${old:+ (old $old)}"
        if [[ "$active" == active && "$phase" == serving && "$code" =~ ^[23] && -n "$pid" && "$pid" != "$old" ]]; then
            printf '%s\n' "$pid"
            return 0
        fi
        ((SECONDS < deadline)) || return 1
        sleep 0.5
    done
}

# rw_baseline: the state the supervisor scenarios start from and return to: Node-RED adopted
# (the probation drop-in gone, so Restart=on-failure holds), served by `redwarden run`. Saves
# the configuration and flows for rw_restore.
rw_baseline() {
    RW_T0=$(now)
    if in_ct grep -qx 'phase=probation' /var/lib/redwarden/adoption 2>/dev/null; then
        in_ct redwarden apply >/dev/null || true # confirms the adoption once it serves
    fi
    assert_eq "on-failure" "$(in_ct systemctl show -P Restart redwarden.service)" "redwarden.service Restart= (adoption confirmed)"
    assert_eq "/usr/bin/redwarden run" "$(sed -n 's/^ExecStart=//p' "$LAB_ROOT/etc/systemd/system/redwarden.service")" "redwarden.service runs the supervisor"
    wait_serving "$(lab_slow 60)" >/dev/null || fail "not serving under redwarden run before the scenario: $WAITED"
    in_ct sh -c 'rm -rf /root/lab-rw-saved && mkdir -p /root/lab-rw-saved/node-red &&
        cp -a /var/lib/node-red/flows.json /var/lib/node-red/flows_cred.json /root/lab-rw-saved/node-red/ &&
        if [ -e /etc/redwarden/redwarden.toml ]; then cp -a /etc/redwarden/redwarden.toml /root/lab-rw-saved/; fi'
}

# rw_write_config TOML: /etc/redwarden/redwarden.toml becomes the saved one (see rw_baseline)
# without its [supervise] table, plus TOML; root's, 0644.
rw_write_config() {
    # shellcheck disable=SC2016 # expanded by the container's sh
    {
        in_ct cat /root/lab-rw-saved/redwarden.toml 2>/dev/null |
            awk '/^[[:space:]]*\[/ { skip = /^[[:space:]]*\[supervise\]/ } !skip' || true
        printf '%s\n' "$1"
    } | in_ct sh -c 'mkdir -p /etc/redwarden && f=/etc/redwarden/redwarden.toml &&
        cat >"$f.lab" && chown root:root "$f.lab" && chmod 0644 "$f.lab" && mv "$f.lab" "$f"'
}
# rw_config TOML: rw_write_config TOML, then redwarden.service restarts and serves. Prints the
# new Node-RED host pid.
rw_config() {
    rw_write_config "$1"
    in_ct systemctl restart redwarden.service || true
    wait_serving "$(lab_slow 60)" || fail "not serving after the configuration change: $WAITED"
}

# rw_restore: back to what rw_baseline saved (configuration, flows and their credentials),
# redwarden.service reset and started, serving. For on_exit: returns 1 instead of failing.
rw_restore() {
    in_ct test -d /root/lab-rw-saved || return 0
    if [[ -n "${RW_T0:-}" ]]; then
        log "redwarden.service's journal during the scenario (the supervisor's and systemd's lines):"
        rw_journal "$RW_T0" | grep -E ' (redwarden: |systemd\[1\]: redwarden)' >&2 || true
    fi
    in_ct systemctl stop redwarden.service || true
    # The saved files, not their folder: `cp -a saved/.` would give the userDir the saved
    # folder's owner (root) and mode, and Node-RED could then write nothing there.
    in_ct sh -c 'cp -a /root/lab-rw-saved/node-red/* /var/lib/node-red/ &&
        if [ -e /root/lab-rw-saved/redwarden.toml ]; then cp -a /root/lab-rw-saved/redwarden.toml /etc/redwarden/;
        else rm -f /etc/redwarden/redwarden.toml; fi' || return 1
    in_ct systemctl reset-failed redwarden.service 2>/dev/null || true
    in_ct systemctl start redwarden.service || log "systemctl start redwarden.service failed"
    wait_serving "$(lab_slow 60)" >/dev/null || { log "not serving after the restore: $WAITED"; return 1; }
    log "restored: redwarden.service serves with the saved configuration and flows"
}

# ---------------------------------------------------------------- lifecycle
_find_leader() {
    # the container's init: a descendant of nspawn whose innermost pid is 1
    python3 - "$1" <<'EOF'
import os, sys
todo = [sys.argv[1]]
while todo:
    p = todo.pop(0)
    try:
        for line in open("/proc/%s/status" % p):
            if line.startswith("NSpid:"):
                f = line.split()
                if len(f) > 2 and f[-1] == "1":
                    print(p); sys.exit(0)
        for t in os.listdir("/proc/%s/task" % p):
            todo += open("/proc/%s/task/%s/children" % (p, t)).read().split()
    except OSError:
        pass
EOF
}

# boot_ct: start the run's rootfs under systemd-nspawn, give it its address,
# wait for systemd, then for Node-RED to answer from the host.
boot_ct() {
    local t0 deadline veth="ve-$LAB_NAME"
    t0=$(now)
    [[ ${#veth} -le 15 ]] || die "machine name too long for a veth name: $LAB_NAME"
    mkdir -p "$LAB_RUN/logs"
    setsid systemd-nspawn -b --register=no --keep-unit --link-journal=no \
        --console=read-only --resolv-conf=off --timezone=off \
        -D "$LAB_ROOT" -M "$LAB_NAME" --network-veth \
        </dev/null >>"$LAB_RUN/logs/console.log" 2>&1 &
    LAB_BOOT_PID=$!
    LAB_LEADER=
    lab_state_save
    deadline=$((SECONDS + 60))
    while [[ -z "$LAB_LEADER" ]] || ! ip link show "$veth" >/dev/null 2>&1; do
        pid_alive "$LAB_BOOT_PID" || { tail -n 30 "$LAB_RUN/logs/console.log" >&2; die "systemd-nspawn exited early"; }
        ((SECONDS < deadline)) || die "no container init / veth after 60s"
        [[ -n "$LAB_LEADER" ]] || LAB_LEADER=$(_find_leader "$LAB_BOOT_PID")
        sleep 0.2
    done
    lab_state_save
    # addresses from the host side, with the host's ip binary (qemu-user cannot do netlink inside)
    ip addr add "$LAB_HOST_IP/24" dev "$veth"
    ip link set "$veth" up
    nsenter -t "$LAB_LEADER" -n ip link set lo up
    nsenter -t "$LAB_LEADER" -n ip addr add "$LAB_CT_IP/24" dev host0
    nsenter -t "$LAB_LEADER" -n ip link set host0 up
    log "nspawn pid $LAB_BOOT_PID, init (host pid) $LAB_LEADER, $veth $LAB_HOST_IP <-> host0 $LAB_CT_IP ($(elapsed "$t0"))"
    wait_ct
    wait_nodered "${LAB_NR_TIMEOUT:-90}"
    log "boot total: $(elapsed "$t0")"
}

# wait_ct: until the container's systemd reports running (or degraded).
# Early in boot (slow under qemu) systemctl cannot reach systemd yet: retry.
wait_ct() {
    local t0 st left deadline
    t0=$(now)
    deadline=$((SECONDS + ${LAB_BOOT_TIMEOUT:-240}))
    while :; do
        left=$((deadline - SECONDS))
        ((left > 0)) || { tail -n 40 "$LAB_RUN/logs/console.log" >&2; die "container systemd not up after ${LAB_BOOT_TIMEOUT:-240}s: '$st'"; }
        st=$(timeout "$left" nsenter -t "$LAB_LEADER" -m -u -i -n -p -C -r -w -- \
            /usr/bin/env -i PATH="$LAB_CT_PATH" systemctl is-system-running --wait 2>&1) || true
        case "$st" in
        running | degraded) break ;;
        *) sleep 0.5 ;;
        esac
    done
    log_system_state "$st" "$t0"
}

# log_system_state STATE T0: the machine's systemd state since T0, and its failed units when
# it is degraded.
log_system_state() {
    if [[ "$1" == degraded ]]; then
        log "systemd is degraded; failed units:"
        in_ct systemctl --failed --no-legend --plain >&2 || true
    fi
    log "systemd in the machine: $1 ($(elapsed "$2"))"
}

# wait_nodered [TIMEOUT]: until Node-RED answers GET / from the host.
wait_nodered() {
    local t0 code deadline
    t0=$(now)
    deadline=$((SECONDS + ${1:-${LAB_NR_TIMEOUT:-90}}))
    while :; do
        code=$(curl -sk -o /dev/null -w '%{http_code}' --max-time 5 "$NR_URL/") || code=000
        [[ "$code" =~ ^[23] ]] && break
        if ((SECONDS >= deadline)); then
            in_ct systemctl status --no-pager -n 30 nodered.service 'redwarden*.service' >&2 || true
            in_ct ss -ltnp >&2 2>/dev/null || true
            die "Node-RED did not answer on $NR_URL/ (last HTTP $code)"
        fi
        sleep 1
    done
    log "Node-RED answers on $NR_URL/ ($(elapsed "$t0"))"
}

# stop_ct: power the container off and wait for nspawn to exit.
stop_ct() {
    lab_state_load
    pid_alive "${LAB_BOOT_PID:-}" || return 0
    if pid_alive "${LAB_LEADER:-}"; then
        # systemctl first: under qemu-user, host real-time signals do not
        # reach the emulated systemd as SIGRTMIN+4
        timeout 20 nsenter -t "$LAB_LEADER" -m -u -i -n -p -C -r -w -- \
            /usr/bin/env -i PATH="$LAB_CT_PATH" systemctl --no-block poweroff >/dev/null 2>&1 ||
            kill -s RTMIN+4 "$LAB_LEADER" 2>/dev/null || true # systemd: poweroff
    fi
    local deadline=$((SECONDS + 60))
    while pid_alive "$LAB_BOOT_PID" && ((SECONDS < deadline)); do sleep 0.3; done
    if pid_alive "$LAB_BOOT_PID"; then
        log "container did not power off in 60s; terminating nspawn"
        kill -TERM "$LAB_BOOT_PID" 2>/dev/null || true
        deadline=$((SECONDS + 15))
        while pid_alive "$LAB_BOOT_PID" && ((SECONDS < deadline)); do sleep 0.3; done
        pid_alive "$LAB_BOOT_PID" && kill -KILL "$LAB_BOOT_PID" 2>/dev/null
    fi
    ip link del "ve-$LAB_NAME" 2>/dev/null || true
    LAB_LEADER='' LAB_BOOT_PID=''
    lab_state_save
}

# reboot_ct: reboot the container (nspawn exits on reboot; start it again on
# the same rootfs) and wait until systemd and Node-RED are back.
reboot_ct() {
    local t0
    t0=$(now)
    lab_state_load
    kill -s SIGINT "$LAB_LEADER" # systemd: ctrl-alt-del = reboot
    local deadline=$((SECONDS + 90))
    while pid_alive "$LAB_BOOT_PID" && ((SECONDS < deadline)); do sleep 0.3; done
    pid_alive "$LAB_BOOT_PID" && { stop_ct; }
    ip link del "ve-$LAB_NAME" 2>/dev/null || true
    log "container went down for reboot ($(elapsed "$t0"))"
    boot_ct
    log "reboot total: $(elapsed "$t0")"
}

# ---------------------------------------------------------------- the root file system, offline
# chroot_mount ROOT / chroot_umount ROOT: what apt and npm need in a chroot.
chroot_mount() {
    cp -L /etc/resolv.conf "$1/etc/resolv.conf" 2>/dev/null || true
    mount -t proc proc "$1/proc"
    mount --bind /dev "$1/dev"
}
chroot_umount() {
    umount "$1/dev" || umount -l "$1/dev"
    umount "$1/proc" || umount -l "$1/proc"
}

# place_package_files DEB ROOTFS: the package's files without installing it: its binaries in
# /usr/local/bin (linked from /usr/bin, where its units look), its units, sysusers.d and
# tmpfiles.d where it puts them, and the package itself as /root/redwarden.deb; no account
# made, nothing enabled. So the stock scenarios see the installer's state with redwarden at
# hand, and 02 installs the package itself, with dpkg, as an administrator would.
place_package_files() {
    local deb=$1 root=$2 tmp name
    tmp=$(mktemp -d)
    dpkg-deb -x "$deb" "$tmp"
    for name in redwarden redwarden-front; do
        install -m 0755 "$tmp/usr/bin/$name" "$root/usr/local/bin/$name"
        [[ -e "$root/usr/bin/$name" ]] || ln -s "../local/bin/$name" "$root/usr/bin/$name"
    done
    mkdir -p "$root/usr/lib/systemd/system" "$root/usr/lib/sysusers.d" "$root/usr/lib/tmpfiles.d"
    cp "$tmp"/lib/systemd/system/* "$root/usr/lib/systemd/system/"
    cp "$tmp"/usr/lib/sysusers.d/* "$root/usr/lib/sysusers.d/"
    cp "$tmp"/usr/lib/tmpfiles.d/* "$root/usr/lib/tmpfiles.d/"
    install -m 0644 "$deb" "$root/root/redwarden.deb"
    rm -rf "$tmp"
}

# qemu_user_dropins ROOTFS: under qemu-user, systemd cannot set up unit
# credentials (status 243/CREDENTIALS), so the early units that declare
# LoadCredential= fail and the container is "degraded". Lab-only drop-ins
# clear those credentials on the arm64 run copy (never in the cached image).
qemu_user_dropins() {
    local f d u
    for f in "$1"/lib/systemd/system/*.service; do
        grep -qs '^LoadCredential=' "$f" || continue
        d=$1/etc/systemd/system/$(basename "$f").d
        mkdir -p "$d"
        printf '# redwarden lab: qemu-user cannot set up credentials\n[Service]\nLoadCredential=\n' >"$d/10-lab-qemu-user.conf"
    done
    # Nor can it create the user namespace of PrivateUsers=yes (status 217/USER, seen with
    # `systemd-run -p PrivateUsers=yes /bin/true`). Everything else of redwarden's sandbox is
    # kept; PrivateUsers is judged on amd64 and on a real ARM kernel (the VM lab).
    for u in redwarden.service nodered.service redwarden-front.service; do
        d=$1/etc/systemd/system/$u.d
        mkdir -p "$d"
        printf '# redwarden lab: qemu-user cannot create user namespaces\n[Service]\nPrivateUsers=no\n' >"$d/90-lab-qemu-user.conf"
    done
    # nft speaks NETLINK_NETFILTER, which qemu-user does not translate ("Protocol not
    # supported"): the firewall is judged on amd64 and on a real ARM kernel.
    mkdir -p "$1/etc/redwarden"
    printf '# redwarden lab: qemu-user cannot pass nftables netlink\n[firewall]\nenabled = false\n' >"$1/etc/redwarden/redwarden.toml"
    chmod 644 "$1/etc/redwarden/redwarden.toml"
}

# The VM lab (run.sh --vm) replaces the machine's functions above.
if lab_vm; then
    # shellcheck source=vm.sh disable=SC1091
    source "$LAB_DIR/vm.sh"
fi
