// expect: nodered.anonymous-access
// Realistic weak: the docs' "default user" example, read-only access for everyone who has not logged in (they see every flow and its settings), beside a good bcrypt cost-12 admin; otherwise hardened.

module.exports = {
    credentialSecret: "8e1f0c6a2b9d4e7f3a5c1b8d6e2f9a0c",
    adminAuth: {
        type: "credentials",
        users: [{
            username: "admin",
            password: "$2b$12$DjXq7BOBKE.Zkd8j34HV4.VelpBMF6mWgDpoaIFOeRJfojlh3LIZ.",
            permissions: "*"
        }],
        default: {
            permissions: "read"
        }
    },
    uiHost: "localhost",
    diagnostics: { enabled: false },
    logging: { console: { level: "info", audit: true } },
    externalModules: {
        palette: { allowInstall: false, allowUpload: false }
    },
    functionExternalModules: false,
    tlsConfigDisableLocalFiles: true,
}
