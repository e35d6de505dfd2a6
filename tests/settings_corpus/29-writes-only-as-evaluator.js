// expect:
// Hostile: tries to write into /etc, /usr/local/bin, over its own settings.js and beside it in the userDir (catching each failure), then writes a proof file in the one folder the test made writable for the evaluating user: the proof must be owned by that user and nothing else may appear. The settings themselves are hardened.
// must-not-exist: /etc/redwarden-hostile-caught /usr/local/bin/redwarden-hostile-hook planted.js
// evaluator-writes: writable/proof

const fs = require("fs");
const path = require("path");
for (const target of ["/etc/redwarden-hostile-caught", "/usr/local/bin/redwarden-hostile-hook",
    path.join(__dirname, "settings.js"), path.join(__dirname, "planted.js")]) {
    try {
        fs.writeFileSync(target, "written by settings.js\n");
    } catch (e) {
        // EACCES, as it should be.
    }
}
fs.writeFileSync(path.join(__dirname, "writable", "proof"), String(process.getuid()));

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
