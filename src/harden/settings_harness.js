'use strict';
// redwarden's settings.js harness. settings.js is JavaScript that runs when it is loaded, and it
// may be hostile, so redwarden runs this as an unprivileged user with a time and memory limit.
// It prints one line: a nonce (read from stdin before settings.js runs, so settings.js cannot
// forge the line) and a flat JSON object describing the security-relevant settings: presence,
// types, hash algorithm and cost, never a secret's value. Everything used after settings.js has
// run is captured first (methods bound, so that patching a prototype does not reach them), and
// the line is built by string concatenation.
const fs = require('fs');
const writeSync = fs.writeSync;
const quote = JSON.stringify;
const toStr = String;
const toNumber = Number;
const finite = isFinite;
const isArray = Array.isArray;
const uncurry = Function.prototype.call.bind.bind(Function.prototype.call);
const slice = uncurry(String.prototype.slice);
const exec = uncurry(RegExp.prototype.exec);
const exit = process.exit;
const nonce = fs.readFileSync(0, 'utf8').trim();
const file = process.argv[2];
// stdout blocks: node writes to a pipe asynchronously and drops what is pending at exit, and a
// non-blocking pipe may take the description in part or not at all (EAGAIN). So what
// settings.js prints reaches redwarden, and counts against its cap, before the description.
const stdoutHandle = process.stdout._handle;
if (stdoutHandle && typeof stdoutHandle.setBlocking === 'function') stdoutHandle.setBlocking(true);

let body = '';
function put(key, value) {
    let v;
    if (value === null || value === undefined) v = 'null';
    else if (typeof value === 'boolean') v = value ? 'true' : 'false';
    else if (typeof value === 'number') v = finite(value) ? toStr(value) : 'null';
    else v = quote(slice(toStr(value), 0, 200));
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
    const bcrypt = exec(/^\$2[aby]?\$(\d\d)\$[./A-Za-z0-9]{53}$/, value);
    if (bcrypt) {
        put(prefix + '.hash', 'bcrypt');
        put(prefix + '.cost', toNumber(bcrypt[1]));
    } else if (exec(/^[0-9a-f]{32}$/i, value) !== null) {
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

// settings.js runs with PATH and HOME only, so a credentialSecret taken from a variable the
// service's environment sets (as redwarden recommends) reads undefined here. The variables it
// reads and finds unset are noted; see credentialSecret below.
const env = process.env;
const reflectGet = Reflect.get;
const unset = [];
process.env = new Proxy(env, {
    get(target, key) {
        const value = reflectGet(target, key);
        if (value === undefined && typeof key === 'string' && unset.length < 64) {
            let seen = false;
            for (let i = 0; i < unset.length; i++) seen = seen || unset[i] === key;
            if (!seen) unset.push(key);
        }
        return value;
    },
    // Assigned on the environment itself: through the proxy, an existing variable would be
    // redefined with a partial descriptor, which process.env refuses.
    set(target, key, value) {
        target[key] = value;
        return true;
    },
});
const ENV_MARK = 'redwarden-unset-environment-variable:';
const cache = require.cache;
let resolved = file;
try {
    resolved = require.resolve(file);
} catch (e) {
    // require says why below.
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
const admin = get(s, 'adminAuth');
put('adminAuth', kind(admin));
put('adminAuth.type', get(admin, 'type'));
put('adminAuth.tokens', kind(get(admin, 'tokens')));
const users = get(admin, 'users');
put('adminAuth.users', kind(users));
// Node-RED takes a single user object as a list of one.
const list = isArray(users) ? users : users && typeof users === 'object' ? [users] : null;
if (list) {
    put('adminAuth.users.count', list.length);
    for (let i = 0; i < list.length && i < 10; i++) {
        hash('adminAuth.users.' + i + '.password', get(list[i], 'password'));
        put('adminAuth.users.' + i + '.permissions', permissions(get(list[i], 'permissions')));
    }
}
// Node-RED ignores a falsy default, calls a function, and otherwise grants default.permissions
// (a string or a list of them; anything else grants nothing).
const anonymous = get(admin, 'default');
put('adminAuth.default', kind(anonymous));
const granted = anonymous && typeof anonymous !== 'function' ? get(anonymous, 'permissions') : undefined;
put('adminAuth.default.permissions', typeof granted === 'string' || isArray(granted) ? permissions(granted) : null);

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
// Last, as it loads settings.js again: a credentialSecret that is undefined while settings.js read
// unset variables is looked for once more with each of them set to a marker. One that comes out
// as a marker is read from the environment, out of the userDir; every other setting is described
// from the first load.
const secret = get(s, 'credentialSecret');
let fromEnvironment = false;
if (secret === undefined && unset.length > 0) {
    const count = unset.length;
    for (let i = 0; i < count; i++) env[unset[i]] = ENV_MARK + unset[i];
    try {
        delete cache[resolved];
        const again = get(require(file), 'credentialSecret');
        for (let i = 0; i < count; i++) if (again === ENV_MARK + unset[i]) fromEnvironment = true;
    } catch (e) {
        // Only the first load counts.
    }
}
// Node-RED uses any string as the key, the empty one too (whose SHA-256 everyone knows).
put('credentialSecret', secret === false ? 'false' : secret === '' ? 'empty' : fromEnvironment ? 'environment' : kind(secret));
done();
