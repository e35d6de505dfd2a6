// expect: nodered.weak-hash nodered.plain-http nodered.function-modules nodered.palette-install nodered.palette-upload nodered.diagnostics nodered.tls-local-files nodered.audit-log-off nodered.http-node-auth-missing
// Realistic: what the Raspberry Pi installer (update-nodejs-and-nodered) leaves when asked to customise the settings: `node-red admin init` rendered with "yes" to user security (hash-pw uses bcrypt cost 8), no projects, a credentials passphrase, Function node modules allowed; flows with an HTTP endpoint.
// flows: http
/**
 * Node-RED Settings created at Sat, 14 Jun 2025 09:12:44 GMT
 *
 * It can contain any valid JavaScript code that will get run when Node-RED
 * is started.
 *
 * Lines that start with // are commented out.
 * Each entry should be separated from the entries above and below by a comma ','
 *
 * For more information about individual settings, refer to the documentation:
 *    https://nodered.org/docs/user-guide/runtime/configuration
 **/

module.exports = {

    /** The file containing the flows. If not set, defaults to flows_<hostname>.json **/
    flowFile: "flows.json",

    /** By default, credentials are encrypted in storage using a generated key. To
     * specify your own secret, set the following property.
     */
    credentialSecret: "greenhouse pump controller",

    flowFilePretty: true,

    /** To password protect the Node-RED editor and admin API, the following
     * property can be used. See https://nodered.org/docs/security.html for details.
     */
    adminAuth: {
        "type": "credentials",
        "users": [
            {
                "username": "pi",
                "password": "$2b$08$gRZhgJPQiTYNk1Z0uTQMluQCXEhjB1MnMj9/CtYdbKZgZ74uWcHjq",
                "permissions": "*"
            }
        ]
    },

    //httpNodeAuth: {user:"user",pass:"$2a$08$zZWtXTja0fB1pzD4sHCMyOCMYz2Z6dNbM6tl8sJogENOMcxWV9DN."},
    //httpStaticAuth: {user:"user",pass:"$2a$08$zZWtXTja0fB1pzD4sHCMyOCMYz2Z6dNbM6tl8sJogENOMcxWV9DN."},

    /** the tcp port that the Node-RED web server is listening on */
    uiPort: process.env.PORT || 1880,

    //uiHost: "0.0.0.0",

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
        // autoInstall: false,
        // palette: {
        //     allowInstall: true,
        //     allowUpdate: true,
        //     allowUpload: true,
        //     allowList: ['*'],
        //     denyList: [],
        // },
        // modules: {
        //     allowInstall: true,
        //     allowList: [],
        //     denyList: []
        // }
    },

    editorTheme: {
        palette: {
        },
        projects: {
            /** To enable the Projects feature, set this value to true */
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

    /** Allow the Function node to load additional npm modules directly */
    functionExternalModules: true,

    functionTimeout: 0,

    functionGlobalContext: {
        // os:require('os'),
    },

    debugMaxLength: 1000,

    mqttReconnectTime: 15000,

    serialReconnectTime: 15000,

    //tlsConfigDisableLocalFiles: true,
}
