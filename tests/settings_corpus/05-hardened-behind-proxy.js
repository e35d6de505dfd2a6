// expect:
// Realistic: hardened behind a TLS reverse proxy on the same board: uiHost ::1, no https of its own, two bcrypt cost-12 users (admin and a read-only operator), a literal credentialSecret, Function node modules allowed but child_process and fs on the denyList, httpStatic with httpStaticAuth, httpNodeAuth; dashboard flows.
// flows: dashboard

module.exports = {
    flowFile: "flows.json",
    flowFilePretty: true,
    credentialSecret: "0d7c3b1f5e9a4c2d8b6f1a3e5c7d9b2f",

    adminAuth: {
        type: "credentials",
        users: [{
            username: "admin",
            password: "$2b$12$DjXq7BOBKE.Zkd8j34HV4.VelpBMF6mWgDpoaIFOeRJfojlh3LIZ.",
            permissions: "*"
        }, {
            username: "operator",
            password: "$2b$12$dLuEWxjd1rnKkATPpGLBa..4k4SgJ08bAwjFxDjkWuNUrKbnneAMu",
            permissions: "read"
        }]
    },

    httpNodeAuth: {user: "dashboard", pass: "$2b$12$mGxwD/Yb04k5vXa8ZJaBauiCGd2MXzbaIHwQi1mBsffVxd7IHANWi"},
    httpStaticAuth: {user: "dashboard", pass: "$2b$12$mGxwD/Yb04k5vXa8ZJaBauiCGd2MXzbaIHwQi1mBsffVxd7IHANWi"},

    uiPort: 1880,
    uiHost: "::1",

    httpStatic: "/srv/node-red/static/",
    httpStaticRoot: "/static/",

    diagnostics: { enabled: false, ui: false },
    runtimeState: { enabled: false, ui: false },
    logging: {
        console: { level: "info", metrics: false, audit: true }
    },

    externalModules: {
        palette: {
            allowInstall: false,
            allowUpload: false
        },
        modules: {
            allowInstall: false,
            allowList: ["moment", "lodash"],
            denyList: ["child_process", "fs", "node:child_process", "node:fs"]
        }
    },

    editorTheme: {
        projects: { enabled: false }
    },

    functionExternalModules: true,
    ui: { path: "ui" },
    tlsConfigDisableLocalFiles: true,
}
