SUMMARY = "Hardens a Node-RED installation on edge boards and keeps it running"
DESCRIPTION = "redwarden enforces OS-level hardening around Node-RED on every boot: a \
               dedicated user, file permissions, nftables firewall rules, a sandboxed \
               systemd service and an audit of Node-RED's own security settings, and \
               supervises Node-RED with systemd notify, watchdog, health probes and backoff."
# The project has no public home yet, and CI has no network to ping one.
# nooelint: oelint.vars.homepageping
HOMEPAGE = "https://example.invalid/redwarden"
BUGTRACKER = "https://example.invalid/redwarden/issues"
SECTION = "admin"
LICENSE = "Apache-2.0"
LIC_FILES_CHKSUM = "file://LICENSE;md5=3b83ef96387f14655fc854ddc3c6bd57"
CVE_PRODUCT = "redwarden"

PV .= "+git"
SRC_URI = "git://example.invalid/redwarden.git;protocol=https;branch=main"
# A release pins its commit here; REDWARDEN_SRCREV follows the branch for development builds.
REDWARDEN_SRCREV ?= "${AUTOREV}"
SRCREV = "${REDWARDEN_SRCREV}"

inherit cargo cargo-update-recipe-crates systemd useradd

require ${BPN}-crates.inc

# Cargo.toml's rust-version. An older toolchain fails deep inside a dependency's build: say so
# before anything is compiled.
REDWARDEN_MIN_RUST = "1.85"
python do_check_rust_version() {
    rust = (d.getVar("RUSTVERSION") or "").rstrip("%")
    wanted = d.getVar("REDWARDEN_MIN_RUST")
    if rust and bb.utils.vercmp_string_op(rust, wanted, "<"):
        bb.fatal("redwarden needs Rust %s or later; this build has %s. On scarthgap, add the "
                 "scarthgap/rust branch of meta-lts-mixins." % (wanted, rust))
}
do_check_rust_version[doc] = "Stops the build when the Rust toolchain is older than redwarden's minimum"
addtask check_rust_version before do_configure

# The dedicated account; redwarden apply keeps it as the configuration says.
USERADD_PACKAGES = "${PN}"
USERADD_PARAM:${PN} = "--system --user-group --home-dir ${localstatedir}/lib/node-red \
                       --no-create-home --shell ${base_sbindir}/nologin \
                       --comment 'Node-RED (redwarden)' nodered"

# Enabled: the apply at boot and the drift watch. redwarden.service is enabled by apply, once
# it has adopted or set up Node-RED.
SYSTEMD_SERVICE:${PN} = "redwarden-apply.service redwarden-drift.path redwarden-drift.timer"
SYSTEMD_AUTO_ENABLE:${PN} = "enable"

do_install:append() {
    install -d ${D}${systemd_system_unitdir}
    for unit in redwarden.service redwarden-apply.service redwarden-drift.path redwarden-drift.timer; do
        install -m 0644 ${S}/systemd/$unit ${D}${systemd_system_unitdir}/
    done
    install -D -m 0644 ${S}/systemd/tmpfiles.d/redwarden.conf ${D}${nonarch_libdir}/tmpfiles.d/redwarden.conf
    install -D -m 0644 ${S}/dist/redwarden.toml ${D}${sysconfdir}/redwarden/redwarden.toml
}

FILES:${PN} += "${nonarch_libdir}/tmpfiles.d ${systemd_system_unitdir}"
CONFFILES:${PN} = "${sysconfdir}/redwarden/redwarden.toml"
RDEPENDS:${PN} = "nftables"
