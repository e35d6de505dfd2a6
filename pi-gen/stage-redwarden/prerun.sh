#!/bin/bash -e
# pi-gen: this stage builds on the previous stage's root file system.
if [ ! -d "${ROOTFS_DIR}" ]; then
	copy_previous
fi
