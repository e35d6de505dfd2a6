# shellcheck shell=bash
# Adoption's safety net under real systemd. `apply --undo-adopt` gives Node-RED back to the
# installer's unit; then an adoption whose new unit cannot start (node = /bin/false) is
# handed back by systemd (OnFailure=) and reverted by apply, so Node-RED never stops serving
# for good. Finally a normal apply adopts again, from a fresh copy.
need_redwarden
depends_on 02-apply-works

serves_cred() {
    local body=""
    for _ in $(seq 60); do body=$(http GET /lab-cred) && break; sleep 1; done
    assert_eq "ok" "$body" "$1"
}
# The flows of 02 (with /lab-cred) are in both folders; 04/05 replaced the adopted ones.
rc=0
in_ct redwarden apply --undo-adopt || rc=$?
[[ $rc -eq 0 || $rc -eq 1 ]] || fail "apply --undo-adopt exited $rc"
for _ in $(seq 30); do [[ "$(in_ct systemctl is-active nodered.service || true)" == active ]] && break; sleep 1; done
assert_eq "active" "$(in_ct systemctl is-active nodered.service || true)" "nodered.service after --undo-adopt"
# Conflicts= stops redwarden.service while nodered.service starts, without ordering the two.
for _ in $(seq 30); do [[ "$(in_ct systemctl is-active redwarden.service || true)" == inactive ]] && break; sleep 1; done
assert_eq "inactive" "$(in_ct systemctl is-active redwarden.service || true)" "redwarden.service after --undo-adopt"
serves_cred "pi's Node-RED serves its own flows again"

# A retry whose new unit fails: systemd starts the old one, apply restores its boot links.
in_ct sh -c 'rm /var/lib/redwarden/adoption && mkdir -p /etc/redwarden && printf "[nodered]\nnode = \"/bin/false\"\n" > /etc/redwarden/redwarden.toml'
rc=0
in_ct redwarden apply || rc=$?
assert_eq 1 "$rc" "apply whose adoption fails (findings remain)"
in_ct grep -q '^phase=failed' /var/lib/redwarden/adoption || fail "the failed adoption is not recorded"
assert_eq "active" "$(in_ct systemctl is-active nodered.service || true)" "nodered.service after the failed switch"
assert_eq "enabled" "$(in_ct systemctl is-enabled nodered.service || true)" "nodered.service boots again"
[[ "$(in_ct systemctl is-enabled redwarden.service || true)" != enabled ]] || fail "redwarden.service still enabled after the revert"
serves_cred "Node-RED still serves after the failed switch"
redwarden_json check >/dev/null
finding_ids | grep -qx adopt.failed || fail "check does not report adopt.failed"

# Fixed configuration, failure record removed: apply adopts again.
in_ct sh -c 'rm /etc/redwarden/redwarden.toml /var/lib/redwarden/adoption'
rc=0
in_ct redwarden apply || rc=$?
# Findings apply cannot fix (the Node-RED settings audit) may remain; nothing fixable may.
[[ $rc -eq 0 || $rc -eq 1 ]] || fail "apply after fixing the configuration exited $rc"
redwarden_json check >/dev/null
fixable=$(finding_ids fixable)
[[ -z "$fixable" ]] || fail "fixable findings after adopting again: $(echo "$fixable" | tr '\n' ' ')"
assert_eq "active" "$(in_ct systemctl is-active redwarden.service)" "redwarden.service adopted again"
assert_eq "inactive" "$(in_ct systemctl is-active nodered.service || true)" "nodered.service after adopting again"
# A retry copies afresh (pi's flows of 02, not the suite's that later scenarios deployed in the
# earlier copy), and keeps the earlier copy aside.
serves_cred "the fresh copy serves pi's flows"
compgen -G "$LAB_ROOT/var/lib/node-red.redwarden-previous-*" >/dev/null || fail "the earlier copy was not kept aside"
