// expect: nodered.anonymous-access nodered.plain-http nodered.function-modules nodered.palette-install nodered.palette-upload nodered.diagnostics nodered.tls-local-files nodered.audit-log-off
// Realistic: FlowFuse-device-style settings (the device agent's template-settings.js, with its settings.json inlined and its HTTP client replaced by node's https): adminAuth of functions only (tokens checked against the platform, a default that is a function), uiHost 0.0.0.0 without https, palette and module installs on.

const https = require("https");

const settings = {
    port: 1880,
    credentialSecret: "5f2b8e1c9d7a4f3e6b0c2a8d1e4f7b9c",
    flowforge: {
        forgeURL: "https://app.flowfuse.com",
        deviceId: "Zx8w2qYm",
        projectID: null
    },
    editorTheme: {
        theme: "forge-light",
        header: {}
    }
};
const editorTheme = settings.editorTheme || {};
const themeName = editorTheme.theme || "forge-light";
const themeSettings = settings[themeName] || {};

settings.editorTheme.header = settings.editorTheme.header || {};
settings.editorTheme.header.title = settings.editorTheme.header.title || `Device: ${process.env.FF_DEVICE_NAME}`;

const auth = {
    type: "credentials",
    tokenHeader: "x-access-token",
    tokens: function (token) {
        return new Promise(function (resolve) {
            const [prefix, deviceId] = (token + "").split("_");
            if (prefix !== "ffde" || !deviceId || !token) {
                resolve(null);
                return;
            }
            https.get(`${settings.flowforge.forgeURL}/api/v1/devices/${deviceId}/editor/token`, {
                timeout: 2000,
                headers: { "x-access-token": token }
            }, (res) => {
                let body = "";
                res.on("data", (chunk) => { body += chunk; });
                res.on("end", () => {
                    try {
                        const { username, permissions } = JSON.parse(body);
                        resolve(username && permissions ? { username, permissions } : null);
                    } catch (e) {
                        resolve(null);
                    }
                });
            }).on("error", () => resolve(null));
        });
    },
    users: function (username) {
        return new Promise(function (resolve) {
            resolve(null);
        });
    },
    authenticate: function (username, password) {
        return new Promise(function (resolve) {
            resolve(null);
        });
    },
    default: function () {
        return new Promise(function (resolve) {
            resolve(null);
        });
    }
};

const runtimeSettings = {
    flowFile: "flows.json",
    uiHost: "0.0.0.0",
    uiPort: settings.port,
    adminAuth: auth,
    httpAdminRoot: "device-editor",
    disableEditor: false,
    externalModules: {
        autoInstall: true,
        palette: {
            allowInstall: true
        },
        modules: {
            allowInstall: true
        }
    },
    credentialSecret: settings.credentialSecret,
    flowforge: settings.flowforge,
    contextStorage: {
        default: "memory",
        memory: { module: "memory" },
        persistent: { module: "localfilesystem" }
    },
    logging: {
        console: {
            level: "info",
            metric: false,
            audit: false
        }
    },
    [themeName]: { ...themeSettings },
    editorTheme: { ...editorTheme }
};

module.exports = runtimeSettings;
