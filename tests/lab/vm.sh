# shellcheck shell=bash
# The lab on a real ARM kernel (run.sh --vm): the same run rootfs as the container lab, booted
# by qemu-system-aarch64 or -arm instead of systemd-nspawn. Sourced after lib.sh, whose machine
# functions it replaces; everything else (the scenarios, the files judged on $LAB_ROOT, the
# LAN peer at $LAB_HOST_IP) stays as it is:
#   - at the first boot the run's root becomes an ext4 disk image (mkfs.ext4 -d), the VM's own
#     virtio disk; while the VM is up, $LAB_ROOT is that root mounted back on the host with
#     sshfs, without caching, so scenarios read and write the VM's files where the container
#     lab does. Between a shutdown and the next boot $LAB_ROOT is empty;
#   - the VM's network card is a tap device on the host with $LAB_HOST_IP, the VM $LAB_CT_IP:
#     the host is a LAN peer, and redwarden's firewall filters that traffic in a real kernel;
#   - commands run inside over ssh, as root, with the lab's own key.
#
# Exported to the scenarios: LAB_VM=1, LAB_VM_DIR (kernel, initramfs, key; see ensure_vm).

# A boot takes minutes under emulation, so a scenario that reboots needs more than the
# container lab's 600 s.
: "${LAB_SCENARIO_TIMEOUT:=1200}"

# What the lab itself serves on the machine, which a port scan finds beside Node-RED.
# shellcheck disable=SC2034 # read by the scenarios, which source this file through lib.sh
LAB_OWN_PORTS=22

# What every ssh to the VM takes: the lab's key, no host key checks (each VM is new), and one
# connection that all calls share (a new one costs a key exchange, seconds under emulation).
vm_ssh_options() {
    printf '%s\n' -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR \
        -o BatchMode=yes -o ConnectTimeout=10 -o "IdentityFile=$LAB_VM_DIR/id" \
        -o ControlMaster=auto -o "ControlPath=$LAB_RUN/ssh-%C" -o ControlPersist=300
}

# vm_ssh ARGS...: ssh with ARGS (the VM's root@ address among them).
vm_ssh() {
    local -a options
    mapfile -t options < <(vm_ssh_options)
    # shellcheck disable=SC2029 # what runs remotely is quoted by the callers (in_ct)
    ssh "${options[@]}" "$@"
}

# ensure_vm ARCH FLAVOUR: what turns the flavour image (ensure_image) into a VM's root: a layer
# with Debian's kernel modules, sshd, networkd and the lab's key, mounted over the image at
# run time; and beside it the kernel and an initramfs that mounts the root disk. Cached by
# content. The kernel package is unpacked, not installed: its initramfs hook takes 20 minutes
# under qemu-user, and mounting the root needs only the virtio disk and ext4 modules. udev,
# which a container does without, loads the rest (the network card's) and makes the device nodes.
ensure_vm() {
    local arch=$1 flavour=$2 key dir
    # keyed by the code that builds it, not by the rest of this file
    key=$(key_of vm "$(basename "$IMAGE_DIR")" "$(declare -f ensure_vm make_initramfs vm_machine)")
    dir=$CACHE/vm-$arch-$flavour-$key
    export LAB_VM_DIR=$dir
    # shellcheck disable=SC2154 # run.sh's --rebuild
    if [[ -e "$dir/.complete" && $rebuild -eq 0 ]]; then
        log "vm $arch/$flavour: cached ($dir)"
        return 0
    fi
    phase "vm $arch/$flavour: kernel, initramfs, sshd (cold cache)"
    rm_tree "$dir.tmp"
    mkdir -p "$dir.tmp"/{layer,work,merged,debs}
    local root=$dir.tmp/merged rc=0
    mount -t overlay overlay -o "lowerdir=$IMAGE_DIR/rootfs,upperdir=$dir.tmp/layer,workdir=$dir.tmp/work" "$root"
    chroot_mount "$root"
    # shellcheck disable=SC2016 # expanded inside the chroot
    chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
        KERNEL="$(vm_machine "$arch" kernel)" sh -c '
        set -e
        apt-get update -q
        apt-get install -y -q --no-install-recommends openssh-server kmod udev
        kernel=$(apt-cache depends "$KERNEL" | sed -n "s/^ *Depends: \(linux-image-[0-9].*\)$/\1/p" | head -n 1)
        mkdir -p /tmp/debs && cd /tmp/debs && apt-get download "$kernel" busybox-static
        apt-get clean && rm -rf /var/lib/apt/lists/*' >"$dir.tmp/build.log" 2>&1 || rc=$?
    chroot_umount "$root"
    if ((rc)); then
        tail -n 30 "$dir.tmp/build.log" >&2
        umount "$root"
        rm_tree "$dir.tmp"
        die "vm $arch/$flavour: apt in the image failed (rc $rc)"
    fi
    mv "$root"/tmp/debs/*.deb "$dir.tmp/debs/"
    rmdir "$root/tmp/debs"
    # The kernel's modules go into the root (udev loads the network card's from there).
    local kdeb
    kdeb=$(echo "$dir.tmp"/debs/linux-image-*.deb)
    # /lib is a link to usr/lib in the image (merged /usr): tar must not replace it.
    dpkg-deb --fsys-tarfile "$kdeb" | tar -x --keep-directory-symlink -C "$root"
    local kver
    kver=$(basename "$(echo "$root"/lib/modules/*)")
    chroot "$root" depmod -a "$kver" || die "vm: depmod $kver failed"
    cp "$root/boot/vmlinuz-$kver" "$dir.tmp/vmlinuz"
    make_initramfs "$root/lib/modules/$kver" "$(echo "$dir.tmp"/debs/busybox-static_*.deb)" "$dir.tmp/initramfs.img"
    # networkd gives the card the run's address (boot_ct writes it), sshd lets the lab in.
    ln -sf /lib/systemd/system/systemd-networkd.service "$root/etc/systemd/system/multi-user.target.wants/systemd-networkd.service"
    mkdir -p "$root/etc/systemd/system/sockets.target.wants"
    ln -sf /lib/systemd/system/systemd-networkd.socket "$root/etc/systemd/system/sockets.target.wants/systemd-networkd.socket"
    ssh-keygen -q -t ed25519 -N '' -C redwarden-lab -f "$dir.tmp/id"
    install -d -m 0700 "$root/root/.ssh"
    install -m 0600 "$dir.tmp/id.pub" "$root/root/.ssh/authorized_keys"
    : >"$root/etc/fstab"
    : >"$root/etc/resolv.conf"
    umount "$root"
    rmdir "$root"
    rm -rf "$dir.tmp/work" "$dir.tmp/debs"
    log "vm: kernel $kver, $(du -sh "$dir.tmp/layer" | cut -f1) over the image"
    publish_cached "$dir"
    phase_done "vm $arch/$flavour"
}

# vm_machine ARCH kernel|qemu: Debian's kernel package for ARCH, or the qemu command line of
# the machine that boots it: -M virt with a Cortex-A72 for arm64, and for armhf a Cortex-A15,
# whose LPAE the armmp-lpae kernel needs for 2 GiB and more.
vm_machine() {
    case "$1/$2" in
    arm64/kernel) echo linux-image-arm64 ;;
    armhf/kernel) echo linux-image-armmp-lpae ;;
    arm64/qemu) echo qemu-system-aarch64 -M virt -cpu cortex-a72 ;;
    armhf/qemu) echo qemu-system-arm -M virt -cpu cortex-a15 ;;
    *) die "vm_machine: no $2 for $1" ;;
    esac
}

# make_initramfs MODULES_DIR BUSYBOX_DEB OUT: busybox, the modules for an ext4 root on a virtio
# disk (with what they depend on, in load order) and an /init that mounts that root and hands
# over to its systemd.
make_initramfs() {
    local modules=$1 busybox_deb=$2 out=$3 tmp
    tmp=$(mktemp -d)
    mkdir -p "$tmp"/{bin,dev,proc,sys,newroot,modules}
    dpkg-deb --fsys-tarfile "$busybox_deb" | tar -x -C "$tmp" ./bin/busybox
    # crc32c_generic: ext4 asks the crypto API for crc32c, which modules.dep does not say.
    python3 - "$modules" "$tmp/modules" virtio_pci virtio_blk ext4 crc32c_generic <<'EOF' || die "initramfs: modules"
import os, shutil, sys
src, dst, wanted = sys.argv[1], sys.argv[2], sys.argv[3:]
deps = {}
for line in open(os.path.join(src, "modules.dep")):
    path, _, rest = line.partition(":")
    deps[path] = rest.split()
by_name = {os.path.basename(p).split(".ko")[0].replace("-", "_"): p for p in deps}
builtin = {os.path.basename(l.strip()).split(".ko")[0].replace("-", "_")
           for l in open(os.path.join(src, "modules.builtin"))}
order = []
def add(path):
    for d in deps[path]:
        add(d)
    if path not in order:
        order.append(path)
for name in wanted:
    if name in by_name:
        add(by_name[name])
    elif name not in builtin:
        sys.exit("initramfs: no module or built-in %s" % name)
with open(os.path.join(dst, "order"), "w") as f:
    for path in order:
        if path.endswith(".ko"):
            shutil.copy(os.path.join(src, path), dst)
        else:
            sys.exit("initramfs: compressed module %s" % path)
        f.write(os.path.basename(path) + "\n")
EOF
    cat >"$tmp/init" <<'EOF'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
while read -r m; do insmod "/modules/$m" || echo "initramfs: insmod $m failed"; done </modules/order
# The disk's node appears once the virtio bus has probed it.
i=0
while [ ! -b /dev/vda ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
if ! mount -t ext4 -o rw /dev/vda /newroot; then
    echo "initramfs: cannot mount the root disk /dev/vda"
    poweroff -f
fi
umount /proc /sys /dev
exec switch_root /newroot /sbin/init
EOF
    chmod 0755 "$tmp/init"
    (cd "$tmp" && find . | cpio -o -H newc --quiet | gzip -1) >"$out"
    rm -rf "$tmp"
}

# lab_lower: the VM's layer over the image.
lab_lower() { printf '%s' "$LAB_VM_DIR/layer:$LAB_IMAGE"; }

# in_ct CMD...: CMD in the VM.
in_ct() {
    vm_ssh "root@$LAB_CT_IP" -- "$(printf '%q ' /usr/bin/env -i PATH="$LAB_CT_PATH" HOME=/root LANG=C.UTF-8 TERM="${TERM:-dumb}" "$@")"
}

# ct_procs all|nodered: as the container's, from inside; a VM's pids are its own.
ct_procs() { in_ct python3 - "" "$1" <<<"$CT_PROCS_PY"; }

ct_shell_hint() { echo "ssh $(vm_ssh_options | tr '\n' ' ')root@$LAB_CT_IP"; }

# machine_state_digest: inside, where links read as links.
machine_state_digest() { in_ct python3 - / <"$LAB_DIR/state_digest.py"; }

proc_read() { in_ct cat "/proc/$1/$2"; }
proc_alive() { in_ct test -e "/proc/$1"; }
proc_owner() { in_ct stat -c %u "/proc/$1/$2"; }
proc_kill() { in_ct kill -s "$1" "$2"; }

# make_root_disk: the run's root, as prepared on the host, into $LAB_RUN/root.img, with room
# for what the scenarios install and log. $LAB_ROOT is left an empty folder for root_mount.
make_root_disk() {
    local t0 used
    t0=$(now)
    used=$(du -sm --apparent-size "$LAB_ROOT" | cut -f1)
    mkfs.ext4 -q -F -L root -d "$LAB_ROOT" "$LAB_RUN/root.img" "$((used + 2048))M" >/dev/null ||
        die "mkfs.ext4 -d $LAB_ROOT failed"
    if mountpoint -q "$LAB_ROOT"; then
        umount "$LAB_ROOT"
    else
        # a copy (--keep): kept beside the disk it went into
        mv "$LAB_ROOT" "$LAB_RUN/rootfs.before-boot"
        mkdir "$LAB_ROOT"
    fi
    log "root disk: ${used} MiB of files, $(elapsed "$t0")"
}

# root_mount: the running VM's root on $LAB_ROOT. No caching: a scenario that changes a file
# inside must read the change from outside at once, and the other way round. The VM resolves
# symbolic links (follow_symlinks): this host's FUSE refuses to read one (EPERM), and an
# absolute one must point into the VM, not into the host.
root_mount() {
    local -a options
    mapfile -t options < <(vm_ssh_options)
    sshfs "root@$LAB_CT_IP:/" "$LAB_ROOT" "${options[@]}" -o follow_symlinks -o dir_cache=no \
        -o attr_timeout=0 -o entry_timeout=0 -o negative_timeout=0 ||
        die "sshfs: cannot mount the VM's root on $LAB_ROOT"
}

# root_unmount: $LAB_ROOT let go before the VM goes down (sshfs would hang on a dead link).
root_unmount() { if mountpoint -q "$LAB_ROOT"; then umount -l "$LAB_ROOT" || true; fi; }

boot_ct() {
    local t0 tap="vt-$LAB_NAME"
    t0=$(now)
    [[ ${#tap} -le 15 ]] || die "machine name too long for a tap name: $LAB_NAME"
    if [[ ! -e "$LAB_RUN/root.img" ]]; then
        mkdir -p "$LAB_ROOT/etc/systemd/network"
        printf '[Match]\nName=en* eth*\n\n[Network]\nAddress=%s/24\n' "$LAB_CT_IP" >"$LAB_ROOT/etc/systemd/network/10-lab.network"
        install_boot_report
        make_root_disk
    fi
    mkdir -p "$LAB_RUN/logs"
    ip tuntap add dev "$tap" mode tap
    ip addr add "$LAB_HOST_IP/24" dev "$tap"
    ip link set "$tap" up
    start_qemu "$tap"
    # A boot in which sshd never comes up is the emulator's or the guest's, not redwarden's
    # (redwarden-apply.service comes before multi-user.target, redwarden.service and
    # nodered.service only, not before ssh.service): one more boot of the same disk, after
    # saying what the stuck one showed. A second such boot fails the run.
    if ! wait_ct; then
        report_stuck_boot
        kill_qemu
        log "booting the same disk again (once)"
        start_qemu "$tap"
        wait_ct || { report_stuck_boot; die "VM systemd not up, twice: sshd never answered"; }
    fi
    root_mount
    wait_nodered "$(lab_slow "${LAB_NR_TIMEOUT:-90}")"
    log "boot total: $(elapsed "$t0")"
}

# start_qemu TAP: the VM on the run's disk and on TAP, in the background ($LAB_BOOT_PID).
start_qemu() {
    local tap=$1
    # cache=unsafe: the guest's flushes are not forced to the host's disk. A reboot (qemu
    # exits) still finds every write in the host's page cache; only the host crashing would not.
    local -a machine
    read -r -a machine <<<"$(vm_machine "$LAB_ARCH" qemu)"
    rm -f "$LAB_RUN/qmp.sock"
    setsid "${machine[@]}" -smp 2 -m 2048 \
        -display none -monitor none -serial "file:$LAB_RUN/logs/console.log" -no-reboot \
        -qmp "unix:$LAB_RUN/qmp.sock,server=on,wait=off" \
        -kernel "$LAB_VM_DIR/vmlinuz" -initrd "$LAB_VM_DIR/initramfs.img" \
        -append "console=ttyAMA0 rw" \
        -drive "file=$LAB_RUN/root.img,format=raw,if=none,id=root,cache=unsafe" \
        -device virtio-blk-pci,drive=root \
        -netdev "tap,id=n0,ifname=$tap,script=no,downscript=no" \
        -device virtio-net-pci,netdev=n0,romfile= \
        </dev/null >>"$LAB_RUN/logs/qemu.log" 2>&1 &
    LAB_BOOT_PID=$!
    lab_state_save
    log "qemu pid $LAB_BOOT_PID, $tap $LAB_HOST_IP <-> $LAB_CT_IP"
}

# kill_qemu: the VM gone at once (if it is not already), as by a power cut, and the ssh master
# with it.
kill_qemu() {
    if pid_alive "${LAB_BOOT_PID:-}"; then kill -KILL "$LAB_BOOT_PID" 2>/dev/null || true; fi
    while pid_alive "${LAB_BOOT_PID:-}"; do sleep 0.2; done
    vm_ssh -O exit "root@$LAB_CT_IP" >/dev/null 2>&1 || true
}

# report_stuck_boot: whether qemu runs the guest or has paused it (a disk error pauses it),
# from its QMP socket, and the end of the console, where lab-boot-report writes.
report_stuck_boot() {
    log "VM boot stuck before sshd answered; what qemu and the console show:"
    python3 - "$LAB_RUN/qmp.sock" <<'EOF' >&2 || log "qemu's QMP socket did not answer"
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(10)
s.connect(sys.argv[1])
f = s.makefile("rw")
f.readline()
def ask(command):
    f.write(json.dumps({"execute": command}) + "\n")
    f.flush()
    while True:
        reply = json.loads(f.readline())
        if "return" in reply or "error" in reply:
            return reply.get("return", reply.get("error"))
ask("qmp_capabilities")
print("[lab] qemu status:", ask("query-status"))
for disk in ask("query-block"):
    if "io-status" in disk:
        print("[lab] qemu disk %s: io-status %s" % (disk["device"], disk["io-status"]))
EOF
    tail -n 80 "$LAB_RUN/logs/console.log" >&2
}

# install_boot_report: a unit in the run's root that, while the boot has not finished after
# 90 s, writes the pending jobs, their units' state and the kernel's blocked tasks to the
# console each minute. A boot stuck before sshd says so in console.log, the one place the lab
# can read without sshd. It goes where packages put units, not in /etc, whose units the
# scenarios compare (state_digest.py).
install_boot_report() {
    local dir=$LAB_ROOT/usr/lib/systemd/system
    mkdir -p "$dir/sysinit.target.wants"
    cat >"$dir/lab-boot-report.service" <<'EOF'
[Unit]
Description=Lab: report a stuck boot on the console
DefaultDependencies=no

[Service]
ExecStart=/bin/sh -c 'sleep 90; while [ "$(systemctl is-system-running)" = starting ]; do { echo "lab boot report at $(cut -d" " -f1 /proc/uptime) s:"; systemctl list-jobs --no-pager; systemctl status --no-pager --lines=5 $(systemctl list-jobs --no-legend | cut -d" " -f2); } >/dev/console 2>&1; echo w >/proc/sysrq-trigger; sleep 60; done'
EOF
    ln -sf ../lab-boot-report.service "$dir/sysinit.target.wants/lab-boot-report.service"
}

# wait_ct: until the VM's systemd reports running (or degraded). Fails when sshd has not
# answered in LAB_BOOT_TIMEOUT (boot_ct boots again); dies when the VM answered with another
# state (its boot ended badly: no second boot hides that) or when qemu exits.
wait_ct() {
    local t0 st timeout=${LAB_BOOT_TIMEOUT:-300} deadline
    t0=$(now)
    deadline=$((SECONDS + timeout))
    until st=$(in_ct systemctl is-system-running --wait 2>/dev/null) || [[ "$st" == degraded ]]; do
        pid_alive "$LAB_BOOT_PID" || { tail -n 30 "$LAB_RUN/logs/console.log" >&2; die "qemu exited during boot"; }
        if ((SECONDS >= deadline)); then
            [[ -n "$st" ]] || { log "VM's sshd did not answer in ${timeout}s"; return 1; }
            tail -n 40 "$LAB_RUN/logs/console.log" >&2
            die "VM systemd not up after ${timeout}s: '$st'"
        fi
        sleep 2
    done
    log_system_state "$st" "$t0"
}

stop_ct() {
    lab_state_load
    root_unmount
    if pid_alive "${LAB_BOOT_PID:-}"; then
        # A VM that sshd does not let us ask will not power off by itself: no wait for it.
        if in_ct systemctl --no-block poweroff >/dev/null 2>&1; then
            local deadline=$((SECONDS + 120))
            while pid_alive "$LAB_BOOT_PID" && ((SECONDS < deadline)); do sleep 0.5; done
            if pid_alive "$LAB_BOOT_PID"; then log "VM did not power off in 120 s; stopping qemu"; fi
        else
            log "VM cannot be asked to power off (no ssh); stopping qemu"
        fi
    fi
    kill_qemu
    ip link del "vt-$LAB_NAME" 2>/dev/null || true
    LAB_BOOT_PID=''
    lab_state_save
}

# reboot_ct: qemu runs with -no-reboot, so a reboot ends it, like nspawn; boot it again.
reboot_ct() {
    local t0
    t0=$(now)
    lab_state_load
    root_unmount
    in_ct systemctl --no-block reboot >/dev/null 2>&1 || true
    local deadline=$((SECONDS + 180))
    while pid_alive "$LAB_BOOT_PID" && ((SECONDS < deadline)); do sleep 0.5; done
    pid_alive "$LAB_BOOT_PID" && stop_ct
    ip link del "vt-$LAB_NAME" 2>/dev/null || true
    log "VM went down for reboot ($(elapsed "$t0"))"
    boot_ct
    log "reboot total: $(elapsed "$t0")"
}
