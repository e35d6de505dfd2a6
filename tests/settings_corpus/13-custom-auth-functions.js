// expect: nodered.anonymous-access
// Realistic: the docs' "custom user authentication" shape (adminAuth: require("./user-authentication"), inlined here): users, authenticate and default are functions, and default resolves to a read-only anonymous user, which redwarden cannot see without calling it; otherwise hardened.

const crypto = require("crypto");

module.exports = {
    credentialSecret: process.env.NODE_RED_CREDENTIAL_SECRET,
    adminAuth: {
        type: "credentials",
        users: function(username) {
            return new Promise(function(resolve) {
                if (username === "admin") {
                    resolve({ username: "admin", permissions: "*" });
                } else {
                    resolve(null);
                }
            });
        },
        authenticate: function(username, password) {
            return new Promise(function(resolve) {
                const digest = crypto.createHash("sha256").update(String(password)).digest("hex");
                if (username === "admin" && digest === process.env.NODE_RED_ADMIN_SHA256) {
                    resolve({ username: "admin", permissions: "*" });
                } else {
                    resolve(null);
                }
            });
        },
        default: function() {
            return new Promise(function(resolve) {
                resolve({ anonymous: true, permissions: "read" });
            });
        }
    },
    uiHost: "127.0.0.1",
    diagnostics: { enabled: false },
    logging: { console: { audit: true } },
    externalModules: { palette: { allowInstall: false, allowUpload: false } },
    functionExternalModules: false,
    tlsConfigDisableLocalFiles: true,
}
