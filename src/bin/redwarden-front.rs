//! `redwarden-front`: the TLS front door (the [front] table), run by redwarden-front.service as
//! its own user. A binary of its own: the process that faces the network carries none of the
//! code that changes the system, and the supervisor carries no TLS stack (its resident memory
//! follows its binary's size).

use std::path::PathBuf;
use std::process::ExitCode;

use redwarden::config::{Config, Source};
use redwarden::exit;
use redwarden::front::FrontError;
use redwarden::host::Root;

const USAGE: &str = "Usage: redwarden-front [--config PATH] [-v | -q]

Serves TLS on the public port and forwards to Node-RED on 127.0.0.1, as the [front] table of
the configuration says; the listening sockets come from systemd (redwarden-front.socket) or
are its own.

  --config PATH  configuration file [default: /etc/redwarden/redwarden.toml; built-in
                 defaults when it does not exist]
  -v, --verbose  debug output
  -q, --quiet    only errors
  -h, --help     this text
  -V, --version  the version";

struct Args {
    config: Option<PathBuf>,
    verbose: u8,
    quiet: bool,
}

fn parse(mut args: impl Iterator<Item = std::ffi::OsString>) -> Result<Option<Args>, String> {
    let mut parsed = Args {
        config: None,
        verbose: 0,
        quiet: false,
    };
    while let Some(arg) = args.next() {
        match arg.to_str() {
            Some("--config") => {
                let path = args.next().ok_or("--config needs a PATH")?;
                parsed.config = Some(path.into());
            }
            Some("-v" | "--verbose") => parsed.verbose = parsed.verbose.saturating_add(1),
            Some("-q" | "--quiet") => parsed.quiet = true,
            Some("-h" | "--help") => {
                println!("{USAGE}");
                return Ok(None);
            }
            Some("-V" | "--version") => {
                println!("redwarden-front {}", env!("CARGO_PKG_VERSION"));
                return Ok(None);
            }
            _ => return Err(format!("unexpected argument {arg:?}")),
        }
    }
    if parsed.quiet && parsed.verbose > 0 {
        return Err("--quiet and --verbose exclude each other".into());
    }
    Ok(Some(parsed))
}

fn main() -> ExitCode {
    let args = match parse(std::env::args_os().skip(1)) {
        Ok(Some(args)) => args,
        Ok(None) => return ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("redwarden-front: {e}\n\n{USAGE}");
            return ExitCode::from(exit::USAGE);
        }
    };
    redwarden::logging::init(args.quiet, args.verbose, tracing::Level::INFO);
    let source = args.config.map_or(Source::Default, Source::Explicit);
    let config = match Config::load(&source, &Root::live()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("redwarden-front: {e}");
            return ExitCode::from(exit::CONFIG);
        }
    };
    ExitCode::from(match redwarden::front::run(&config) {
        Ok(()) => 0,
        Err(e @ FrontError::Disabled) => {
            eprintln!("redwarden-front: {e}");
            exit::CONFIG
        }
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("redwarden-front: {e}");
            exit::FAILURE
        }
    })
}
