// expect:
// Realistic: a headless gateway with httpAdminRoot false (no editor, no admin API) and no adminAuth; palette and diagnostics left at their defaults, which only the admin API serves, so none of those findings apply.
// flows: http

const fs = require("fs");

module.exports = {
    flowFile: "flows.json",
    flowFilePretty: true,

    /** Set in the service's environment (systemd EnvironmentFile), never in the userDir. */
    credentialSecret: process.env.NODE_RED_CREDENTIAL_SECRET,

    /** A headless device: no editor, no admin API (red.js and editor-api skip both when false). */
    httpAdminRoot: false,

    https: function() {
        return {
            key: fs.readFileSync("/etc/node-red/tls/privkey.pem"),
            cert: fs.readFileSync("/etc/node-red/tls/cert.pem")
        };
    },
    httpsRefreshInterval: 12,
    requireHttps: true,

    httpNodeAuth: {user: "sensor", pass: "$2b$12$mGxwD/Yb04k5vXa8ZJaBauiCGd2MXzbaIHwQi1mBsffVxd7IHANWi"},

    uiPort: process.env.PORT || 1880,
    uiHost: "127.0.0.1",


    runtimeState: {
        enabled: false,
        ui: false,
    },
    telemetry: {
        enabled: false,
        updateNotification: false
    },
    logging: {
        console: {
            level: "info",
            metrics: false,
            audit: true
        }
    },

    exportGlobalContextKeys: false,

    externalModules: {
        autoInstall: false,
        palette: {},
        modules: {
            allowInstall: false
        }
    },

    editorTheme: {
        projects: {
            enabled: false
        },
        codeEditor: {
            lib: "monaco"
        }
    },

    functionExternalModules: false,
    functionTimeout: 0,
    functionGlobalContext: {},

    debugMaxLength: 1000,
    mqttReconnectTime: 15000,
    serialReconnectTime: 15000,

    tlsConfigDisableLocalFiles: true,
}
