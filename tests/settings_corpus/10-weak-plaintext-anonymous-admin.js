// expect: nodered.weak-hash nodered.anonymous-access
// Realistic weak: a password typed into adminAuth in clear text (Node-RED cannot even log it in: it compares bcrypt) and a default user that gives everyone "*" without a login; otherwise hardened.

module.exports = {
    flowFile: "flows.json",
    credentialSecret: process.env.NODE_RED_CREDENTIAL_SECRET,
    adminAuth: {
        type: "credentials",
        users: [{
            username: "admin",
            password: "raspberry",
            permissions: "*"
        }],
        default: {
            permissions: "*"
        }
    },
    https: function() {
        return { key: require("fs").readFileSync("privkey.pem"), cert: require("fs").readFileSync("cert.pem") };
    },
    diagnostics: { enabled: false, ui: false },
    runtimeState: { enabled: false, ui: false },
    logging: { console: { level: "info", metrics: false, audit: true } },
    externalModules: {
        palette: { allowInstall: false, allowUpload: false },
        modules: { allowInstall: false }
    },
    functionExternalModules: false,
    tlsConfigDisableLocalFiles: true,
}
