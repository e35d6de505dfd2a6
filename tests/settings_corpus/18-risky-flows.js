// expect: nodered.flow-exec nodered.flow-function-os nodered.flow-plain-credentials nodered.http-node-auth-missing
// Realistic flows: hardened settings without httpNodeAuth, and flows with an exec node, a Function node that requires child_process, an MQTT broker whose credentials sit in the flows file, and an HTTP endpoint.
// flows: risky

module.exports = {
    flowFile: "flows.json",
    credentialSecret: process.env.NODE_RED_CREDENTIAL_SECRET,
    adminAuth: {
        type: "credentials",
        users: [{
            username: "admin",
            password: "$2b$12$DjXq7BOBKE.Zkd8j34HV4.VelpBMF6mWgDpoaIFOeRJfojlh3LIZ.",
            permissions: "*"
        }]
    },
    uiHost: "127.0.0.1",
    diagnostics: { enabled: false },
    logging: { console: { audit: true } },
    externalModules: { palette: { allowInstall: false, allowUpload: false } },
    functionExternalModules: false,
    tlsConfigDisableLocalFiles: true,
}
