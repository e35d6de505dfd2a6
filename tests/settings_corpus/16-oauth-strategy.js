// expect:
// Realistic: the docs' OAuth example (type "strategy" with passport-github installed in the userDir): the users have no passwords because GitHub logs them in, which is not a weak hash; otherwise hardened.
// module: passport-github

module.exports = {
    credentialSecret: process.env.NODE_RED_CREDENTIAL_SECRET,
    adminAuth: {
        type: "strategy",
        strategy: {
            name: "github",
            label: "Sign in with GitHub",
            icon: "fa-github",
            strategy: require("passport-github").Strategy,
            options: {
                clientID: process.env.GITHUB_CLIENT_ID,
                clientSecret: process.env.GITHUB_CLIENT_SECRET,
                callbackURL: "https://nodered.example.org/auth/strategy/callback",
                verify: function(token, tokenSecret, profile, done) {
                    done(null, profile);
                }
            },
        },
        users: [
            { username: "octocat", permissions: ["*"] },
            { username: "monalisa", permissions: ["read"] }
        ]
    },
    uiHost: "127.0.0.1",
    diagnostics: { enabled: false },
    logging: { console: { audit: true } },
    externalModules: { palette: { allowInstall: false, allowUpload: false } },
    functionExternalModules: false,
    tlsConfigDisableLocalFiles: true,
}
