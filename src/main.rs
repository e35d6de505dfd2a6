//! The command line: parse, load the configuration, call the library, map the outcome to an exit
//! code (0 compliant, 1 findings, 2 failure, 64 usage, 78 bad configuration).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use redwarden::config::{Config, Hardware, Source};
use redwarden::exit;
use redwarden::harden;
use redwarden::host::Root;
use serde::Deserialize;

/// Hardens a Node-RED installation: a dedicated user, tight file modes, and a report of
/// what is still wrong.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    /// Configuration file [default: /etc/redwarden/redwarden.toml under --root; built-in
    /// defaults when that file does not exist]
    #[arg(long, global = true, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Operate on the image root folder DIR instead of the running system
    #[arg(long, global = true, value_name = "DIR")]
    root: Option<PathBuf>,
    /// Print one JSON object instead of a table
    #[arg(long, global = true)]
    json: bool,
    /// More log output (-v: each change, -vv: debug)
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    verbose: u8,
    /// Only errors on stderr
    #[arg(short, long, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Report what is wrong; change nothing. Exits 1 when there are findings.
    Check {
        /// Only these steps (comma list: user, perms, unit, adopt, nodered, firewall, front,
        /// npm).
        #[arg(long, value_name = "STEPS", value_parser = parse_steps)]
        only: Option<StepList>,
    },
    /// Fix what can be fixed, print each change, then report what remains.
    Apply {
        /// Switch an adopted Node-RED back to the unit and userDir it came from (the adopted
        /// copy stays), and change nothing else.
        #[arg(long, conflicts_with_all = ["only", "confirm"])]
        undo_adopt: bool,
        /// Only these steps (comma list: user, perms, unit, adopt, nodered, firewall).
        #[arg(long, value_name = "STEPS", value_parser = parse_applied_steps)]
        only: Option<StepList>,
        /// Load the firewall, and put the previous one back after SECS seconds unless
        /// `redwarden confirm` comes first (for changes made over the network).
        #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u32).range(1..=3600))]
        confirm: Option<u32>,
    },
    /// Keep the firewall that `apply --confirm` loaded.
    Confirm,
    /// Set the password of an editor login (read from the terminal without echo, or from
    /// stdin), and enforce it.
    Passwd {
        /// The login's user name.
        user: String,
    },
    /// Put the saved firewall back after a delay, unless confirmed (started by apply --confirm).
    #[command(hide = true)]
    FirewallRollback {
        #[arg(long, value_name = "SECS")]
        after: u64,
    },
    /// Carry what the old Node-RED wrote after an adoption's copy into the copy (run by systemd
    /// as root before the adopted Node-RED starts on probation).
    #[command(hide = true)]
    AdoptSync,
    /// Print the systemd unit that runs Node-RED in redwarden's sandbox.
    Unit {
        /// Hardware profiles to open instead of the configured ones (comma list: gpio,
        /// serial, i2c, spi, camera, input, bluetooth, can; `none` for none).
        #[arg(long, value_name = "LIST", value_parser = parse_hardware)]
        hardware: Option<HardwareList>,
        /// Print the drop-in for the official installer's nodered.service instead.
        #[arg(long, conflicts_with = "write")]
        drop_in: bool,
        /// Write every file apply installs (units, drop-in, drift path and timer) into DIR,
        /// as packagers ship them.
        #[arg(long, value_name = "DIR")]
        write: Option<PathBuf>,
    },
    /// Run Node-RED and keep it alive: restarts on exit, hang and leak, with backoff, flow
    /// backups and systemd notify/watchdog. Started as root, it applies first and then drops
    /// to the service user.
    Run,
    /// Show what `redwarden run` is doing: pid, uptime, restarts, last exit, probe, memory.
    Status,
    /// Print the effective configuration, defaults filled in.
    Config {
        /// Print a commented example configuration file instead.
        #[arg(long)]
        example: bool,
    },
}

/// A comma list of steps.
#[derive(Debug, Clone)]
struct StepList(Vec<harden::Step>);

fn parse_steps(list: &str) -> Result<StepList, String> {
    list.split(',')
        .map(|name| {
            harden::Step::from_name(name.trim()).ok_or_else(|| {
                let names: Vec<&str> = harden::checks().map(|s| s.name()).collect();
                format!("`{name}` is not a step ({})", names.join(", "))
            })
        })
        .collect::<Result<_, _>>()
        .map(StepList)
}

/// Steps for apply: the checks that change nothing are not among them.
fn parse_applied_steps(list: &str) -> Result<StepList, String> {
    let steps = parse_steps(list)?;
    match steps.0.iter().find(|s| !harden::STEPS.contains(s)) {
        Some(step) => Err(format!(
            "`{}` changes nothing; run `redwarden check --only {0}`",
            step.name()
        )),
        None => Ok(steps),
    }
}

/// A comma list of hardware profiles; one value for clap, which reads a bare Vec as repeats.
#[derive(Debug, Clone)]
struct HardwareList(Vec<Hardware>);

fn parse_hardware(list: &str) -> Result<HardwareList, String> {
    if list == "none" {
        return Ok(HardwareList(Vec::new()));
    }
    list.split(',')
        .map(|name| {
            Hardware::deserialize(serde::de::value::StrDeserializer::<serde::de::value::Error>::new(name.trim()))
                .map_err(|_| format!("`{name}` is not a hardware profile (gpio, serial, i2c, spi, camera, input, bluetooth, can)"))
        })
        .collect::<Result<_, _>>()
        .map(HardwareList)
}

fn init_logging(cli: &Cli) {
    let default = if matches!(cli.command, Command::Run) {
        tracing::Level::INFO
    } else {
        tracing::Level::WARN
    };
    redwarden::logging::init(cli.quiet, cli.verbose, default);
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { exit::USAGE } else { 0 });
        }
    };
    init_logging(&cli);
    ExitCode::from(run(&cli))
}

/// Prints redwarden.service (or the drop-in), or writes every generated file below `dir`.
fn print_units(files: &[(PathBuf, String)], drop_in: bool, dir: Option<&std::path::Path>) -> u8 {
    let Some(dir) = dir else {
        let wanted = if drop_in {
            harden::unit::DROP_IN_NAME
        } else {
            harden::unit::UNIT_NAME
        };
        let text = files
            .iter()
            .find(|(path, _)| path.ends_with(wanted))
            .map(|(_, text)| text.as_str());
        print!("{}", text.unwrap_or_default());
        return 0;
    };
    for (path, text) in files {
        let relative = path
            .strip_prefix(redwarden::host::paths::UNIT_DIR)
            .unwrap_or(path);
        let target = dir.join(relative);
        let written = target
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::write(&target, text));
        if let Err(e) = written {
            eprintln!("redwarden: unit --write: {}: {e}", target.display());
            return exit::FAILURE;
        }
        println!("{}", target.display());
    }
    0
}

/// `redwarden passwd USER`: a bcrypt hash in the logins file, then the nodered step enforces it.
fn passwd(root: &Root, config: &Config, user: &str) -> u8 {
    if user.is_empty() || !user.chars().all(|c| c.is_ascii_graphic()) {
        eprintln!("redwarden: passwd: `{user}` is not a user name (letters, digits and punctuation, no spaces)");
        return exit::USAGE;
    }
    if root.is_live() && !rustix::process::geteuid().is_root() {
        eprintln!("redwarden: passwd: the logins file is root's: run it as root");
        return exit::FAILURE;
    }
    let password = match read_password(user) {
        Ok(password) => password,
        Err(e) => {
            eprintln!("redwarden: passwd: {e}");
            return exit::FAILURE;
        }
    };
    if password.chars().count() < 8 {
        eprintln!("redwarden: passwd: use at least 8 characters");
        return exit::USAGE;
    }
    if let Err(e) = harden::nodered::set_password(root, user, &password) {
        eprintln!("redwarden: passwd: {e}");
        return exit::FAILURE;
    }
    let options = harden::Options {
        only: vec![harden::Step::NodeRed],
        ..harden::Options::default()
    };
    match harden::apply(root, config, &options) {
        Ok(_) => {
            println!("password set for {user}; Node-RED restarts to use it");
            0
        }
        Err(failure) => {
            eprintln!(
                "redwarden: passwd: the password is stored but not yet enforced: {}",
                failure.error
            );
            exit::FAILURE
        }
    }
}

/// A password from the terminal (asked twice, without echo) or one line of stdin.
fn read_password(user: &str) -> Result<String, String> {
    use std::io::BufRead;
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        let mut line = String::new();
        stdin
            .lock()
            .read_line(&mut line)
            .map_err(|e| format!("reading stdin: {e}"))?;
        return Ok(line.trim_end_matches(['\r', '\n']).to_string());
    }
    let ask = |prompt: &str| -> Result<String, String> {
        use rustix::termios::{tcgetattr, tcsetattr, LocalModes, OptionalActions};
        eprint!("{prompt}");
        let saved = tcgetattr(&stdin).map_err(|e| format!("terminal: {e}"))?;
        let mut quiet = saved.clone();
        quiet.local_modes.remove(LocalModes::ECHO);
        tcsetattr(&stdin, OptionalActions::Now, &quiet).map_err(|e| format!("terminal: {e}"))?;
        let mut line = String::new();
        let read = stdin.lock().read_line(&mut line);
        let _ = tcsetattr(&stdin, OptionalActions::Now, &saved);
        eprintln!();
        read.map_err(|e| format!("reading the terminal: {e}"))?;
        Ok(line.trim_end_matches(['\r', '\n']).to_string())
    };
    let first = ask(&format!("new password for {user}: "))?;
    if ask("again: ")? != first {
        return Err("the two passwords differ; nothing changed".into());
    }
    Ok(first)
}

/// `redwarden status`: the supervisor's state file, readable without privileges.
fn print_status(json: bool) -> u8 {
    use redwarden::supervise::status::{now, Status, STATUS_FILE};
    match Status::read(std::path::Path::new(STATUS_FILE)) {
        Ok(status) if json => {
            let mut value = serde_json::to_value(&status).unwrap_or_default();
            value["uptime_secs"] = status.uptime(now()).into();
            println!("{value}");
            0
        }
        Ok(status) => {
            print!("{}", status.to_table(now()));
            0
        }
        Err(e) => {
            eprintln!("redwarden: status: {e}");
            exit::FAILURE
        }
    }
}

fn run(cli: &Cli) -> u8 {
    let root = match &cli.root {
        None => Root::live(),
        Some(dir) if dir.is_dir() => Root::new(dir.canonicalize().unwrap_or_else(|_| dir.clone())),
        Some(dir) => {
            eprintln!("redwarden: --root {}: not a folder", dir.display());
            return exit::USAGE;
        }
    };
    let source = cli.config.clone().map_or(Source::Default, Source::Explicit);
    let config = match Config::load(&source, &root) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("redwarden: {e}");
            return exit::CONFIG;
        }
    };
    let (name, result) = match cli.command {
        Command::Config { example } => {
            print!(
                "{}",
                if example {
                    redwarden::config::EXAMPLE.to_string()
                } else {
                    config.to_toml()
                }
            );
            return 0;
        }
        Command::Unit {
            ref hardware,
            drop_in,
            ref write,
        } => {
            let mut config = config;
            if let Some(hardware) = hardware {
                config.service.hardware = hardware.0.clone();
            }
            return match harden::unit::render_all(&root, &config) {
                Ok(files) => print_units(&files, drop_in, write.as_deref()),
                Err(e) => {
                    eprintln!("redwarden: unit: {e}");
                    exit::FAILURE
                }
            };
        }
        Command::Run => {
            if cli.root.is_some() {
                eprintln!("redwarden: run supervises the running system; --root is for images");
                return exit::USAGE;
            }
            return match redwarden::supervise::run(config, source) {
                Ok(()) => 0,
                Err(e @ redwarden::supervise::SuperviseError::CrashLoop(_)) => {
                    eprintln!("redwarden: run: {e}");
                    redwarden::supervise::EXIT_CRASH_LOOP
                }
                Err(e) => {
                    tracing::error!("{e}");
                    eprintln!("redwarden: run: {e}");
                    exit::FAILURE
                }
            };
        }
        Command::Status => return print_status(cli.json),
        Command::Check { ref only } => (
            "check",
            match only {
                Some(steps) => harden::check_steps(&root, &config, &steps.0),
                None => harden::check(&root, &config),
            },
        ),
        Command::Passwd { ref user } => return passwd(&root, &config, user),
        Command::Confirm => {
            return match redwarden::host::nft::confirm() {
                Ok(true) => {
                    println!("kept the new firewall");
                    0
                }
                Ok(false) => {
                    eprintln!("redwarden: confirm: nothing waits for a confirmation (no apply --confirm, or it was rolled back already)");
                    exit::FINDINGS
                }
                Err(e) => {
                    eprintln!("redwarden: confirm: {e}");
                    exit::FAILURE
                }
            };
        }
        Command::AdoptSync => {
            return match harden::adopt::sync(&root, &config) {
                Ok(()) => 0,
                Err(e) => {
                    tracing::error!("adopt-sync: {e}");
                    exit::FAILURE
                }
            };
        }
        Command::FirewallRollback { after } => {
            return match redwarden::host::nft::rollback_after(std::time::Duration::from_secs(after))
            {
                Ok(rolled_back) => {
                    if rolled_back {
                        tracing::warn!("no `redwarden confirm` within {after} s: put the previous firewall back");
                    }
                    0
                }
                Err(e) => {
                    tracing::error!("firewall rollback: {e}");
                    exit::FAILURE
                }
            };
        }
        Command::Apply {
            undo_adopt,
            ref only,
            confirm,
        } => {
            if root.is_live() && !rustix::process::geteuid().is_root() {
                eprintln!("redwarden: apply changes accounts and file owners: run it as root (or use --root on an image folder you own)");
                return exit::FAILURE;
            }
            let options = harden::Options {
                mode: if undo_adopt {
                    harden::Mode::UndoAdopt
                } else {
                    harden::Mode::Enforce
                },
                only: only.as_ref().map(|s| s.0.clone()).unwrap_or_default(),
                confirm: confirm.map(|secs| {
                    harden::firewall::Confirm(std::time::Duration::from_secs(secs.into()))
                }),
            };
            let result = harden::apply(&root, &config, &options).map_err(|failure| {
                for change in &failure.changes {
                    eprintln!("redwarden: changed before the failure: {change}");
                }
                failure.error
            });
            ("apply", result)
        }
    };
    match result {
        Ok(report) => {
            if cli.json {
                print!("{}", report.to_json(name, root.dir()));
            } else {
                print!("{}", report.to_table(std::io::stdout().is_terminal()));
            }
            if report.has_findings() {
                exit::FINDINGS
            } else {
                0
            }
        }
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("redwarden: {name} failed: {e}");
            exit::FAILURE
        }
    }
}
