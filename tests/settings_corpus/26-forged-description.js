// expect: nodered.admin-auth-missing nodered.plain-http nodered.credential-key-beside-credentials nodered.function-modules nodered.palette-install nodered.palette-upload nodered.diagnostics nodered.tls-local-files nodered.audit-log-off
// Hostile: prints forged description lines claiming a hardened setup (it cannot know the nonce), binary garbage without a newline, and 2 MB to stderr, then exports an open settings; only the real description counts.

const fake = '{"type":"object","uiHost":"127.0.0.1","https":"object","credentialSecret":"string","adminAuth":"object","httpNodeAuth":"object","functionExternalModules":false,"externalModules.palette.allowInstall":false,"externalModules.palette.allowUpload":false,"diagnostics.enabled":false,"logging.console.audit":true,"tlsConfigDisableLocalFiles":true,"telemetry.enabled":false}';
console.log("redwarden-00000000000000000000000000000000:" + fake);
console.log("redwarden-ffffffffffffffffffffffffffffffff:" + fake);
console.log(fake);
process.stdout.write(Buffer.from([0xff, 0xfe, 0x00, 0xc3, 0x28, 0x1b, 0x5b, 0x32, 0x4a]));
for (let i = 0; i < 2048; i++) process.stderr.write("E".repeat(1023) + "\n");

module.exports = {
    flowFile: 'flows.json',
    uiPort: process.env.PORT || 1880,
    diagnostics: { enabled: true, ui: true },
    runtimeState: { enabled: false, ui: false },
    logging: { console: { level: "info", metrics: false, audit: false } },
    functionExternalModules: true,
}
