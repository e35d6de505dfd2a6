// expect: nodered.credentials-unencrypted nodered.cors-any-origin nodered.projects nodered.runtime-state nodered.telemetry nodered.http-static-auth-missing nodered.plain-http nodered.function-modules nodered.palette-install nodered.palette-upload nodered.diagnostics nodered.tls-local-files nodered.audit-log-off
// Realistic weak: a workshop board with every optional feature on: credentials stored unencrypted (credentialSecret false), the template's permissive httpNodeCors (origin "*"), projects, runtimeState, telemetry, httpStatic without httpStaticAuth, listening on all interfaces; the admin itself has a good hash.

module.exports = {
    flowFile: "flows.json",
    credentialSecret: false,
    adminAuth: {
        type: "credentials",
        users: [{
            username: "admin",
            password: "$2b$12$DjXq7BOBKE.Zkd8j34HV4.VelpBMF6mWgDpoaIFOeRJfojlh3LIZ.",
            permissions: "*"
        }]
    },
    uiPort: process.env.PORT || 1880,
    uiHost: "0.0.0.0",
    httpNodeCors: {
        origin: "*",
        methods: "GET,PUT,POST,DELETE"
    },
    httpStatic: [
        {path: '/home/pi/pics/',    root: "/img/"},
        {path: '/home/pi/reports/', root: "/doc/"}
    ],
    diagnostics: { enabled: true, ui: true },
    runtimeState: { enabled: true, ui: true },
    telemetry: { enabled: true, updateNotification: true },
    logging: { console: { level: "info", metrics: false, audit: false } },
    externalModules: {
        autoInstall: true,
        palette: { allowInstall: true, allowUpdate: true, allowUpload: true }
    },
    editorTheme: {
        projects: { enabled: true, workflow: { mode: "auto" } }
    },
    functionExternalModules: true,
}
