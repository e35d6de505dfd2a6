// expect:
// Hostile: starts a detached child in a session of its own that sleeps past the evaluation, to run on as the service user outside the service's sandbox once root's check has gone. As root, settings.js runs as pid 1 of a pid namespace, so the kernel kills the child when node ends. The settings are hardened.
// outlived-by: redwarden-corpus-outliver

require("child_process").spawn("/bin/sh", ["-c", "sleep 30; : redwarden-corpus-outliver"], {
    detached: true,
    stdio: "ignore"
}).unref();

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
