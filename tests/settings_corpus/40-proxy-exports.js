// expect: nodered.admin-auth-missing nodered.plain-http nodered.credential-key-beside-credentials nodered.function-modules nodered.palette-install nodered.palette-upload nodered.diagnostics nodered.tls-local-files nodered.audit-log-off
// Hostile: exports a Proxy whose every property read throws; each setting is described as absent, so it reads like an empty settings.js.

module.exports = new Proxy({}, {
    get(target, key) { throw new Error("no " + String(key)); },
    has() { throw new Error("no"); },
    ownKeys() { throw new Error("no"); },
});
