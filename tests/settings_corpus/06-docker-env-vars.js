// expect: nodered.plain-http nodered.function-modules nodered.palette-install nodered.palette-upload nodered.diagnostics nodered.tls-local-files nodered.audit-log-off
// Realistic: docker-style settings (the nodered/node-red image's /data/settings.js edited to read everything from the container's environment): port, flow file, projects, the admin's hash and credentialSecret from env vars. None is set while redwarden evaluates it: the admin without a hash cannot log in (not a weak hash) and the secret comes from the environment (not beside the credentials).

module.exports = {
    flowFile: process.env.FLOWS || "flows.json",
    flowFilePretty: true,

    credentialSecret: process.env.NODE_RED_CREDENTIAL_SECRET,

    adminAuth: {
        type: "credentials",
        users: [{
            username: process.env.NODE_RED_USERNAME || "admin",
            password: process.env.NODE_RED_PASSWORD_HASH,
            permissions: "*"
        }]
    },

    uiPort: process.env.PORT || 1880,

    diagnostics: {
        enabled: true,
        ui: true,
    },
    runtimeState: {
        enabled: false,
        ui: false,
    },
    logging: {
        console: {
            level: process.env.NODE_RED_LOG_LEVEL || "info",
            metrics: false,
            audit: false
        }
    },

    exportGlobalContextKeys: false,
    externalModules: {},

    editorTheme: {
        projects: {
            enabled: process.env.NODE_RED_ENABLE_PROJECTS === "true",
            workflow: { mode: "manual" }
        },
        codeEditor: { lib: "monaco" }
    },

    functionExternalModules: true,
    functionTimeout: 0,
    functionGlobalContext: {},
    debugMaxLength: 1000,
    mqttReconnectTime: 15000,
    serialReconnectTime: 15000,
}
