// expect: nodered.settings-unevaluable
// Hostile/realistic: requires a module that is not installed (old Pi settings loaded moment or i2c-bus into functionGlobalContext); Node-RED would not start either.

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
    functionGlobalContext: {
        os: require("os"),
        missing: require("nonexistent-module")
    },
}
