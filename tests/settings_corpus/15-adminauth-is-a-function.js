// expect:
// Weak shape: adminAuth written as a function instead of an object. Node-RED copies its (no) own properties, so it has no users and no default: every request to the editor and admin API is refused. Locked, not open; otherwise hardened.

module.exports = {
    credentialSecret: process.env.NODE_RED_CREDENTIAL_SECRET,
    adminAuth: function() {
        return {
            type: "credentials",
            users: [{ username: "admin", password: "raspberry", permissions: "*" }],
            default: { permissions: "*" }
        };
    },
    uiHost: "127.0.0.1",
    diagnostics: { enabled: false },
    logging: { console: { audit: true } },
    externalModules: { palette: { allowInstall: false, allowUpload: false } },
    functionExternalModules: false,
    tlsConfigDisableLocalFiles: true,
}
