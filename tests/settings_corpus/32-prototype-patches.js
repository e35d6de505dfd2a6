// expect: nodered.weak-hash nodered.plain-http nodered.credential-key-beside-credentials nodered.function-modules nodered.palette-install nodered.palette-upload nodered.diagnostics nodered.tls-local-files nodered.audit-log-off
// Hostile: sets Object.prototype.toJSON and patches JSON.stringify, String, String.prototype.slice, RegExp.prototype.exec/test, isFinite and Number (as a careless polyfill might), then exports the template's values with a bcrypt cost-8 admin; the description must not change.

Object.defineProperty(Object.prototype, "toJSON", { value: function() { return { forged: true }; }, configurable: true, writable: true });
JSON.stringify = function() { return '"forged"'; };
String = function() { return "forged"; };
String.prototype.slice = function() { return "forged"; };
RegExp.prototype.exec = function() { return null; };
RegExp.prototype.test = function() { return false; };
globalThis.isFinite = function() { return false; };
globalThis.Number = function() { return NaN; };

module.exports = {
    flowFile: 'flows.json',
    adminAuth: {
        type: "credentials",
        users: [{
            username: "admin",
            password: "$2b$08$gRZhgJPQiTYNk1Z0uTQMluQCXEhjB1MnMj9/CtYdbKZgZ74uWcHjq",
            permissions: "*"
        }]
    },
    uiPort: process.env.PORT || 1880,
    diagnostics: { enabled: true, ui: true },
    runtimeState: { enabled: false, ui: false },
    logging: { console: { level: "info", metrics: false, audit: false } },
    functionExternalModules: true,
}
