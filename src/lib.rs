//! redwarden: makes a Node-RED installation safe by default and keeps it that way.
//! See DESIGN.md for the process model; `main.rs` (redwarden) and `bin/redwarden-front.rs` are
//! only command lines around this library.

pub mod config;
pub mod front;
pub mod harden;
pub mod host;
pub mod logging;
pub mod report;
pub mod supervise;

/// The exit codes of both command lines.
pub mod exit {
    /// `check` found something (or `confirm` had nothing to confirm).
    pub const FINDINGS: u8 = 1;
    pub const FAILURE: u8 = 2;
    pub const USAGE: u8 = 64;
    /// A bad configuration: a restart only repeats it (the units list it in
    /// RestartPreventExitStatus=).
    pub const CONFIG: u8 = 78;
}

/// Every error the library returns, each naming what it was doing and where.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error(transparent)]
    Root(#[from] host::root::RootError),
    #[error(transparent)]
    Fs(#[from] host::fs::FsError),
    #[error(transparent)]
    Accounts(#[from] host::accounts::AccountsError),
    #[error(transparent)]
    Systemctl(#[from] host::systemd::SystemctlError),
    #[error("adoption: {0}")]
    Adopt(String),
    #[error("editor logins: {0}")]
    Logins(String),
    #[error(transparent)]
    Nft(#[from] host::nft::NftError),
}
