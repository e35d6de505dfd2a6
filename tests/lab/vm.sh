# shellcheck shell=bash
# The lab on a real ARM kernel (run.sh --vm): the same run rootfs as the container lab, booted
# by qemu-system-aarch64 instead of systemd-nspawn. Sourced after lib.sh, whose machine
# functions it replaces; everything else (the scenarios, the files judged on $LAB_ROOT, the
# LAN peer at $LAB_HOST_IP) stays as it is:
#   - the root file system is $LAB_ROOT itself, shared into the VM by virtiofsd, so the host
#     reads and writes the VM's files where the container lab does;
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

# vm_ssh ARGS...: ssh with ARGS (the VM's root@ address among them) and the lab's key, over one connection that every call
# shares (a new one costs a key exchange, seconds under emulation).
vm_ssh() {
    ssh -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR \
        -o BatchMode=yes -o ConnectTimeout=10 -i "$LAB_VM_DIR/id" \
        -o ControlMaster=auto -o "ControlPath=$LAB_RUN/ssh-%C" -o ControlPersist=300 "$@"
}

# ensure_vm ARCH FLAVOUR: what turns the flavour image (ensure_image) into a VM's root: a layer
# with Debian's kernel modules, sshd, networkd and the lab's key, mounted over the image at
# run time; and beside it the kernel and an initramfs that mounts the root by virtiofs. Cached by
# content. The kernel package is unpacked, not installed: its initramfs hook takes 20 minutes
# under qemu-user, and mounting the root needs only the virtiofs modules. udev, which a container does without,
# loads the rest (the network card's) and makes the device nodes.
ensure_vm() {
    local arch=$1 flavour=$2 key dir
    [[ "$arch" == arm64 ]] || die "--vm: only arm64 so far"
    # keyed by the code that builds it, not by the rest of this file
    key=$(key_of vm "$(basename "$IMAGE_DIR")" "$(declare -f ensure_vm make_initramfs)")
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
    chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive sh -c '
        set -e
        apt-get update -q
        apt-get install -y -q --no-install-recommends openssh-server kmod udev
        kernel=$(apt-cache depends linux-image-arm64 | sed -n "s/^ *Depends: \(linux-image-[0-9].*\)$/\1/p" | head -n 1)
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

# make_initramfs MODULES_DIR BUSYBOX_DEB OUT: busybox, the modules for a virtiofs root (with
# what they depend on, in load order) and an /init that mounts that root and hands over to its
# systemd.
make_initramfs() {
    local modules=$1 busybox_deb=$2 out=$3 tmp
    tmp=$(mktemp -d)
    mkdir -p "$tmp"/{bin,dev,proc,sys,newroot,modules}
    dpkg-deb --fsys-tarfile "$busybox_deb" | tar -x -C "$tmp" ./bin/busybox
    python3 - "$modules" "$tmp/modules" virtio_pci virtiofs <<'EOF' || die "initramfs: modules"
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
if ! mount -t virtiofs root /newroot; then
    echo "initramfs: cannot mount the virtiofs root"
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

proc_read() { in_ct cat "/proc/$1/$2"; }
proc_alive() { in_ct test -e "/proc/$1"; }
proc_owner() { in_ct stat -c %u "/proc/$1/$2"; }
proc_kill() { in_ct kill -s "$1" "$2"; }

boot_ct() {
    local t0 tap="vt-$LAB_NAME"
    t0=$(now)
    [[ ${#tap} -le 15 ]] || die "machine name too long for a tap name: $LAB_NAME"
    mkdir -p "$LAB_RUN/logs" "$LAB_ROOT/etc/systemd/network"
    printf '[Match]\nName=en* eth*\n\n[Network]\nAddress=%s/24\n' "$LAB_CT_IP" >"$LAB_ROOT/etc/systemd/network/10-lab.network"
    ip tuntap add dev "$tap" mode tap
    ip addr add "$LAB_HOST_IP/24" dev "$tap"
    ip link set "$tap" up
    # cache=auto: the VM caches what it reads for a second at most, and reads a file again when
    # it opens one that changed; much faster than 9p for Node-RED's thousands of modules.
    setsid /usr/lib/qemu/virtiofsd --socket-path="$LAB_RUN/virtiofs.sock" -o source="$LAB_ROOT" \
        -o cache=auto -o xattr </dev/null >>"$LAB_RUN/logs/virtiofsd.log" 2>&1 &
    local deadline=$((SECONDS + 20))
    until [[ -S "$LAB_RUN/virtiofs.sock" ]]; do
        ((SECONDS < deadline)) || die "virtiofsd made no socket (see $LAB_RUN/logs/virtiofsd.log)"
        sleep 0.1
    done
    setsid qemu-system-aarch64 -M virt -cpu cortex-a72 -smp 2 -m 2048 \
        -object memory-backend-memfd,id=mem,size=2048M,share=on -numa node,memdev=mem \
        -display none -monitor none -serial "file:$LAB_RUN/logs/console.log" -no-reboot \
        -kernel "$LAB_VM_DIR/vmlinuz" -initrd "$LAB_VM_DIR/initramfs.img" \
        -append "console=ttyAMA0 rw" \
        -chardev "socket,id=root,path=$LAB_RUN/virtiofs.sock" \
        -device vhost-user-fs-pci,queue-size=1024,chardev=root,tag=root \
        -netdev "tap,id=n0,ifname=$tap,script=no,downscript=no" \
        -device virtio-net-pci,netdev=n0,romfile= \
        </dev/null >>"$LAB_RUN/logs/qemu.log" 2>&1 &
    LAB_BOOT_PID=$!
    lab_state_save
    log "qemu pid $LAB_BOOT_PID, $tap $LAB_HOST_IP <-> $LAB_CT_IP"
    wait_ct
    wait_nodered "$(lab_slow "${LAB_NR_TIMEOUT:-90}")"
    log "boot total: $(elapsed "$t0")"
}

wait_ct() {
    local t0 st deadline
    t0=$(now)
    deadline=$((SECONDS + ${LAB_BOOT_TIMEOUT:-600}))
    until st=$(in_ct systemctl is-system-running --wait 2>/dev/null) || [[ "$st" == degraded ]]; do
        pid_alive "$LAB_BOOT_PID" || { tail -n 30 "$LAB_RUN/logs/console.log" >&2; die "qemu exited during boot"; }
        ((SECONDS < deadline)) || { tail -n 40 "$LAB_RUN/logs/console.log" >&2; die "VM systemd not up after ${LAB_BOOT_TIMEOUT:-600}s: '$st'"; }
        sleep 2
    done
    log_system_state "$st" "$t0"
}

stop_ct() {
    lab_state_load
    if pid_alive "${LAB_BOOT_PID:-}"; then
        in_ct systemctl --no-block poweroff >/dev/null 2>&1 || true
        local deadline=$((SECONDS + 120))
        while pid_alive "$LAB_BOOT_PID" && ((SECONDS < deadline)); do sleep 0.5; done
        if pid_alive "$LAB_BOOT_PID"; then
            log "VM did not power off in 120 s; stopping qemu"
            kill -TERM "$LAB_BOOT_PID" 2>/dev/null || true
            sleep 2
            pid_alive "$LAB_BOOT_PID" && kill -KILL "$LAB_BOOT_PID" 2>/dev/null
        fi
    fi
    vm_ssh -O exit "root@$LAB_CT_IP" >/dev/null 2>&1 || true
    ip link del "vt-$LAB_NAME" 2>/dev/null || true
    LAB_BOOT_PID=''
    lab_state_save
}

# reboot_ct: qemu runs with -no-reboot, so a reboot ends it, like nspawn; boot it again.
reboot_ct() {
    local t0
    t0=$(now)
    lab_state_load
    in_ct systemctl --no-block reboot >/dev/null 2>&1 || true
    local deadline=$((SECONDS + 180))
    while pid_alive "$LAB_BOOT_PID" && ((SECONDS < deadline)); do sleep 0.5; done
    pid_alive "$LAB_BOOT_PID" && stop_ct
    ip link del "vt-$LAB_NAME" 2>/dev/null || true
    log "VM went down for reboot ($(elapsed "$t0"))"
    boot_ct
    log "reboot total: $(elapsed "$t0")"
}
