//! The only code that touches the operating system: paths under a [`Root`], the hardened file
//! writer, the account database files. Everything above it is data in, data out.

pub mod accounts;
pub mod fs;
pub mod nft;
pub mod node;
pub mod proc;
pub mod root;
pub mod systemd;

pub use root::Root;

/// The system user the TLS front door runs as: not the service user, because Node-RED runs
/// whatever its flows contain and must not reach the front door's key.
pub const FRONT_USER: &str = "redwarden-front";

/// Real system paths, in one place. They are always joined onto a [`Root`].
pub mod paths {
    pub const CONFIG: &str = "/etc/redwarden/redwarden.toml";
    /// The settings redwarden forces on Node-RED (`-D @file`): root-owned, readable by the
    /// service group.
    pub const NODERED_OVERRIDES: &str = "/etc/redwarden/nodered.json";
    /// Editor logins that redwarden created or `redwarden passwd` set: user names and bcrypt
    /// hashes, root only.
    pub const LOGINS: &str = "/var/lib/redwarden/logins.json";
    /// The password of a login apply created, until someone changes it: root only.
    pub const GENERATED_PASSWORD: &str = "/var/lib/redwarden/admin-password";
    pub const PASSWD: &str = "/etc/passwd";
    pub const GROUP: &str = "/etc/group";
    pub const SHADOW: &str = "/etc/shadow";
    pub const GSHADOW: &str = "/etc/gshadow";
    pub const PWD_LOCK: &str = "/etc/.pwd.lock";
    /// Held by a running `apply`, so a drift-triggered one never races a hand-run one.
    pub const APPLY_LOCK: &str = "/run/redwarden.lock";
    pub const LOGIN_DEFS: &str = "/etc/login.defs";
    pub const SUDOERS: &str = "/etc/sudoers";
    pub const SUDOERS_D: &str = "/etc/sudoers.d";
    /// Where unit files live, in systemd's order of precedence.
    pub const UNIT_DIRS: &[&str] = &[
        "/etc/systemd/system",
        "/run/systemd/system",
        "/usr/local/lib/systemd/system",
        "/usr/lib/systemd/system",
        "/lib/systemd/system",
    ];
    /// Shells that refuse a login, in order of preference for a new user.
    pub const NOLOGIN_SHELLS: &[&str] = &[
        "/usr/sbin/nologin",
        "/sbin/nologin",
        "/usr/bin/false",
        "/bin/false",
    ];
    /// Where `npm install -g` puts packages: Debian's npm, NodeSource and official tarballs.
    pub const GLOBAL_NODE_MODULES: &[&str] = &[
        "/usr/lib/node_modules",
        "/usr/local/lib/node_modules",
        "/opt/nodejs/lib/node_modules",
    ];
    /// Where redwarden itself is installed: packages use /usr/bin, `cargo install` and the lab
    /// /usr/local/bin.
    pub const REDWARDEN_BINARIES: &[&str] = &[
        "/usr/bin/redwarden",
        "/usr/sbin/redwarden",
        "/usr/local/bin/redwarden",
        "/usr/local/sbin/redwarden",
    ];
    pub const UNIT_DIR: &str = "/etc/systemd/system";
    /// In the default PATH's order, as `/usr/bin/env node` would find them.
    pub const NODE_BINARIES: &[&str] = &[
        "/usr/local/bin/node",
        "/usr/bin/node",
        "/usr/bin/nodejs",
        "/opt/nodejs/bin/node",
    ];
}
