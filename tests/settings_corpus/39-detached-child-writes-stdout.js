// expect:
// Hostile: starts a detached child (its own session, out of the process group redwarden kills) that waits for node to exit and then writes to the inherited stdout without end; the run must still finish and read no more than its cap. The child dies of SIGPIPE when redwarden closes the pipe. The settings are hardened.

require("child_process").spawn("/bin/sh", ["-c", "while kill -0 " + process.pid + " 2>/dev/null; do :; done; exec yes redwarden-detached-child"], {
    detached: true,
    stdio: ["ignore", "inherit", "ignore"]
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
