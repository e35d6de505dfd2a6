// expect: nodered.weak-hash
// Realistic weak: an otherwise hardened settings.js whose admin hash was made with `node-red admin hash-pw` (bcrypt cost 8) and whose httpNodeAuth pass is a legacy 32-character MD5 hash (still accepted by Node-RED); flows with an HTTP endpoint.
// flows: http

module.exports = {
    flowFile: "flows.json",
    credentialSecret: process.env.NODE_RED_CREDENTIAL_SECRET,
    adminAuth: {
        type: "credentials",
        users: [{
            username: "admin",
            password: "$2b$08$gRZhgJPQiTYNk1Z0uTQMluQCXEhjB1MnMj9/CtYdbKZgZ74uWcHjq",
            permissions: "*"
        }]
    },
    httpNodeAuth: {user: "api", pass: "ad06f571c8bfdda1c7b67309125a2889"},
    uiHost: "127.0.0.1",
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
