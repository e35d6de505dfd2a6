// expect:
// Hostile: leaves a timer that would fire in a day, an interval, a never-settling promise and stdin held open, so the event loop never empties; the harness exits after describing anyway. The settings are hardened.

setTimeout(() => { console.log("too late"); }, 24 * 3600 * 1000);
setInterval(() => {}, 1000);
new Promise(() => {});
process.stdin.resume();

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
