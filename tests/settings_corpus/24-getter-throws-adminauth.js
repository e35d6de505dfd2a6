// expect: nodered.admin-auth-missing
// Hostile: adminAuth is a getter that throws, hoping to crash the harness; it is described as having no adminAuth. The rest is hardened.

module.exports = {
    credentialSecret: process.env.NODE_RED_CREDENTIAL_SECRET,
    adminAuth: {
        type: "credentials",
        users: [{
            username: "admin",
            password: "$2b$12$DjXq7BOBKE.Zkd8j34HV4.VelpBMF6mWgDpoaIFOeRJfojlh3LIZ.",
            permissions: "*"
        }]
    },
    uiHost: "127.0.0.1",
    diagnostics: { enabled: false },
    logging: { console: { audit: true } },
    externalModules: { palette: { allowInstall: false, allowUpload: false } },
    functionExternalModules: false,
    tlsConfigDisableLocalFiles: true,
}
Object.defineProperty(module.exports, "adminAuth", {
    enumerable: true,
    get() { throw new Error("no adminAuth for you"); }
});
