// expect: nodered.settings-unevaluable
// Hostile: writes /etc/redwarden-hostile while loading, without catching the error; evaluated unprivileged it fails (EACCES) and the file must not exist afterwards.
// must-not-exist: /etc/redwarden-hostile

require("fs").writeFileSync("/etc/redwarden-hostile", "written by settings.js\n");

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
