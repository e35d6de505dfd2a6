// expect: nodered.credentials-unencrypted
// Hostile to a naive check: the hardened file with credentialSecret set to the empty string. It is a string, so Node-RED 4 takes it as the key (credentials.js: `typeof userKey === 'string'`), and the SHA-256 of "" is known to everyone.
// flows: http

const fs = require("fs");

module.exports = {
    flowFile: "flows.json",
    flowFilePretty: true,

    /** Set in the service's environment (systemd EnvironmentFile), never in the userDir. */
    credentialSecret: "",

    adminAuth: {
        type: "credentials",
        users: [{
            username: "admin",
            password: "$2b$12$DjXq7BOBKE.Zkd8j34HV4.VelpBMF6mWgDpoaIFOeRJfojlh3LIZ.",
            permissions: "*"
        }]
    },

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

    diagnostics: {
        enabled: false,
        ui: false,
    },
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
        palette: {
            allowInstall: false,
            allowUpdate: false,
            allowUpload: false
        },
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
