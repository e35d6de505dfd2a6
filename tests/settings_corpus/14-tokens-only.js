// expect:
// Realistic: adminAuth with tokens only (no users, no type): only callers that present a token the function accepts get in, as behind an authenticating proxy that adds the header; otherwise hardened.

module.exports = {
    credentialSecret: process.env.NODE_RED_CREDENTIAL_SECRET,
    adminAuth: {
        tokenHeader: "x-api-token",
        tokens: function(token) {
            return new Promise(function(resolve) {
                if (token && token === process.env.NODE_RED_API_TOKEN) {
                    resolve({ username: "automation", permissions: "*" });
                } else {
                    resolve(null);
                }
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
