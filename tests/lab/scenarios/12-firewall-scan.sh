# shellcheck shell=bash
# The firewall from a LAN peer's seat: nmap on the host side of the veth sees exactly the ports
# the policy allows. Node-RED's port is open to the private ranges (the host is 192.168.251.1)
# and filtered once the sources exclude it; a service of the container's own stays reachable
# either way, because redwarden's table matches only Node-RED's port.
need_redwarden
depends_on 02-apply-works
lab_qemu_user && skip "qemu-user does not pass nftables netlink (nft: Protocol not supported); the firewall is judged on amd64 and on a real ARM kernel"

# open_ports: the TCP ports nmap finds open on the container, space-separated.
open_ports() {
    nmap -n -Pn -sS -p 1-2000,8080 --max-retries 1 --host-timeout 120s -oG - "$LAB_CT_IP" |
        awk -F'Ports: ' '/Ports:/ { n = split($2, p, ", "); for (i = 1; i <= n; i++) { split(p[i], f, "/"); if (f[2] == "open") printf "%s ", f[1] } }' |
        sed 's/ $//'
}
# ports PORT...: the ports the scan must find, with the lab's own (sshd in the VM lab).
ports() {
    local -a own
    read -r -a own <<<"${LAB_OWN_PORTS:-}"
    printf '%s\n' "${own[@]}" "$@" | sort -n | tr '\n' ' ' | sed 's/ $//'
}

in_ct systemd-run --unit=lab-other-service -p DynamicUser=yes python3 -m http.server 8080 >/dev/null
for _ in $(seq 20); do curl -s -o /dev/null --max-time 1 "http://$LAB_CT_IP:8080/" && break; sleep 0.5; done

assert_eq "$(ports 1880 8080)" "$(open_ports)" "open ports under the default policy (scanned from $LAB_HOST_IP)"

config=/etc/redwarden/redwarden.toml
had_config=0
[[ -e "$LAB_ROOT$config" ]] && had_config=1 && cp -a "$LAB_ROOT$config" "$LAB_RUN/config.before-12"
mkdir -p "$LAB_ROOT/etc/redwarden"
printf '[firewall]\nsources = ["10.0.0.0/8"]\n' >"$LAB_ROOT$config"
chmod 644 "$LAB_ROOT$config"
rc=0
in_ct redwarden apply --only firewall || rc=$?
assert_eq 0 "$rc" "apply --only firewall with sources 10.0.0.0/8"
assert_eq "$(ports 8080)" "$(open_ports)" "open ports once the host's range is not a source"
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 3 "$NR_URL/" || true)
assert_eq "000" "$code" "HTTP to Node-RED from outside the sources"

redwarden_json check --only firewall >/dev/null
refused=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["counters"].get("firewall.refused", 0))' "$LAB_RUN/rw.json")
[[ "$refused" -gt 0 ]] || fail "check counted no refused connections after the scan"
log "check counts $refused refused packets"

if ((had_config)); then cp -a "$LAB_RUN/config.before-12" "$LAB_ROOT$config"; else rm -f "$LAB_ROOT$config"; fi
in_ct redwarden apply --only firewall >/dev/null
in_ct systemctl stop lab-other-service.service
assert_eq "$(ports 1880)" "$(open_ports)" "open ports after the configuration is restored"
rc=$(redwarden_json check --only firewall)
assert_eq 0 "$rc" "check --only firewall after the restore"
