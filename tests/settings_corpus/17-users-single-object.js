// expect: nodered.weak-hash
// Weak shape: adminAuth.users as a single object rather than a list (Node-RED accepts it as a list of one) with the password in clear text; otherwise hardened.

module.exports = {
    credentialSecret: process.env.NODE_RED_CREDENTIAL_SECRET,
    adminAuth: {
        type: "credentials",
        users: { username: "admin", password: "changeme", permissions: "*" }
    },
    uiHost: "127.0.0.1",
    diagnostics: { enabled: false },
    logging: { console: { audit: true } },
    externalModules: { palette: { allowInstall: false, allowUpload: false } },
    functionExternalModules: false,
    tlsConfigDisableLocalFiles: true,
}
