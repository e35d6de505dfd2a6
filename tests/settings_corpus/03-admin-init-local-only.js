// expect: nodered.admin-auth-missing nodered.credentials-unencrypted nodered.palette-install nodered.palette-upload nodered.diagnostics nodered.tls-local-files nodered.audit-log-off
// Realistic: `node-red admin init` answered "No" to user security (it then sets uiHost 127.0.0.1), an empty credentials passphrase (rendered as credentialSecret: false) and "No" to Function node modules.
/**
 * Node-RED Settings created at Mon, 03 Mar 2025 17:40:02 GMT
 **/

module.exports = {

    flowFile: "flows.json",

    credentialSecret: false,

    flowFilePretty: true,

    //adminAuth: {
    //    type: "credentials",
    //    users: [{
    //        username: "admin",
    //        password: "$2a$08$zZWtXTja0fB1pzD4sHCMyOCMYz2Z6dNbM6tl8sJogENOMcxWV9DN.",
    //        permissions: "*"
    //    }]
    //},

    uiPort: process.env.PORT || 1880,

    uiHost: "127.0.0.1",

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
            level: "info",
            metrics: false,
            audit: false
        }
    },

    exportGlobalContextKeys: false,

    externalModules: {
    },

    editorTheme: {
        palette: {
        },
        projects: {
            enabled: false,
            workflow: {
                mode: "manual"
            }
        },
        codeEditor: {
            lib: "monaco",
            options: {
            }
        }
    },

    functionExternalModules: false,

    functionTimeout: 0,

    functionGlobalContext: {
    },

    debugMaxLength: 1000,
    mqttReconnectTime: 15000,
    serialReconnectTime: 15000,
}
