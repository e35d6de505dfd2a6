# shellcheck shell=bash
# The TLS front door (issue 8): with front.enabled, apply creates the front door's user and its
# socket, Node-RED moves to loopback behind it, and the host (a LAN peer) loads the editor and
# deploys over https only. The key is the front door's alone: code inside Node-RED can neither
# read it nor signal, trace or inspect the front door. Turned off again, its units go and
# Node-RED is back on its port. Leaves the container as it found it.
need_redwarden
depends_on 02-apply-works
# shellcheck source=tests/lab/hostile.sh
source "$LAB_DIR/hostile.sh"
rw_baseline
plain_url=$NR_URL
front_url="https://$LAB_CT_IP:8443"
state=/var/lib/redwarden-front

# Back to the saved configuration through apply, which takes the front door's units away and
# Node-RED off loopback, then rw_restore's flows.
front_off() {
    NR_URL=$plain_url
    in_ct sh -c 'if [ -e /root/lab-rw-saved/redwarden.toml ]; then cp -a /root/lab-rw-saved/redwarden.toml /etc/redwarden/;
        else rm -f /etc/redwarden/redwarden.toml; fi' || return 1
    in_ct redwarden apply >"$LAB_RUN/front-off.log" 2>&1 || [[ $? -eq 1 ]]
}
on_exit 'front_off; rw_restore'

# ---- 1. On: apply makes the user, the socket and the enforced loopback
rw_write_config $'[front]\nenabled = true\nlisten = "0.0.0.0:8443"'
rc=0
in_ct redwarden apply >"$LAB_RUN/front-on.log" 2>&1 || rc=$?
[[ $rc -le 1 ]] || fail "apply with the front door on exited $rc: $(tail -5 "$LAB_RUN/front-on.log")"
# apply starts units without waiting for them (it may run inside a unit itself).
socket_state() {
    local state=""
    for _ in $(seq 40); do
        state=$(in_ct systemctl is-active redwarden-front.socket || true)
        [[ "$state" == "$1" ]] && break
        sleep 0.5
    done
    printf '%s' "$state"
}
assert_eq "active" "$(socket_state active)" "redwarden-front.socket"
NR_URL=$front_url
wait_serving "$(lab_slow 90)" >/dev/null || fail "Node-RED does not serve through the front door: $WAITED"
listening=$(in_ct ss -Hltn 'sport = :1880' | awk '{ print $4 }' | sort -u | tr '\n' ' ')
assert_eq "127.0.0.1:1880 " "$listening" "where Node-RED listens behind the front door"

# ---- 2. The network sees TLS only
body=$(http GET /) || fail "GET / over https: HTTP $(http_code)"
grep -qi '<title>Node-RED' <<<"$body" || fail "GET / over https is not the editor: $(head -c 200 <<<"$body")"
for url in "http://$LAB_CT_IP:8443/" "http://$LAB_CT_IP:1880/" "https://$LAB_CT_IP:1880/"; do
    code=$(curl -sk -o /dev/null -w '%{http_code}' --max-time 5 "$url") || code=000
    [[ ! "$code" =~ ^[23] ]] || fail "$url answered HTTP $code from the LAN"
done
served=$(openssl s_client -connect "$LAB_CT_IP:8443" </dev/null 2>/dev/null | openssl x509 -noout -fingerprint -sha256)
stored=$(openssl x509 -noout -fingerprint -sha256 -in "$LAB_ROOT$state/cert.pem")
[[ -n "$stored" ]] || fail "no certificate in $state"
assert_eq "$stored" "$served" "the certificate the front door serves (self-signed, in its state folder)"
redwarden_json check --only front >/dev/null || true
python3 - "$LAB_RUN/rw.json" "${served#*=}" <<'EOF' || fail "check does not report the served certificate's fingerprint: $(cat "$LAB_RUN/rw.json")"
import json, sys
found = json.load(open(sys.argv[1]))["findings"]
sys.exit(not any(f["id"] == "front.certificate" and sys.argv[2] in f["message"] for f in found))
EOF
for tls in -tls1 -tls1_1; do
    if openssl s_client -connect "$LAB_CT_IP:8443" "$tls" </dev/null >/dev/null 2>&1; then
        fail "a $tls handshake was accepted"
    fi
done

# ---- 3. A deploy over https; the flow sees that it was called over https
deploy_flow '[{"id":"f-tab","type":"tab","label":"front"},
 {"id":"f-in","type":"http in","z":"f-tab","url":"/lab-front","method":"get","wires":[["f-fn"]]},
 {"id":"f-fn","type":"function","z":"f-tab","func":"msg.payload = \"front:\" + (msg.req.headers[\"x-forwarded-proto\"] || \"none\");\nreturn msg;","outputs":1,"wires":[["f-out"]]},
 {"id":"f-out","type":"http response","z":"f-tab","statusCode":"","wires":[]}]'
body=""
for _ in $(seq 20); do body=$(http GET /lab-front) && break; sleep 0.5; done
assert_eq "front:https" "$body" "a route deployed over https, called over https"

# ---- 4. The front door as the host sees it: its own user, nothing to take
front_main=$(in_ct systemctl show -P MainPID redwarden-front.service)
front=$(host_pid "$front_main")
[[ -n "$front" ]] || fail "redwarden-front.service has no process (MainPID $front_main)"
front_uid=$(awk -F: '$1 == "redwarden-front" { print $3 }' "$LAB_ROOT/etc/passwd")
nodered_uid=$(awk -F: '$1 == "nodered" { print $3 }' "$LAB_ROOT/etc/passwd")
[[ -n "$front_uid" && "$front_uid" != "$nodered_uid" ]] || fail "the front door's uid '$front_uid' (Node-RED's: $nodered_uid)"
assert_eq "$front_uid $front_uid $front_uid $front_uid" "$(host_status_of "$front" Uid | xargs)" "the front door's Uid"
assert_eq "0000000000000000" "$(host_status_of "$front" CapEff)" "the front door's CapEff"
assert_eq "1" "$(host_status_of "$front" NoNewPrivs)" "the front door's NoNewPrivs"
assert_eq "0" "$(proc_owner "$front" environ)" "owner of the front door's /proc/PID/environ (non-dumpable)"
assert_eq "600 redwarden-front redwarden-front" "$(stat_ct "$state/key.pem")" "the front door's private key"
# Its resident memory on this architecture, after the editor, a deploy and a burst of 20
# browsers at once: the target is 2 MiB (benches/front.sh measures x86_64 under load).
if lab_qemu_user; then
    rss_note="resident memory not judged: under qemu-user it is the emulator's"
else
    rss_before=$(host_status_of "$front" VmRSS | awk '{ print $1 }')
    # (-s does not quiet curl 7.88's progress meter in parallel mode.)
    codes=$(for i in $(seq 200); do printf 'url = "%s"\noutput = "/dev/null"\n' "$front_url/lab-front?$i"; done |
        curl -k --no-progress-meter --parallel --parallel-max 20 --config - -w '%{http_code}\n' --max-time 60 || true)
    assert_eq 200 "$(grep -c '^200$' <<<"$codes" || true)" "requests of a burst of 200 over 20 connections answered 200"
    # The browsers have gone when curl returns; on a slow board the front door lets go of their
    # connections a moment later.
    for _ in $(seq 100); do
        left=$(in_ct ss -Htn state established 'sport = :8443' | wc -l)
        ((left == 0)) && break
        sleep 0.2
    done
    rss=$(host_status_of "$front" VmRSS | awk '{ print $1 }')
    anon=$(host_status_of "$front" RssAnon | awk '{ print $1 }')
    ((rss <= 2048)) || fail "the front door holds $rss KiB resident ($anon KiB anonymous; $rss_before KiB before the burst, $left connections still open): over its 2 MiB"
    rss_note="resident $rss_before KiB before a burst of 20 browsers, $rss KiB ($anon KiB anonymous) after"
fi

# ---- 5. Code inside Node-RED against the front door
hostile_deploy
for attempt in \
    "read the front door's key|cat $state/key.pem >/dev/null" \
    "signal the front door|kill -0 $front_main" \
    "read the front door's environment|cat /proc/$front_main/environ >/dev/null" \
    "ptrace the front door|python3 -c 'import ctypes, os, sys; libc = ctypes.CDLL(None, use_errno=True); libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]; r = libc.ptrace(16, $front_main, None, None); r == 0 and (os.waitpid($front_main, 0x40000000), libc.ptrace(17, $front_main, None, None)); sys.exit(r != 0)'" \
    "reach Node-RED around the front door|python3 -c 'import socket; socket.create_connection((\"$LAB_CT_IP\", 1880), 3)'"; do
    rc=$(hostile_try "${attempt#*|}")
    [[ "$rc" != 0 ]] || fail "from inside Node-RED: '${attempt%%|*}' worked"
done
proc_kill 0 "$front" 2>/dev/null || fail "the front door died during the attempts"
note "front door: editor and deploy over https (X-Forwarded-Proto https), plain http and Node-RED's port refused from the LAN, uid $front_uid (Node-RED $nodered_uid), key 0600 its own; a flow could not read the key, signal, read or trace the front door; $rss_note"

# ---- 6. Off again: its units go, Node-RED is back on its port
front_off || fail "apply with the front door off failed: $(tail -5 "$LAB_RUN/front-off.log")"
assert_eq "inactive" "$(socket_state inactive)" "redwarden-front.socket once the front door is off"
[[ ! -e "$LAB_ROOT/etc/systemd/system/redwarden-front.socket" ]] || fail "redwarden-front.socket is still installed"
wait_serving "$(lab_slow 90)" >/dev/null || fail "Node-RED is not back on its port: $WAITED"
