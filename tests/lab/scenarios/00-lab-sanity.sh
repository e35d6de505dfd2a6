# shellcheck shell=bash
# The lab itself: the stock installer state is what the other scenarios assume.
# Uses only curl, stat and /proc from the host (no redwarden needed).

code=$(curl -s -o /dev/null -w '%{http_code}' "$NR_URL/")
assert_eq 200 "$code" "GET / from the host"

assert_eq "644 pi pi" "$(stat_ct /home/pi/.node-red/settings.js)" "stock settings.js"
assert_eq "440 root root" "$(stat_ct /etc/sudoers.d/010_pi-nopasswd)" "sudoers drop-in"
assert "sudoers grants pi NOPASSWD" grep -qx 'pi ALL=(ALL) NOPASSWD: ALL' "$LAB_ROOT/etc/sudoers.d/010_pi-nopasswd"
in_ct id -nG pi | grep -qw sudo || fail "pi not in sudo group"
[[ "$(in_ct getent passwd pi | cut -d: -f7)" == /bin/bash ]] || fail "pi's shell is not bash"
[[ "$(in_ct getent shadow pi | cut -d: -f2)" == '$'* ]] || fail "pi has no password"

unit=/lib/systemd/system/nodered.service
# shellcheck disable=SC2016
grep -qx 'ExecStart=/usr/bin/env node-red-pi $NODE_OPTIONS -- $NODE_RED_OPTIONS' "$LAB_ROOT$unit" || fail "installer unit ExecStart"
cmp -s "$LAB_DIR/nodered.service" "$LAB_ROOT$unit" || fail "nodered.service differs from the installer's (tests/lab/nodered.service)"
assert_eq 0022 "$(in_ct systemctl show -P UMask nodered.service)" "nodered.service UMask"
assert_eq enabled "$(in_ct systemctl is-enabled nodered.service)" "nodered.service enabled"
assert_eq active "$(in_ct systemctl is-active nodered.service)" "nodered.service active"

pid=$(nr_pid)
[[ -n "$pid" ]] || fail "no Node-RED process found from the host"
uid=$(host_status_of "$pid" Uid | awk '{print $1}')
assert_eq "$(in_ct id -u pi)" "$uid" "Node-RED runs as pi (host pid $pid)"

# .config.runtime.json is written at first start, with the service's umask 022
for _ in $(seq 30); do [[ "$(stat_ct /home/pi/.node-red/.config.runtime.json)" != missing ]] && break; sleep 1; done
assert_eq "644 pi pi" "$(stat_ct /home/pi/.node-red/.config.runtime.json)" ".config.runtime.json after first start"

case "$LAB_FLAVOUR" in
deb18) want_node=v18. want_nr=4. ;;
node22) want_node=v22. want_nr=5. ;;
esac
v=$(in_ct node --version)
[[ "$v" == "$want_node"* ]] || fail "node is $v, want $want_node*"
settings=$(http GET /settings) || fail "GET /settings: $(http_code)"
nrv=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["version"])' "$settings")
[[ "$nrv" == "$want_nr"* ]] || fail "Node-RED is $nrv, want $want_nr*"
log "node $v, Node-RED $nrv, pid $pid uid $uid"
