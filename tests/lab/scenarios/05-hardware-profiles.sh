# shellcheck shell=bash
# Hardware profiles: with gpio+serial the service user keeps group access to devices even inside
# PrivateUsers=yes' user namespace, the unit scores under 1.5, and Node-RED still runs a flow
# there. Restores the default profile at the end.
need_redwarden
depends_on 02-apply-works
# shellcheck source=tests/lab/hostile.sh
source "$LAB_DIR/hostile.sh"

# A stand-in for a serial port: readable by root and the dialout group only. (DeviceAllow=
# itself needs real device nodes, which the container does not have: see the VM's below.)
in_ct sh -c 'printf serial-ok > /srv/lab-serial && chown root:dialout /srv/lab-serial && chmod 0640 /srv/lab-serial'
in_ct sh -c 'mkdir -p /etc/redwarden && printf "[service]\nhardware = [\"gpio\", \"serial\"]\n" > /etc/redwarden/redwarden.toml'
rc=0
in_ct redwarden apply || rc=$?
[[ $rc -eq 0 || $rc -eq 1 ]] || fail "redwarden apply with gpio+serial exited $rc"
want=$(for g in gpio dialout; do grep -q "^$g:" "$LAB_ROOT/etc/group" && printf '%s ' "$g"; done)
assert "SupplementaryGroups=${want% } in redwarden.service (the profiles' groups that exist)" \
    grep -qx "SupplementaryGroups=${want% }" "$LAB_ROOT/etc/systemd/system/redwarden.service"
score=$(in_ct systemd-analyze security redwarden.service --no-pager | awk '/Overall exposure/ {print $(NF-2)}')
log "systemd-analyze security redwarden.service with gpio+serial: $score"
python3 -c 'import sys; sys.exit(float(sys.argv[1]) > 1.5)' "$score" || fail "gpio+serial scores $score, want <= 1.5"

wait_nodered 120
pid=$(nr_pid)
dialout=$(awk -F: '$1 == "dialout" {print $3}' "$LAB_ROOT/etc/group")
[[ " $(host_status_of "$pid" Groups) " == *" $dialout "* ]] || fail "Node-RED's groups ($(host_status_of "$pid" Groups)) lack dialout ($dialout)"
hostile_deploy
assert_eq 0 "$(hostile_try 'cat /srv/lab-serial')" "read the dialout-only device stand-in with serial"
# A real kernel (the VM lab) has real device nodes: the GPIO controller of qemu's virt board
# (a PL061), given to the gpio group as Raspberry Pi OS's udev rule does. DeviceAllow= and the
# group must let a flow open it; without the profile, PrivateDevices= hides it.
if lab_vm; then
    in_ct sh -c 'chgrp gpio /dev/gpiochip0 && chmod 0660 /dev/gpiochip0' || fail "no /dev/gpiochip0 in the VM"
    assert_eq 0 "$(hostile_try 'exec 3< /dev/gpiochip0')" "open the real /dev/gpiochip0 with gpio"
fi

assert "PrivateUsers=yes kept with hardware profiles" grep -qx 'PrivateUsers=yes' "$LAB_ROOT/etc/systemd/system/redwarden.service"

# A working flow in this exact sandbox.
deploy_flow '[{"id":"hw-tab","type":"tab","label":"hw"},
  {"id":"hw-in","type":"http in","z":"hw-tab","url":"/lab-echo","method":"get","wires":[["hw-fn"]]},
  {"id":"hw-fn","type":"function","z":"hw-tab","func":"msg.payload = \"echo:\" + msg.req.query.q;\nreturn msg;","outputs":1,"wires":[["hw-out"]]},
  {"id":"hw-out","type":"http response","z":"hw-tab","statusCode":"","wires":[]}]'
body=""
for _ in $(seq 20); do body=$(http GET "/lab-echo?q=7") && break; sleep 0.5; done
assert_eq "echo:7" "$body" "a flow under the gpio+serial sandbox"

# Back to the default profile.
in_ct rm -f /etc/redwarden/redwarden.toml /srv/lab-serial
rc=0
in_ct redwarden apply >/dev/null || rc=$?
[[ $rc -eq 0 || $rc -eq 1 ]] || fail "redwarden apply back to defaults exited $rc"
assert "PrivateDevices=yes is back without hardware" grep -qx 'PrivateDevices=yes' "$LAB_ROOT/etc/systemd/system/redwarden.service"
wait_nodered 120
if lab_vm && in_ct nsenter -t "$(nr_pid)" -m test -e /dev/gpiochip0; then
    fail "Node-RED still sees /dev/gpiochip0 without the gpio profile"
fi
