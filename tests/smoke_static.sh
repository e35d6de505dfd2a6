#!/usr/bin/env bash
# Smoke test of a static release build under qemu-user, without a sysroot: it must run, audit
# an image root, and serve TLS (a self-signed certificate made at start, a handshake, and a
# 502 since nothing listens behind it).
# Usage: tests/smoke_static.sh BIN_DIR QEMU [QEMU_ARG...]   (e.g. qemu-arm-static -cpu arm1176)
set -euo pipefail
dir=$1
qemu=("${@:2}")
work=$(mktemp -d)
front_pid=""
cleanup() {
  [ -z "$front_pid" ] || kill "$front_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "smoke test of $dir: $*" >&2; exit 1; }

"${qemu[@]}" "$dir/redwarden" --version | grep -q '^redwarden ' || fail "redwarden --version"
mkdir -p "$work/root/etc"
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$work/root/etc/passwd"
printf 'root:x:0:\n' >"$work/root/etc/group"
rc=0
"${qemu[@]}" "$dir/redwarden" --root "$work/root" check >"$work/check.txt" 2>&1 || rc=$?
[ "$rc" -le 1 ] || fail "check --root exited $rc: $(tail -3 "$work/check.txt")"

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
upstream=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
printf '[front]\nenabled = true\nlisten = "127.0.0.1:%s"\nupstream_port = %s\nstate_dir = "%s/state"\n' \
  "$port" "$upstream" "$work" >"$work/redwarden.toml"
"${qemu[@]}" "$dir/redwarden-front" --config "$work/redwarden.toml" 2>"$work/front.log" &
front_pid=$!
code=""
for _ in $(seq 100); do
  code=$(curl -sk -o /dev/null -w '%{http_code}' --max-time 5 "https://127.0.0.1:$port/" || true)
  [ "$code" = 502 ] && break
  sleep 0.2
done
[ "$code" = 502 ] || fail "redwarden-front did not answer over TLS (last: ${code:-none}): $(tail -3 "$work/front.log")"
grep -q "SHA-256" "$work/front.log" || fail "redwarden-front logged no certificate fingerprint"
echo "static build in $dir: runs, audits an image root (exit $rc), serves TLS under ${qemu[*]}"
