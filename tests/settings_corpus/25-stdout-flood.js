// expect: nodered.settings-unevaluable
// Hostile: prints 10 MB to stdout while loading; the 256 KiB cap must stop it.

const line = "A".repeat(1023) + "\n";
for (let i = 0; i < 10 * 1024; i++) process.stdout.write(line);

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
