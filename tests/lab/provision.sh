#!/usr/bin/env bash
# Runs INSIDE the lab rootfs (chroot), at cache-build time, as root.
# Reproduces what Node-RED's official Debian/Raspberry Pi installer leaves
# behind (see shared/reference/nodered.md section 2):
#   - login user pi (bash, password set, pi-gen's groups), NOPASSWD sudo
#   - Node-RED installed from npm, globally, the way the installer does it
#   - userDir /home/pi/.node-red with Node-RED's own packaged settings.js
#   - the installer's nodered.service in /lib/systemd/system, enabled
# Usage: provision.sh FLAVOUR     (deb18 | node22)
# The host has put: /tmp/lab/nodered.service, and for node22 the official
# node binary in /usr/local/bin/node and npm in /usr/local/lib/node_modules/npm.
set -euo pipefail

flavour=${1:?usage: provision.sh deb18|node22}
export DEBIAN_FRONTEND=noninteractive HOME=/root LANG=C.UTF-8
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
umask 022

case "$flavour" in
deb18)
    nr_spec=node-red@4
    ;;
node22)
    nr_spec=node-red@5
    ln -sf ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm
    ln -sf ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx
    ;;
*)
    echo "provision.sh: unknown flavour $flavour" >&2
    exit 64
    ;;
esac

echo "provision: node $(node --version), npm $(npm --version) at $(command -v npm)"

# --- the login user, as pi-gen creates the first user --------------------
for g in adm dialout cdrom audio users sudo video games plugdev input netdev \
         gpio spi i2c render; do
    getent group "$g" >/dev/null || groupadd --system "$g"
done
if ! id pi >/dev/null 2>&1; then
    useradd --create-home --shell /bin/bash \
        --groups adm,dialout,cdrom,audio,users,sudo,video,games,plugdev,input,netdev,gpio,spi,i2c,render pi
fi
echo 'pi:raspberry' | chpasswd
printf 'pi ALL=(ALL) NOPASSWD: ALL\n' >/etc/sudoers.d/010_pi-nopasswd
chmod 0440 /etc/sudoers.d/010_pi-nopasswd

# --- Node-RED from npm, as the installer runs it ---------------------------
# (update-nodejs-and-nodered: sudo npm i -g --unsafe-perm node-red@...)
npm install -g --unsafe-perm --no-audit --no-fund --no-update-notifier "$nr_spec"
nr_root=$(npm root -g)/node-red
echo "provision: node-red $(node -p "require('$nr_root/package.json').version") in $nr_root"
command -v node-red-pi >/dev/null || { echo "node-red-pi not on PATH" >&2; exit 1; }

# --- userDir, with Node-RED's own packaged settings.js template -----------
install -d -o pi -g pi -m 0755 /home/pi/.node-red
install -o pi -g pi -m 0644 "$nr_root/settings.js" /home/pi/.node-red/settings.js

# --- the installer's unit ---------------------------------------------------
install -m 0644 /tmp/lab/nodered.service /lib/systemd/system/nodered.service
install -d /etc/systemd/system/multi-user.target.wants
ln -sf /lib/systemd/system/nodered.service \
    /etc/systemd/system/multi-user.target.wants/nodered.service

# --- container niceties (no effect on what redwarden judges) ---------------
echo nodered-lab >/etc/hostname
grep -q nodered-lab /etc/hosts 2>/dev/null || echo '127.0.1.1 nodered-lab' >>/etc/hosts
# nothing in the lab configures the network from inside (qemu-user cannot)
systemctl mask systemd-networkd-wait-online.service >/dev/null 2>&1 || true

# clean caches so the image stays small
rm -rf /root/.npm/_logs /tmp/* /var/cache/apt/archives/*.deb 2>/dev/null || true
echo "provision: done ($flavour)"
