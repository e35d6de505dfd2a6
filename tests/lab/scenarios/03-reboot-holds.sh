# shellcheck shell=bash
# After a reboot, Node-RED comes back by itself under redwarden.service, the flows from 02
# answer, and the hardening holds. (Runs after 02 in the same boot.)
need_redwarden
depends_on 02-apply-works

reboot_ct

body=""
for _ in $(seq 60); do body=$(http GET "/lab-echo?q=42") && break; sleep 1; done
assert_eq "echo:42" "$body" "GET /lab-echo?q=42 after reboot"
assert_eq "ok" "$(http GET /lab-cred)" "GET /lab-cred after reboot"
assert_eq "active" "$(in_ct systemctl is-active redwarden.service)" "redwarden.service after reboot"
assert_eq "inactive" "$(in_ct systemctl is-active nodered.service || true)" "nodered.service after reboot"

assert_eq "640 root nodered" "$(stat_ct /var/lib/node-red/settings.js)" "settings.js after reboot"
for f in flows_cred.json .config.runtime.json; do
    assert_eq "600 nodered nodered" "$(stat_ct "/var/lib/node-red/$f")" "$f after reboot"
done

rc=$(redwarden_json check)
[[ $rc -eq 0 || $rc -eq 1 ]] || fail "redwarden check after reboot exited $rc"
fixable=$(finding_ids fixable)
[[ -z "$fixable" ]] || fail "fixable findings after reboot: $(echo "$fixable" | tr '\n' ' ')"

# The firewall comes back through redwarden's own apply unit, with no nftables.service.
if ! lab_qemu_user; then
    in_ct nft list table inet redwarden >/dev/null || fail "redwarden's nftables table did not come back at boot"
    assert_eq "disabled" "$(in_ct systemctl is-enabled nftables.service 2>/dev/null || true)" "nftables.service (not needed)"
fi
