'use strict';
// redwarden's settings.js harness. settings.js is JavaScript that runs when it is loaded, and it
// may be hostile, so redwarden runs this as an unprivileged user with a time and memory limit.
// It prints one line: a nonce (read from stdin before settings.js runs, so settings.js cannot
// forge the line) and a flat JSON object describing the security-relevant settings: presence,
// types, hash algorithm and cost, never a secret's value. Everything used after settings.js has
// run is captured first, and the line is built by string concatenation, which no prototype
// patch can reach.
const fs = require('fs');
const writeSync = fs.writeSync;
const quote = JSON.stringify;
const toStr = String;
const isArray = Array.isArray;
const exit = process.exit;
const nonce = fs.readFileSync(0, 'utf8').trim();
const file = process.argv[2];

let body = '';
function put(key, value) {
    let v;
    if (value === null || value === undefined) v = 'null';
    else if (typeof value === 'boolean') v = value ? 'true' : 'false';
    else if (typeof value === 'number') v = isFinite(value) ? toStr(value) : 'null';
    else v = quote(toStr(value).slice(0, 200));
    body += (body ? ',' : '') + quote(key) + ':' + v;
}
function done(extra) {
    writeSync(1, '\n' + nonce + '{' + body + (extra || '') + '}\n');
    exit(0);
}
// Reads a property without trusting it: a getter may throw.
function get(object, key) {
    try {
        return object !== null && (typeof object === 'object' || typeof object === 'function') ? object[key] : undefined;
    } catch (e) {
        return undefined;
    }
}
function kind(value) {
    if (value === undefined) return 'absent';
    if (value === null) return 'null';
    if (isArray(value)) return 'array';
    return typeof value;
}
// The kind of a password hash, never the hash itself.
const TEMPLATE_HASH = '$2a$08$zZWtXTja0fB1pzD4sHCMyOCMYz2Z6dNbM6tl8sJogENOMcxWV9DN.';
function hash(prefix, value) {
    if (typeof value !== 'string') {
        put(prefix + '.hash', kind(value));
        return;
    }
    const bcrypt = /^\$2[aby]?\$(\d\d)\$[./A-Za-z0-9]{53}$/.exec(value);
    if (bcrypt) {
        put(prefix + '.hash', 'bcrypt');
        put(prefix + '.cost', Number(bcrypt[1]));
    } else if (/^[0-9a-f]{32}$/i.test(value)) {
        put(prefix + '.hash', 'md5');
    } else {
        put(prefix + '.hash', 'plain');
    }
    put(prefix + '.example', value === TEMPLATE_HASH);
}
function permissions(value) {
    if (typeof value === 'string') return value;
    if (isArray(value)) return value.join(',');
    return kind(value);
}

let s;
try {
    s = require(file);
} catch (e) {
    put('error', toStr(get(e, 'message') || e));
    done();
}
put('type', kind(s));
if (s === null || typeof s !== 'object') done();

for (const key of ['uiHost', 'uiPort', 'httpAdminRoot', 'httpNodeRoot', 'httpStatic', 'flowFile', 'disableEditor',
    'functionExternalModules', 'tlsConfigDisableLocalFiles', 'requireHttps']) {
    const value = get(s, key);
    put(key, typeof value === 'object' || typeof value === 'function' ? kind(value) : value);
}
put('https', kind(get(s, 'https')));
const secret = get(s, 'credentialSecret');
put('credentialSecret', secret === false ? 'false' : kind(secret));

const admin = get(s, 'adminAuth');
put('adminAuth', kind(admin));
put('adminAuth.type', get(admin, 'type'));
put('adminAuth.tokens', kind(get(admin, 'tokens')));
const users = get(admin, 'users');
put('adminAuth.users', kind(users));
if (isArray(users)) {
    put('adminAuth.users.count', users.length);
    for (let i = 0; i < users.length && i < 10; i++) {
        hash('adminAuth.users.' + i + '.password', get(users[i], 'password'));
        put('adminAuth.users.' + i + '.permissions', permissions(get(users[i], 'permissions')));
    }
}
const anonymous = get(admin, 'default');
put('adminAuth.default', kind(anonymous));
put('adminAuth.default.permissions', anonymous === undefined ? null : permissions(get(anonymous, 'permissions')));

for (const key of ['httpNodeAuth', 'httpStaticAuth']) {
    const auth = get(s, key);
    put(key, kind(auth));
    if (auth && typeof auth === 'object') hash(key + '.pass', get(auth, 'pass'));
}

const external = get(s, 'externalModules');
for (const [group, keys] of [['palette', ['allowInstall', 'allowUpload', 'allowUpdate']], ['modules', ['allowInstall']]]) {
    const section = get(external, group);
    for (const key of keys) put('externalModules.' + group + '.' + key, get(section, key));
    for (const list of ['allowList', 'denyList']) {
        const value = get(section, list);
        put('externalModules.' + group + '.' + list, isArray(value) ? value.length : kind(value));
    }
}
put('diagnostics.enabled', get(get(s, 'diagnostics'), 'enabled'));
put('runtimeState.enabled', get(get(s, 'runtimeState'), 'enabled'));
put('editorTheme.projects.enabled', get(get(get(s, 'editorTheme'), 'projects'), 'enabled'));
const cors = get(get(s, 'httpNodeCors'), 'origin');
put('httpNodeCors.origin', typeof cors === 'string' ? cors : kind(cors));
put('logging.console.audit', get(get(get(s, 'logging'), 'console'), 'audit'));
put('telemetry.enabled', get(get(s, 'telemetry'), 'enabled'));
done();
