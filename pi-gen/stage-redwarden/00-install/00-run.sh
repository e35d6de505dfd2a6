#!/bin/bash -e
# Installs redwarden from its Debian package (dist/deb: armhf runs on every 32-bit Pi, arm64 on
# the 64-bit images) and enforces its policy on the image itself. The package's postinst makes
# the nodered account and enables redwarden-apply.service and the drift watch;
# `redwarden --root / apply` then adopts Node-RED (when the image has one, as the official
# installer leaves it) and writes the units, modes and settings, changing files only: no unit
# is started and no firewall is loaded on the build host. On first boot, redwarden-apply.service
# loads the firewall and confirms the adoption once Node-RED serves.
#
# REDWARDEN_DEB: the package; default, the one for the image's architecture in this folder.
arch=$(chroot "${ROOTFS_DIR}" dpkg --print-architecture)
deb=${REDWARDEN_DEB:-$(find "$(dirname "$0")" -maxdepth 1 -name "redwarden_*_${arch}.deb" | sort | tail -n 1)}
if [ ! -f "${deb}" ]; then
	echo "stage-redwarden: no redwarden package for ${arch}: copy dist/deb's redwarden_*_${arch}.deb next to $0, or set REDWARDEN_DEB" >&2
	exit 1
fi
install -m 644 "${deb}" "${ROOTFS_DIR}/tmp/redwarden.deb"
# An image build has nobody to answer dpkg's questions: a configuration file already in the
# image is kept. apply exits 1 when findings remain that it cannot fix (the audit's advice).
on_chroot << EOF
apt-get install -y -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold /tmp/redwarden.deb
rm -f /tmp/redwarden.deb
redwarden --root / apply || [ \$? = 1 ]
EOF
