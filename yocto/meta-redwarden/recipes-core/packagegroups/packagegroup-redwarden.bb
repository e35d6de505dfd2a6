SUMMARY = "redwarden and what its policy needs on the device"
DESCRIPTION = "Add to an image with IMAGE_INSTALL:append = \" packagegroup-redwarden\"."
# The project has no public home yet, and CI has no network to ping one.
# nooelint: oelint.vars.homepageping
HOMEPAGE = "https://example.invalid/redwarden"
BUGTRACKER = "https://example.invalid/redwarden/issues"
SECTION = "admin"
LICENSE = "MIT"

inherit packagegroup

RDEPENDS:${PN} = "nftables redwarden"
