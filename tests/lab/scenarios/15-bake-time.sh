# shellcheck shell=bash
# Bake-time enforcement, by the pi-gen stage itself (pi-gen/stage-redwarden): a fresh copy of
# the installer's image with pi's userDir as 02 found it gets the package installed in a
# chroot and `redwarden --root / apply`, and is never booted. It must then hold what on-boot
# apply made of the same starting point in 02 (dpkg -i, a reboot, apply at boot), account for
# account and file for file (tests/lab/state_digest.py). The differences by design, and only
# they, are allowed:
#   - a bake-time adoption stays on probation (its drop-in) until the first boot sees
#     Node-RED serve; on-boot apply confirmed it;
#   - files that Node-RED itself writes once it runs, in the userDir it runs from;
#   - the editor login that apply generates when there is none: it is made per device, at the
#     first boot, never baked into an image that many devices share.
need_redwarden
depends_on 02-apply-works
[[ -s "$LAB_RUN/boot-state.txt" && -d "$LAB_RUN/bake-input/pi-userdir" ]] ||
    fail "02 left no on-boot digest or starting userDir"

baked=$LAB_RUN/baked
mkdir -p "$LAB_RUN/baked-upper" "$LAB_RUN/baked-work" "$baked"
mount -t overlay overlay \
    -o "lowerdir=$(lab_lower),upperdir=$LAB_RUN/baked-upper,workdir=$LAB_RUN/baked-work" "$baked" ||
    fail "no overlay copy of the image for the bake"
mounted=()
unmount_baked() {
    local m
    for m in "${mounted[@]}" "$baked"; do umount "$m" 2>/dev/null || umount -l "$m"; done
}
on_exit unmount_baked

# The starting point of 02: the lab's files, and pi's userDir with the flows 02 deployed.
place_package_files "$LAB_ROOT/root/redwarden.deb" "$baked"
if lab_qemu_user; then qemu_user_dropins "$baked"; fi
rm -rf "$baked/home/pi/.node-red"
cp -a "$LAB_RUN/bake-input/pi-userdir" "$baked/home/pi/.node-red"

rm -f "$baked/usr/local/bin/redwarden" "$baked/usr/local/bin/redwarden-front"

# pi-gen's own stage script, with pi-gen's two hooks: ROOTFS_DIR, and on_chroot, which runs
# its standard input in the image's chroot with /proc and /dev mounted.
chroot_mount "$baked" && mounted=("$baked/dev" "$baked/proc")
t0=$(now)
on_chroot() { chroot "$ROOTFS_DIR" /bin/bash -e; }
export -f on_chroot
(cd "$LAB_DIR/../../pi-gen/stage-redwarden/00-install" &&
    ROOTFS_DIR=$baked REDWARDEN_DEB=$LAB_ROOT/root/redwarden.deb ./00-run.sh) >&2 ||
    fail "pi-gen/stage-redwarden/00-install/00-run.sh failed"
note "baked in $(elapsed "$t0"): pi-gen/stage-redwarden (apt-get install, redwarden --root / apply in the chroot)"
chroot_umount "$baked" && mounted=()
[[ -e "$baked/etc/systemd/system/redwarden.service.d/60-adoption-probation.conf" ]] ||
    fail "the bake did not adopt pi's Node-RED"

# Node-RED's own writes, in the folder it runs from (the baked image's Node-RED never ran).
runtime='^var/lib/node-red/(\.config\.nodes\.json|\.flows[a-z_]*\.json\.backup|\.redwarden(/.*)?|context(/.*)?|lib(/.*)?) '
probation='^etc/systemd/system/redwarden\.service\.d/60-adoption-probation\.conf '
"$LAB_DIR/state_digest.py" "$baked" | grep -Ev "$runtime|$probation" >"$LAB_RUN/bake-state.txt"
per_device='^var/lib/redwarden/(admin-password|logins\.json) '
grep -Ev "$runtime|$per_device" "$LAB_RUN/boot-state.txt" >"$LAB_RUN/boot-state.cmp"
if ! diff -u "$LAB_RUN/boot-state.cmp" "$LAB_RUN/bake-state.txt" >"$LAB_RUN/bake.diff"; then
    cat "$LAB_RUN/bake.diff" >&2
    fail "the baked image differs from on-boot apply in $(grep -c '^[-+][^-+]' "$LAB_RUN/bake.diff") lines (diff above: - on boot, + baked)"
fi
note "the baked image equals on-boot apply: $(wc -l <"$LAB_RUN/bake-state.txt") facts (accounts, units, modes, owners, contents); set aside on boot: $(grep -cE "$runtime" "$LAB_RUN/boot-state.txt") of Node-RED's own files, $(grep -cE "$per_device" "$LAB_RUN/boot-state.txt") of the per-device login"
