# shellcheck shell=bash
# The hostile-flow suite: what code running inside Node-RED (a function or exec node, which
# any editor user can deploy) manages to do. Sourced by the before/after scenarios.
#
# Each attempt is a shell command run by an exec node behind http-in /lab-hostile; the HTTP
# answer is its exit code, so 0 means the attempt worked (not blocked).

# name|command. A command exits 0 only if the attack worked. Loading a module is judged by the
# error alone: an empty image is refused anyway, but EPERM means "not allowed" (and ENOSYS,
# which qemu-user answers, that the call does not exist there). Under qemu-user (arm64), setuid
# binaries never gain privileges, so sudo and the setuid shell are blocked even in the stock
# column: privilege verdicts are made on amd64 and on a real ARM kernel.
HOSTILE_ATTEMPTS=(
    "write /etc|touch /etc/lab-hostile"
    "write /usr/bin|touch /usr/bin/lab-hostile"
    "rewrite settings.js|f=\$(ls \$HOME/.node-red/settings.js \$HOME/settings.js 2>/dev/null | head -1); [ -n \"\$f\" ] && echo '//x' >> \"\$f\""
    "replace settings.js by a rename|f=\$(ls \$HOME/.node-red/settings.js \$HOME/settings.js 2>/dev/null | head -1); [ -n \"\$f\" ] && cp \"\$f\" \"\$f.lab\" && mv -f \"\$f.lab\" \"\$f\"; rc=\$?; rm -f \"\$f.lab\"; exit \$rc"
    "write the unit files|touch /etc/systemd/system/lab-hostile.service || echo '#x' >> /lib/systemd/system/nodered.service"
    "read /etc/shadow|cat /etc/shadow >/dev/null"
    "read /root|ls /root >/dev/null"
    "read /home/pi|ls /home/pi/.bashrc >/dev/null"
    "sudo|sudo -n true"
    "su|su -c true root </dev/null"
    "setuid binary|/usr/local/bin/lab-rootbash -p -c '[ \"\$(id -u)\" = 0 ]'"
    "signal another user's process|kill -0 1"
    "see other users' processes|[ \"\$(stat -c %u /proc/[0-9]* 2>/dev/null | grep -vcx \"\$(id -u)\")\" -gt 0 ]"
    "read another process's environment|cat /proc/1/environ >/dev/null"
    "load a kernel module|python3 -c 'import ctypes, os, sys; n = {\"x86_64\": 175, \"aarch64\": 105, \"armv7l\": 128}[os.uname().machine]; libc = ctypes.CDLL(None, use_errno=True); libc.syscall(n, None, 0, b\"\"); sys.exit(ctypes.get_errno() in (1, 38))'"
    "change a sysctl|echo hostile > /proc/sys/kernel/domainname"
    "set the clock|date -s @1700000000"
    "set the hostname|hostname lab-hostile"
    "open an AF_PACKET socket|python3 -c 'import socket; socket.socket(socket.AF_PACKET, socket.SOCK_RAW)'"
    "open a raw socket|python3 -c 'import socket; socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)'"
    "create a user namespace|unshare -U true"
    "mount|unshare -Urm mount -t tmpfs none /mnt"
    # The supervisor is Node-RED's parent (the exec's shell has Node-RED as $PPID); under the
    # stock unit that parent is pid 1. SIGTERM worked only if the supervisor is gone after (had
    # it obeyed, Node-RED would stop with it and the suite fail for want of an answer). Reading
    # it means its environ, opening its memory, or PTRACE_ATTACH (16; detached again at once).
    "stop the supervisor with SIGTERM|s=\$(sed 's/.*) //' /proc/\$PPID/stat | cut -d' ' -f2); [ -n \"\$s\" ] && kill -TERM \"\$s\" || exit 1; sleep 2; ! kill -0 \"\$s\" 2>/dev/null"
    "ptrace or read the supervisor|s=\$(sed 's/.*) //' /proc/\$PPID/stat | cut -d' ' -f2); [ -n \"\$s\" ] || exit 1; cat /proc/\$s/environ >/dev/null 2>&1 && exit 0; true 2>/dev/null </proc/\$s/mem && exit 0; python3 -c 'import ctypes, os, sys; s = int(sys.argv[1]); libc = ctypes.CDLL(None, use_errno=True); libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]; r = libc.ptrace(16, s, None, None); r == 0 and (os.waitpid(s, 0x40000000), libc.ptrace(17, s, None, None)); sys.exit(r != 0)' \"\$s\""
    "fill the disk outside the userDir|for d in /var/tmp /var/log /var/cache /home/pi /opt /srv; do dd if=/dev/zero of=\$d/lab-fill bs=1M count=4 2>/dev/null && rm -f \$d/lab-fill && exit 0; done; exit 1"
)

# The flow: http-in /lab-hostile?c=CMD -> exec (sh -c CMD) -> its exit code as the answer.
HOSTILE_FLOW='[{"id":"h-tab","type":"tab","label":"hostile"},
 {"id":"h-in","type":"http in","z":"h-tab","url":"/lab-hostile","method":"get","wires":[["h-cmd"]]},
 {"id":"h-cmd","type":"function","z":"h-tab","func":"msg.payload = msg.req.query.c;\nreturn msg;","outputs":1,"wires":[["h-exec"]]},
 {"id":"h-exec","type":"exec","z":"h-tab","command":"","addpay":"payload","append":"","useSpawn":"false","timer":"20","oldrc":false,"wires":[[],[],["h-rc"]]},
 {"id":"h-rc","type":"function","z":"h-tab","func":"msg.payload = String(msg.payload && msg.payload.code !== undefined ? msg.payload.code : msg.payload);\nreturn msg;","outputs":1,"wires":[["h-out"]]},
 {"id":"h-out","type":"http response","z":"h-tab","statusCode":"200","wires":[]}]'

urlencode() { python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$1"; }

# hostile_deploy: the exec flow replaces the running flows.
hostile_deploy() { deploy_flow "$HOSTILE_FLOW"; }

# hostile_try CMD: runs CMD inside Node-RED (through the deployed flow) and prints its exit code.
hostile_try() {
    local rc=""
    for _ in $(seq 20); do rc=$(http GET "/lab-hostile?c=$(urlencode "$1")") && break; sleep 0.5; done
    [[ -n "$rc" ]] || fail "no answer from /lab-hostile for '$1' (HTTP $(http_code))"
    printf '%s' "$rc"
}

# hostile_run LABEL: deploys the suite and writes "name|rc" lines to $LAB_RUN/hostile-LABEL.
hostile_run() {
    local out="$LAB_RUN/hostile-$1" entry
    # A setuid-root shell stands for any vulnerable setuid binary on the device.
    in_ct sh -c 'cp /bin/bash /usr/local/bin/lab-rootbash && chmod 4755 /usr/local/bin/lab-rootbash'
    hostile_deploy
    : >"$out"
    for entry in "${HOSTILE_ATTEMPTS[@]}"; do
        printf '%s|%s\n' "${entry%%|*}" "$(hostile_try "${entry#*|}")" >>"$out"
    done
    # Undo what a successful attempt left behind, so the next run starts the same.
    in_ct sh -c 'rm -f /etc/lab-hostile /usr/bin/lab-hostile /etc/systemd/system/lab-hostile.service /var/tmp/lab-fill /var/log/lab-fill /var/cache/lab-fill /home/pi/lab-fill /opt/lab-fill /srv/lab-fill'
}

verdict() { [[ "$1" == 0 ]] && echo "NOT blocked" || echo "blocked"; }

# hostile_table: the before/after table, one line per attempt.
hostile_table() {
    local before="$LAB_RUN/hostile-before" after="$LAB_RUN/hostile-after" name rc_after rc_before
    printf '%-36s %-14s %s\n' "attempt from inside Node-RED" "stock unit" "redwarden"
    while IFS='|' read -r name rc_after; do
        rc_before=$(awk -F'|' -v n="$name" '$1 == n { print $2 }' "$before" 2>/dev/null)
        printf '%-36s %-14s %s\n' "$name" "$( [[ -n "$rc_before" ]] && verdict "$rc_before" || echo "-")" "$(verdict "$rc_after")"
    done <"$after"
}
