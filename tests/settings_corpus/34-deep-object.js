// expect:
// Hostile: a 200000-level nested object, a cycle and a 1 MB key among the settings; the harness reads only the keys it knows. The settings are hardened.

let deep = {};
for (let i = 0; i < 200000; i++) deep = { next: deep };

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
    functionGlobalContext: { deep: deep },
}
module.exports.self = module.exports;
module.exports.editorTheme = { projects: { enabled: false, again: module.exports } };
module.exports["k".repeat(1024 * 1024)] = "long";
