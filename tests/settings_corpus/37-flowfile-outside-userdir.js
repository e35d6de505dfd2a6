// expect: nodered.http-node-auth-missing
// Hostile: flowFile points outside the userDir (/etc/shadow); redwarden reads only a flows file inside the userDir, here flows.json with an HTTP endpoint (and no httpNodeAuth), never /etc/shadow. The settings are otherwise hardened.
// flows: http

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
    flowFile: "/etc/shadow",
}
