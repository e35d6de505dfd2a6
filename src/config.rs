//! The configuration file: `/etc/redwarden/redwarden.toml`. Every key is optional and has a
//! built-in default that serves a stock Raspberry Pi; unknown keys are errors, reported with the
//! file, line and column, because a typo in a hardening policy must never pass silently.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::{Path, PathBuf};

use crate::host::Root;

/// A user or group name as shadow-utils accepts it for system accounts.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct UnixName(String);

impl TryFrom<String> for UnixName {
    type Error = String;
    fn try_from(name: String) -> Result<Self, String> {
        let mut chars = name.chars();
        let first_ok = chars
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c == '_');
        let rest_ok =
            chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_-".contains(c));
        if !first_ok || !rest_ok || name.len() > 32 {
            return Err(format!(
                "`{name}` is not a valid user or group name (lower-case letters, digits, `_` and `-`, starting with a letter or `_`, at most 32 characters)"
            ));
        }
        Ok(Self(name))
    }
}

impl From<UnixName> for String {
    fn from(name: UnixName) -> String {
        name.0
    }
}

impl UnixName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UnixName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An absolute path with no `.` or `..`, safe to join onto a [`Root`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SystemPath(PathBuf);

impl TryFrom<String> for SystemPath {
    type Error = String;
    fn try_from(path: String) -> Result<Self, String> {
        let path = PathBuf::from(path);
        Root::check_clean(&path).map_err(|_| {
            format!(
                "`{}` must be an absolute path without `.` or `..` components",
                path.display()
            )
        })?;
        Ok(Self(path))
    }
}

impl From<SystemPath> for String {
    fn from(path: SystemPath) -> String {
        path.0.to_string_lossy().into_owned()
    }
}

impl SystemPath {
    pub fn as_path(&self) -> &Path {
        &self.0
    }
}

/// A TCP port other than 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "u16", into = "u16")]
pub struct Port(u16);

impl TryFrom<u16> for Port {
    type Error = String;
    fn try_from(port: u16) -> Result<Self, String> {
        if port == 0 {
            return Err("port 0 is not a port Node-RED can listen on".into());
        }
        Ok(Self(port))
    }
}

impl From<Port> for u16 {
    fn from(port: Port) -> u16 {
        port.0
    }
}

impl Port {
    pub fn get(self) -> u16 {
        self.0
    }
}

/// A memory limit as systemd's MemoryMax= takes it: bytes with a K/M/G/T suffix, a percentage
/// of physical memory, or `infinity`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MemoryLimit(String);

impl TryFrom<String> for MemoryLimit {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        let digits = value.trim_end_matches(['K', 'M', 'G', 'T', '%']);
        let suffixes = value.len() - digits.len();
        let percent_ok =
            !value.ends_with('%') || digits.parse::<u8>().is_ok_and(|p| p > 0 && p <= 100);
        let valid = value == "infinity"
            || (suffixes <= 1
                && !digits.is_empty()
                && digits.bytes().all(|b| b.is_ascii_digit())
                && percent_ok
                && digits != "0");
        if !valid {
            return Err(format!("`{value}` is not a memory limit: use bytes with K, M, G or T (\"512M\"), a percentage of RAM (\"75%\"), or \"infinity\""));
        }
        Ok(Self(value))
    }
}

impl From<MemoryLimit> for String {
    fn from(limit: MemoryLimit) -> String {
        limit.0
    }
}

impl fmt::Display for MemoryLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An address rule for IPAddressAllow=/IPAddressDeny=: a CIDR, an address, or one of systemd's
/// names (`any`, `localhost`, `link-local`, `multicast`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AddressRule(String);

impl TryFrom<String> for AddressRule {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        let (address, prefix) = match value.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (value.as_str(), None),
        };
        let valid = match address.parse::<std::net::IpAddr>() {
            Ok(ip) => {
                let max = if ip.is_ipv4() { 32 } else { 128 };
                prefix.is_none_or(|p| p.parse::<u8>().is_ok_and(|p| p <= max))
            }
            Err(_) => {
                prefix.is_none()
                    && ["any", "localhost", "link-local", "multicast"].contains(&address)
            }
        };
        if !valid {
            return Err(format!("`{value}` is not an address rule: use an address, a CIDR such as 192.168.1.0/24, or any, localhost, link-local, multicast"));
        }
        Ok(Self(value))
    }
}

impl From<AddressRule> for String {
    fn from(rule: AddressRule) -> String {
        rule.0
    }
}

impl fmt::Display for AddressRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A kind of hardware Node-RED may use. Each opens exactly what its nodes need: a group for the
/// service user, device nodes and socket families in the sandbox. None is enabled by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Hardware {
    /// GPIO pins (node-red-node-pi-gpio, rpi-lgpio): /dev/gpiochip*, /dev/gpiomem.
    Gpio,
    /// Serial ports (node-red-node-serialport): /dev/ttyS*, ttyAMA*, ttyUSB*, ttyACM*.
    Serial,
    I2c,
    Spi,
    /// Cameras: video4linux, media controller and DMA heaps.
    Camera,
    /// Keyboards, mice and buttons under /dev/input.
    Input,
    Bluetooth,
    /// SocketCAN buses.
    Can,
}

impl Hardware {
    /// The group that owns the devices on Raspberry Pi OS and Debian (udev rules), if any.
    pub fn group(self) -> Option<&'static str> {
        match self {
            Self::Gpio => Some("gpio"),
            Self::Serial => Some("dialout"),
            Self::I2c => Some("i2c"),
            Self::Spi => Some("spi"),
            Self::Camera => Some("video"),
            Self::Input => Some("input"),
            Self::Bluetooth => Some("bluetooth"),
            Self::Can => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Schema version; only 1 exists.
    pub version: u32,
    pub service: Service,
    pub nodered: NodeRed,
    pub supervise: Supervise,
    pub firewall: Firewall,
    pub front: Front,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Service {
    /// The dedicated system user Node-RED runs as.
    pub user: UnixName,
    /// Its primary group; the same name as the user when not given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<UnixName>,
    /// Hardware Node-RED may use: the user keeps the matching groups (when they exist), the
    /// sandbox opens the matching devices; every other supplementary group is removed.
    pub hardware: Vec<Hardware>,
    /// The hard memory cap of the service (systemd MemoryMax=).
    pub memory_max: MemoryLimit,
    /// The most processes and threads the service may have (systemd TasksMax=).
    pub tasks_max: u32,
    /// Addresses the service may talk to and be reached from, enforced by systemd for the
    /// service's own sockets (IPAddressAllow=/IPAddressDeny=). An allow rule wins over a deny
    /// rule; empty lists restrict nothing.
    pub ip_allow: Vec<AddressRule>,
    pub ip_deny: Vec<AddressRule>,
    /// Run node with --jitless under MemoryDenyWriteExecute=yes. Slower, and breaks
    /// WebAssembly and the built-in fetch() (undici needs WebAssembly).
    pub jitless: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NodeRed {
    /// Node-RED's userDir: flows, credentials, installed nodes.
    pub user_dir: SystemPath,
    /// The settings file; `<user_dir>/settings.js` when not given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub settings: Option<SystemPath>,
    /// The node-red package folder (holding red.js); searched in the global npm folders when
    /// not given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub install_dir: Option<SystemPath>,
    /// The node binary; searched in the usual places when not given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<SystemPath>,
    /// The port Node-RED serves on.
    pub port: Port,
    /// TLS private keys Node-RED reads (besides `*.key` / `*key.pem` files in the userDir):
    /// kept readable by root and the service group only.
    pub tls_keys: Vec<SystemPath>,
    /// Move a Node-RED that another unit runs (the official installer's nodered.service as
    /// `pi`) to the dedicated user and user_dir: copy, verify, switch, keep the original.
    pub adopt: bool,
    /// Settings forced on Node-RED whatever settings.js says, as Node-RED's `-D` takes them:
    /// a key (dotted for nested settings, quoted in TOML) and its value. `redwarden run`
    /// passes them in a root-owned file with `-D @file`.
    pub enforce: std::collections::BTreeMap<String, serde_json::Value>,
    /// Let Node-RED run without an editor login. Off by default: when no adminAuth is set
    /// anywhere, apply creates a login and enforces it.
    pub allow_no_login: bool,
}

/// What proves Node-RED alive: any HTTP answer to a GET on a path of 127.0.0.1:<port> or on a
/// full `http://` URL (a stuck event loop gives none), or `tcp`: a connect alone, which the
/// kernel completes even for a frozen process, so it only notices a closed port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Probe(String);

/// A probe, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeTarget {
    Http {
        host: String,
        port: Option<u16>,
        path: String,
    },
    Tcp,
}

impl TryFrom<String> for Probe {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        Self::parse(&value)?;
        Ok(Self(value))
    }
}

impl From<Probe> for String {
    fn from(probe: Probe) -> String {
        probe.0
    }
}

impl Probe {
    fn parse(value: &str) -> Result<ProbeTarget, String> {
        let invalid = || {
            format!("`{value}` is not a probe: use a path such as \"/auth/login\", a URL on an address or localhost such as \"http://127.0.0.1:1880/auth/login\", or \"tcp\"")
        };
        if value == "tcp" {
            return Ok(ProbeTarget::Tcp);
        }
        let printable = |s: &str| s.bytes().all(|b| b.is_ascii_graphic());
        if value.starts_with('/') && printable(value) {
            return Ok(ProbeTarget::Http {
                host: "127.0.0.1".into(),
                port: None,
                path: value.into(),
            });
        }
        let rest = value.strip_prefix("http://").ok_or_else(invalid)?;
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        // An IPv6 address comes in brackets: [::1]:1880.
        let (host, port) = match authority.strip_prefix('[') {
            Some(bracketed) => {
                let (host, after) = bracketed.split_once(']').ok_or_else(invalid)?;
                (host, after.strip_prefix(':'))
            }
            None => match authority.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            },
        };
        let port = port
            .map(|p| p.parse::<u16>().map_err(|_| invalid()))
            .transpose()?;
        let host_ok = host == "localhost" || host.parse::<std::net::IpAddr>().is_ok();
        if !host_ok || !printable(path) {
            return Err(invalid());
        }
        Ok(ProbeTarget::Http {
            host: host.into(),
            port: port.or(Some(80)),
            path: if path.is_empty() {
                "/".into()
            } else {
                path.into()
            },
        })
    }

    pub fn target(&self) -> ProbeTarget {
        Self::parse(&self.0).unwrap_or(ProbeTarget::Tcp)
    }
}

/// How `redwarden run` supervises Node-RED. Times are in seconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Supervise {
    pub probe: Probe,
    pub probe_interval_secs: u32,
    /// Consecutive failed probes that make a running Node-RED hung.
    pub probe_failures: u32,
    /// How long Node-RED may take to answer its first probe (a Pi Zero needs a minute).
    pub start_timeout_secs: u32,
    /// Between SIGINT (Node-RED's graceful stop) and SIGKILL.
    pub stop_timeout_secs: u32,
    /// The longest pause between restarts.
    pub backoff_max_secs: u32,
    /// Uptime after which a run counts as stable and the backoff starts again from zero.
    pub stable_after_secs: u32,
    /// This many exits within the window are a crash loop.
    pub crash_loop_exits: u32,
    pub crash_loop_window_secs: u32,
    /// On a crash loop, start once in Node-RED's safe mode (editor up, flows stopped) so a
    /// person can fix the flow, before giving up.
    pub safe_mode: bool,
    /// A soft cap on Node-RED's resident memory (bytes with K/M/G/T, a share of RAM, or
    /// "infinity"): above it for `memory_samples` probes in a row, Node-RED is restarted
    /// gracefully, before the service's hard MemoryMax= kills it.
    pub memory_limit: MemoryLimit,
    pub memory_samples: u32,
    /// Copies of flows, credentials and .config.runtime.json kept in <user_dir>/.redwarden/backups.
    pub backups: u32,
    /// Write metrics in Prometheus text format here (for node_exporter's textfile collector).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics_file: Option<SystemPath>,
}

impl Default for Supervise {
    fn default() -> Self {
        Self {
            probe: Probe("/auth/login".into()),
            probe_interval_secs: 5,
            probe_failures: 3,
            start_timeout_secs: 120,
            stop_timeout_secs: 10,
            backoff_max_secs: 30,
            stable_after_secs: 60,
            crash_loop_exits: 5,
            crash_loop_window_secs: 300,
            safe_mode: true,
            // Below the service's MemoryMax (75%), so a leak ends in a graceful restart rather
            // than the OOM killer.
            memory_limit: MemoryLimit("60%".into()),
            memory_samples: 3,
            backups: 10,
            metrics_file: None,
        }
    }
}

impl MemoryLimit {
    /// The limit in bytes on a machine with `total` bytes of RAM; None for "infinity".
    pub fn bytes(&self, total: u64) -> Option<u64> {
        let value = self.0.as_str();
        if value == "infinity" {
            return None;
        }
        let digits = value.trim_end_matches(['K', 'M', 'G', 'T', '%']);
        let number: u64 = digits.parse().ok()?;
        let scale = match &value[digits.len()..] {
            "K" => 1 << 10,
            "M" => 1 << 20,
            "G" => 1 << 30,
            "T" => 1 << 40,
            "%" => return Some(total / 100 * number),
            _ => 1,
        };
        Some(number.saturating_mul(scale))
    }
}

/// An address or a network: `192.168.1.10`, `10.0.0.0/8`, `fd00::/8`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Network {
    pub addr: std::net::IpAddr,
    pub prefix: u8,
}

impl TryFrom<String> for Network {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        Self::parse(&value).ok_or_else(|| {
            format!("`{value}` is not an address or a network such as 192.168.1.0/24 (host names cannot go into a firewall rule)")
        })
    }
}

impl Network {
    fn parse(value: &str) -> Option<Self> {
        let (addr, prefix) = match value.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (value, None),
        };
        let addr: std::net::IpAddr = addr.parse().ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.parse().ok().filter(|p| *p <= max)?,
            None => max,
        };
        Some(Self { addr, prefix })
    }

    pub fn contains(&self, ip: std::net::IpAddr) -> bool {
        use std::net::IpAddr;
        let mask = |width: u32| {
            let prefix = u32::from(self.prefix);
            if prefix > 0 {
                u128::MAX << (width - prefix)
            } else {
                0
            }
        };
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = mask(32);
                u128::from(u32::from(net)) & mask == u128::from(u32::from(ip)) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = mask(128);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl From<Network> for String {
    fn from(network: Network) -> String {
        network.to_string()
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let max = if self.addr.is_ipv4() { 32 } else { 128 };
        if self.prefix == max {
            write!(f, "{}", self.addr)
        } else {
            write!(f, "{}/{}", self.addr, self.prefix)
        }
    }
}

/// Where the service user's processes may connect: a network, and a port on it or any port.
/// `192.168.1.10:1883`, `10.0.0.0/8`, `[fd00::/8]:443`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Destination {
    pub network: Network,
    pub port: Option<u16>,
}

impl TryFrom<String> for Destination {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        let invalid = || {
            format!("`{value}` is not a destination: use an address or network with an optional port, such as 192.168.1.10:1883, 10.0.0.0/8 or [fd00::/8]:443 (host names cannot go into a firewall rule)")
        };
        let (network, port) = if let Some(bracketed) = value.strip_prefix('[') {
            let (network, rest) = bracketed.split_once(']').ok_or_else(invalid)?;
            let port = match rest {
                "" => None,
                rest => Some(rest.strip_prefix(':').ok_or_else(invalid)?),
            };
            (network, port)
        } else if value.matches(':').count() == 1 {
            let (network, port) = value.split_once(':').ok_or_else(invalid)?;
            (network, Some(port))
        } else {
            (value.as_str(), None)
        };
        let network = Network::parse(network).ok_or_else(invalid)?;
        let port = port
            .map(|p| {
                p.parse::<u16>()
                    .ok()
                    .filter(|p| *p != 0)
                    .ok_or_else(invalid)
            })
            .transpose()?;
        Ok(Self { network, port })
    }
}

impl From<Destination> for String {
    fn from(destination: Destination) -> String {
        match (destination.port, destination.network.addr.is_ipv6()) {
            (None, _) => destination.network.to_string(),
            (Some(port), false) => format!("{}:{port}", destination.network),
            (Some(port), true) => format!("[{}]:{port}", destination.network),
        }
    }
}

/// redwarden's own nftables table, `inet redwarden`: who may reach Node-RED and, opt-in, what
/// Node-RED may reach. No other table is ever touched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Firewall {
    pub enabled: bool,
    /// Who may open connections to Node-RED's port, besides this device itself.
    pub sources: Vec<Network>,
    /// New connections per second one source may open to Node-RED's port (burst: twice that).
    pub rate_per_source: u32,
    /// The management port that no policy may close; apply refuses one that would cut the SSH
    /// session it runs from.
    pub ssh_port: Port,
    /// Drop what the service user's processes send anywhere but DNS, NTP, this device and
    /// `egress_allow`, counting what is dropped.
    pub egress: bool,
    pub egress_allow: Vec<Destination>,
}

impl Default for Firewall {
    fn default() -> Self {
        let network = |text: &str| Network::parse(text).expect("a valid built-in network");
        Self {
            enabled: true,
            // The private and link-local ranges; 100.64.0.0/10 (carrier-grade NAT, tailnets) and
            // anything wider must be written down.
            sources: [
                "10.0.0.0/8",
                "172.16.0.0/12",
                "192.168.0.0/16",
                "169.254.0.0/16",
                "fc00::/7",
                "fe80::/10",
            ]
            .into_iter()
            .map(network)
            .collect(),
            rate_per_source: 20,
            ssh_port: Port(22),
            egress: false,
            egress_allow: Vec::new(),
        }
    }
}

/// Where the front door listens when systemd passes it no socket: an address and a port other
/// than 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ListenAddr(std::net::SocketAddr);

impl TryFrom<String> for ListenAddr {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        match value.parse::<std::net::SocketAddr>() {
            Ok(addr) if addr.port() != 0 => Ok(Self(addr)),
            _ => Err(format!("`{value}` is not a listen address: use an address and a port other than 0, such as \"0.0.0.0:8443\" or \"[::]:8443\"")),
        }
    }
}

impl From<ListenAddr> for String {
    fn from(addr: ListenAddr) -> String {
        addr.0.to_string()
    }
}

impl ListenAddr {
    pub fn get(self) -> std::net::SocketAddr {
        self.0
    }
}

/// Who must show a client certificate signed by `client_ca`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientCert {
    /// Nobody: no certificate is asked for.
    Off,
    /// Everything but the `client_cert_exempt` paths: those stay open to clients without one
    /// (a dashboard, http-in endpoints for devices), the editor and its API do not.
    Admin,
    /// Every client, already at the TLS handshake.
    All,
}

/// A URL path prefix: `/` followed by printable characters, no `.` or `..` segment and no
/// percent-encoding, so it names what a request's path literally starts with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct UrlPrefix(String);

impl TryFrom<String> for UrlPrefix {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        let valid = value.len() > 1
            && value.starts_with('/')
            && value
                .bytes()
                .all(|b| b.is_ascii_graphic() && !b"%\\?#".contains(&b))
            && !value
                .split('/')
                .any(|segment| segment == "." || segment == "..");
        if !valid {
            return Err(format!("`{value}` is not a URL path prefix: use a path such as \"/ui\" (no `.` or `..` segments, `%`, `?` or `#`)"));
        }
        Ok(Self(value.trim_end_matches('/').to_string()))
    }
}

impl From<UrlPrefix> for String {
    fn from(prefix: UrlPrefix) -> String {
        prefix.0
    }
}

impl UrlPrefix {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The TLS front door, `redwarden-front`: TLS on the public port, forwarded to Node-RED on
/// 127.0.0.1. Under systemd its socket unit passes the listening socket (port 443 without any
/// capability); `listen` is where it binds itself otherwise.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Front {
    /// On: apply creates the front door's user and units, keeps Node-RED on loopback and opens
    /// the front door's port instead of Node-RED's. `redwarden-front` refuses to start while
    /// it is off.
    pub enabled: bool,
    /// The address to bind when no socket is passed by systemd (LISTEN_FDS): 8443, because
    /// binding 443 takes a capability the front door does not hold.
    pub listen: ListenAddr,
    /// Node-RED's port on 127.0.0.1; `nodered.port` when not given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream_port: Option<Port>,
    /// The certificate chain and its private key (PEM). Replacing the files takes effect for
    /// new connections within a second, without a restart. When neither is given, a
    /// self-signed certificate for this device's name and addresses is created in `state_dir`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert: Option<SystemPath>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<SystemPath>,
    /// Where the self-signed certificate and its key are kept (the front door's user alone
    /// may read it).
    pub state_dir: SystemPath,
    /// The CAs (PEM) that sign client certificates, for `client_cert`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_ca: Option<SystemPath>,
    pub client_cert: ClientCert,
    /// Path prefixes open without a client certificate when `client_cert` is "admin".
    pub client_cert_exempt: Vec<UrlPrefix>,
    /// How long the TLS handshake, and then each request's headers, may take to arrive,
    /// counted from the moment the connection is ready for them (so it also closes idle
    /// keep-alive connections).
    pub header_timeout_secs: u32,
    /// A connection that moves no byte either way for this long is closed (bodies being
    /// transferred, WebSockets).
    pub idle_timeout_secs: u32,
    /// Connections served at once; more wait in the kernel's queue.
    pub max_connections: u32,
    /// A plain-HTTP port on the listen address that answers every request with a redirect
    /// to https (or the second socket systemd passes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redirect_port: Option<Port>,
}

impl Default for Front {
    fn default() -> Self {
        Self {
            enabled: false,
            listen: ListenAddr(std::net::SocketAddr::from(([0, 0, 0, 0], 8443))),
            upstream_port: None,
            cert: None,
            key: None,
            state_dir: SystemPath(PathBuf::from("/var/lib/redwarden-front")),
            client_ca: None,
            client_cert: ClientCert::Off,
            // Node-RED Dashboard 1 and 2.
            client_cert_exempt: ["/ui", "/dashboard"]
                .into_iter()
                .map(|p| UrlPrefix(p.into()))
                .collect(),
            header_timeout_secs: 10,
            idle_timeout_secs: 120,
            // Each open TLS connection costs some tens of KiB; 1024 fit a 512 MB board.
            max_connections: 1024,
            redirect_port: None,
        }
    }
}

impl Front {
    /// The port Node-RED serves on behind the front door.
    pub fn upstream_port(&self, nodered: &NodeRed) -> Port {
        self.upstream_port.unwrap_or(nodered.port)
    }

    /// What is wrong with this table beyond single values: the key and the message.
    fn check(&self) -> Option<(&'static str, String)> {
        for (key, value) in [
            ("header_timeout_secs", self.header_timeout_secs),
            ("idle_timeout_secs", self.idle_timeout_secs),
            ("max_connections", self.max_connections),
        ] {
            if value == 0 {
                return Some((key, format!("front.{key} must be at least 1")));
            }
        }
        match (&self.cert, &self.key) {
            (Some(_), None) => return Some(("cert", "front.cert is given without front.key: give both, or neither for a self-signed certificate".into())),
            (None, Some(_)) => return Some(("key", "front.key is given without front.cert: give both, or neither for a self-signed certificate".into())),
            _ => {}
        }
        if self.client_cert != ClientCert::Off && self.client_ca.is_none() {
            return Some(("client_cert", "front.client_cert needs front.client_ca: the CA certificates that client certificates must be signed by".into()));
        }
        if self.redirect_port.map(Port::get) == Some(self.listen.0.port()) {
            return Some((
                "redirect_port",
                "front.redirect_port is the TLS port: plain HTTP needs a port of its own".into(),
            ));
        }
        None
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            version: 1,
            service: Service::default(),
            nodered: NodeRed::default(),
            supervise: Supervise::default(),
            firewall: Firewall::default(),
            front: Front::default(),
        }
    }
}

impl Default for Service {
    fn default() -> Self {
        Self {
            user: UnixName("nodered".into()),
            group: None,
            hardware: Vec::new(),
            // A share of RAM rather than a number: the same image runs on 512 MB and 8 GB boards.
            memory_max: MemoryLimit("75%".into()),
            tasks_max: 512,
            // Secure by default: Node-RED's own sockets reach, and are reached from, this
            // device, its LAN and tailnet ranges only; "any" in ip_allow opens the internet.
            ip_allow: [
                "localhost",
                "link-local",
                "multicast",
                "10.0.0.0/8",
                "172.16.0.0/12",
                "192.168.0.0/16",
                "100.64.0.0/10",
                "fc00::/7",
            ]
            .into_iter()
            .map(|rule| AddressRule(rule.into()))
            .collect(),
            ip_deny: vec![AddressRule("any".into())],
            jitless: false,
        }
    }
}

impl Default for NodeRed {
    fn default() -> Self {
        Self {
            user_dir: SystemPath(PathBuf::from("/var/lib/node-red")),
            settings: None,
            install_dir: None,
            node: None,
            port: Port(1880),
            tls_keys: Vec::new(),
            adopt: true,
            enforce: [
                // /diagnostics reports versions, modules and which security settings are unset.
                ("diagnostics.enabled", false),
                // POST /flows/state stops and starts flows.
                ("runtimeState.enabled", false),
                // Logins, failed logins and deploys in the journal.
                ("logging.console.audit", true),
            ]
            .into_iter()
            .map(|(key, value)| (key.to_string(), serde_json::Value::Bool(value)))
            .collect(),
            allow_no_login: false,
        }
    }
}

impl Service {
    pub fn group(&self) -> &UnixName {
        self.group.as_ref().unwrap_or(&self.user)
    }
}

impl NodeRed {
    pub fn settings_path(&self) -> PathBuf {
        match &self.settings {
            Some(path) => path.as_path().to_path_buf(),
            None => self.user_dir.as_path().join("settings.js"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: cannot read: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}:{column}: {message}")]
    Invalid {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{path}: {message}")]
    Unsafe { path: PathBuf, message: String },
}

/// Where the configuration comes from.
#[derive(Debug, Clone)]
pub enum Source {
    /// The default path inside the root; a missing file means built-in defaults.
    Default,
    /// A path given on the command line; it must exist.
    Explicit(PathBuf),
}

impl Config {
    /// Loads the configuration for `root`. Reads nothing else and changes nothing.
    pub fn load(source: &Source, root: &Root) -> Result<Self, ConfigError> {
        let path = match source {
            Source::Explicit(path) => path.clone(),
            Source::Default => {
                let path = root
                    .resolve(Path::new(crate::host::paths::CONFIG))
                    .map_err(|e| ConfigError::Unsafe {
                        path: PathBuf::from(crate::host::paths::CONFIG),
                        message: e.to_string(),
                    })?;
                if !path.exists() {
                    return Ok(Self::default());
                }
                path
            }
        };
        check_ownership(&path)?;
        let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
            path: path.clone(),
            source,
        })?;
        Self::parse(&text, &path)
    }

    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let config: Self = toml::from_str(text).map_err(|e| {
            let (line, column) = e
                .span()
                .map(|span| line_column(text, span.start))
                .unwrap_or((1, 1));
            ConfigError::Invalid {
                path: path.to_path_buf(),
                line,
                column,
                message: e.message().trim_end().to_string(),
            }
        })?;
        for (key, name) in [
            ("user", &config.service.user),
            ("group", config.service.group()),
        ] {
            if name.as_str() == "root" {
                return Err(invalid_at(text, path, &format!("{key} ="), format!("service.{key} must not be root: Node-RED runs arbitrary code, so it needs an unprivileged account of its own")));
            }
        }
        let supervise = &config.supervise;
        for (key, value) in [
            ("probe_interval_secs", supervise.probe_interval_secs),
            ("probe_failures", supervise.probe_failures),
            ("start_timeout_secs", supervise.start_timeout_secs),
            ("crash_loop_exits", supervise.crash_loop_exits),
            ("crash_loop_window_secs", supervise.crash_loop_window_secs),
            ("memory_samples", supervise.memory_samples),
        ] {
            if value == 0 {
                return Err(invalid_at(
                    text,
                    path,
                    &format!("{key} ="),
                    format!("supervise.{key} must be at least 1"),
                ));
            }
        }
        if config.firewall.ssh_port == config.nodered.port {
            return Err(invalid_at(text, path, "ssh_port", format!("firewall.ssh_port {} is Node-RED's port: the firewall filters that port, and management access must stay open", config.nodered.port.get())));
        }
        if config.firewall.rate_per_source == 0 {
            return Err(invalid_at(
                text,
                path,
                "rate_per_source =",
                "firewall.rate_per_source must be at least 1".into(),
            ));
        }
        if let Some((key, message)) = config.front.check() {
            return Err(invalid_key(text, path, "front", key, message));
        }
        if config.version != 1 {
            return Err(invalid_at(
                text,
                path,
                "version",
                format!(
                    "version {} is not supported; this redwarden reads version 1",
                    config.version
                ),
            ));
        }
        Ok(config)
    }

    /// The effective configuration as TOML, every default written out.
    pub fn to_toml(&self) -> String {
        let mut effective = self.clone();
        effective.service.group = Some(self.service.group().clone());
        effective.nodered.settings =
            SystemPath::try_from(self.nodered.settings_path().to_string_lossy().into_owned()).ok();
        toml::to_string(&effective).unwrap_or_default()
    }
}

/// As root, redwarden acts on what the config says, so only root may be able to change it.
fn check_ownership(path: &Path) -> Result<(), ConfigError> {
    if !rustix::process::geteuid().is_root() {
        return Ok(());
    }
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    if meta.uid() != 0 || meta.mode() & 0o022 != 0 {
        return Err(ConfigError::Unsafe {
            path: path.to_path_buf(),
            message: format!(
                "must be owned by root and not writable by group or others (owner uid {}, mode {:04o}); it decides what redwarden does as root",
                meta.uid(),
                meta.mode() & 0o7777
            ),
        });
    }
    Ok(())
}

/// An error at the first occurrence of `needle` (the start of the file when it is absent).
fn invalid_at(text: &str, path: &Path, needle: &str, message: String) -> ConfigError {
    let (line, column) = line_column(text, text.find(needle).unwrap_or(0));
    ConfigError::Invalid {
        path: path.to_path_buf(),
        line,
        column,
        message,
    }
}

/// An error at `key` in the `[table]` (the table header when the key is absent, the start of the
/// file when that is absent too): a key alone is not unique, `cert` is also in `client_cert`.
fn invalid_key(text: &str, path: &Path, table: &str, key: &str, message: String) -> ConfigError {
    let header = format!("[{table}]");
    let mut offset = 0;
    let mut found = None;
    let mut in_table = false;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim();
        if trimmed.starts_with('[') {
            in_table = trimmed == header;
            if in_table && found.is_none() {
                found = Some(offset);
            }
        } else if in_table
            && trimmed
                .strip_prefix(key)
                .is_some_and(|rest| rest.trim_start().starts_with('='))
        {
            found = Some(offset + line.len() - line.trim_start().len());
            break;
        }
        offset += line.len();
    }
    let (line, column) = line_column(text, found.unwrap_or(0));
    ConfigError::Invalid {
        path: path.to_path_buf(),
        line,
        column,
        message,
    }
}

fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// The commented example printed by `redwarden config --example`.
pub const EXAMPLE: &str = include_str!("../dist/redwarden.toml");

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, String> {
        Config::parse(text, Path::new("/etc/redwarden/redwarden.toml")).map_err(|e| e.to_string())
    }

    #[test]
    fn empty_file_is_the_built_in_defaults() {
        let config = parse("").unwrap();
        assert_eq!(config, Config::default());
        assert_eq!(config.service.user.as_str(), "nodered");
        assert_eq!(config.service.group().as_str(), "nodered");
        assert_eq!(
            config.nodered.settings_path(),
            PathBuf::from("/var/lib/node-red/settings.js")
        );
        assert!(config.service.hardware.is_empty());
    }

    #[test]
    fn the_example_file_parses_to_the_defaults_once_uncommented() {
        let uncommented: String = EXAMPLE
            .lines()
            .map(|l| {
                let name = |s: &str| {
                    !s.is_empty() && s.chars().all(|c| c.is_ascii_lowercase() || c == '_')
                };
                let setting = |s: &&str| {
                    s.strip_prefix('[')
                        .and_then(|t| t.strip_suffix(']'))
                        .is_some_and(name)
                        || s.split_once(" = ").is_some_and(|(key, _)| name(key))
                };
                l.strip_prefix("# ").filter(setting).unwrap_or(l)
            })
            .map(|l| format!("{l}\n"))
            .collect();
        let config = parse(&uncommented).unwrap();
        let mut expected = Config::default();
        expected.service.group = Some(UnixName("nodered".into()));
        expected.nodered.settings =
            Some(SystemPath(PathBuf::from("/var/lib/node-red/settings.js")));
        assert_eq!(
            config, expected,
            "dist/redwarden.toml drifted from the built-in defaults"
        );
    }

    #[test]
    fn bad_input_names_line_and_column() {
        let cases = [
            (
                "[service]\nusr = \"x\"\n",
                "/etc/redwarden/redwarden.toml:2:1: unknown field `usr`",
            ),
            (
                "[nodered]\nport = \"80\"\n",
                "/etc/redwarden/redwarden.toml:2:8: invalid type: string \"80\", expected u16",
            ),
            (
                "[nodered]\nport = 0\n",
                "/etc/redwarden/redwarden.toml:2:8: port 0 is not a port Node-RED can listen on",
            ),
            (
                "[service]\nuser = \"Node Red\"\n",
                "/etc/redwarden/redwarden.toml:2:8: `Node Red` is not a valid user or group name",
            ),
            (
                "[nodered]\nuser_dir = \"/var/../etc\"\n",
                "/etc/redwarden/redwarden.toml:2:12: `/var/../etc` must be an absolute path",
            ),
            (
                "[service]\nhardware = [\"sudo\"]\n",
                "/etc/redwarden/redwarden.toml:2:13: unknown variant `sudo`",
            ),
            ("[service\n", "/etc/redwarden/redwarden.toml:1:9:"),
            (
                "version = 2\n",
                "/etc/redwarden/redwarden.toml:1:1: version 2 is not supported",
            ),
            (
                "[supervise]\nprobe_failures = 0\n",
                "/etc/redwarden/redwarden.toml:2:1: supervise.probe_failures must be at least 1",
            ),
            (
                "[supervise]\nprobe = \"http://example.org/\"\n",
                "/etc/redwarden/redwarden.toml:2:9: `http://example.org/` is not a probe",
            ),
            (
                "[supervise]\nmemory_limit = \"lots\"\n",
                "/etc/redwarden/redwarden.toml:2:16: `lots` is not a memory limit",
            ),
        ];
        for (text, expected) in cases {
            let err = parse(text).unwrap_err();
            assert!(
                err.starts_with(expected),
                "for {text:?}:\n got {err}\nwant {expected}"
            );
        }
    }

    #[test]
    fn probes_and_memory_limits_parse() {
        let probe = |text: &str| Probe::try_from(text.to_string()).map(|p| p.target());
        assert_eq!(probe("tcp"), Ok(ProbeTarget::Tcp));
        assert_eq!(
            probe("/admin/auth/login"),
            Ok(ProbeTarget::Http {
                host: "127.0.0.1".into(),
                port: None,
                path: "/admin/auth/login".into()
            })
        );
        assert_eq!(
            probe("http://[::1]:1881"),
            Ok(ProbeTarget::Http {
                host: "::1".into(),
                port: Some(1881),
                path: "/".into()
            })
        );
        assert_eq!(
            probe("http://[::1]/x"),
            Ok(ProbeTarget::Http {
                host: "::1".into(),
                port: Some(80),
                path: "/x".into()
            })
        );
        assert!(probe("https://127.0.0.1/").is_err());
        assert!(probe("http://127.0.0.1:99999/").is_err());
        assert!(probe("/with space").is_err());
        let limit = |text: &str| MemoryLimit(text.into()).bytes(1 << 30);
        assert_eq!(limit("60%"), Some(644_245_080));
        assert_eq!(limit("200M"), Some(200 << 20));
        assert_eq!(limit("infinity"), None);
    }

    #[test]
    fn effective_config_round_trips() {
        let config = parse("[service]\nhardware = [\"gpio\", \"serial\"]\n").unwrap();
        let printed = config.to_toml();
        let again = parse(&printed).unwrap();
        assert_eq!(again.service.hardware, config.service.hardware);
        assert!(printed.contains("group = \"nodered\""), "{printed}");
    }

    #[test]
    fn front_defaults_are_off_and_forward_to_nodered() {
        let config = parse("[nodered]\nport = 1881\n").unwrap();
        assert!(!config.front.enabled);
        assert_eq!(config.front.listen.get().to_string(), "0.0.0.0:8443");
        assert_eq!(config.front.upstream_port(&config.nodered).get(), 1881);
        assert_eq!(config.front.client_cert, ClientCert::Off);
        let config = parse("[front]\nenabled = true\nlisten = \"[::1]:443\"\nupstream_port = 1990\ncert = \"/etc/ssl/a.pem\"\nkey = \"/etc/ssl/a.key\"\nclient_ca = \"/etc/ssl/ca.pem\"\nclient_cert = \"admin\"\nclient_cert_exempt = [\"/api/\"]\nredirect_port = 80\n").unwrap();
        assert_eq!(config.front.listen.get().to_string(), "[::1]:443");
        assert_eq!(config.front.upstream_port(&config.nodered).get(), 1990);
        assert_eq!(config.front.client_cert_exempt[0].as_str(), "/api");
        assert_eq!(parse(&config.to_toml()).unwrap().front, config.front);
    }

    #[test]
    fn front_errors_name_line_and_column() {
        let cases = [
            (
                "[front]\nlisten = \"0.0.0.0\"\n",
                "/etc/redwarden/redwarden.toml:2:10: `0.0.0.0` is not a listen address",
            ),
            (
                "[front]\nlisten = \"0.0.0.0:0\"\n",
                "/etc/redwarden/redwarden.toml:2:10: `0.0.0.0:0` is not a listen address",
            ),
            (
                "[front]\nclient_cert = \"some\"\n",
                "/etc/redwarden/redwarden.toml:2:15: unknown variant `some`",
            ),
            (
                "[front]\nclient_cert_exempt = [\"/ui/../flows\"]\n",
                "/etc/redwarden/redwarden.toml:2:22: `/ui/../flows` is not a URL path prefix",
            ),
            (
                "[front]\ncertificate = \"/a.pem\"\n",
                "/etc/redwarden/redwarden.toml:2:1: unknown field `certificate`",
            ),
            (
                "[front]\nclient_ca = \"/ca.pem\"\nclient_cert = \"all\"\ncert = \"/a.pem\"\n",
                "/etc/redwarden/redwarden.toml:4:1: front.cert is given without front.key",
            ),
            (
                "[front]\nkey = \"/a.key\"\n",
                "/etc/redwarden/redwarden.toml:2:1: front.key is given without front.cert",
            ),
            (
                "[nodered]\nport = 1\n[front]\n  client_cert = \"admin\"\n",
                "/etc/redwarden/redwarden.toml:4:3: front.client_cert needs front.client_ca",
            ),
            (
                "[front]\nlisten = \"0.0.0.0:8080\"\nredirect_port = 8080\n",
                "/etc/redwarden/redwarden.toml:3:1: front.redirect_port is the TLS port",
            ),
            (
                "[supervise]\nmax_connections = 1\n[front]\nmax_connections = 0\n",
                "/etc/redwarden/redwarden.toml:2:1: unknown field `max_connections`",
            ),
            (
                "[front]\nheader_timeout_secs = 0\n",
                "/etc/redwarden/redwarden.toml:2:1: front.header_timeout_secs must be at least 1",
            ),
            (
                "[front]\nidle_timeout_secs = 0\n",
                "/etc/redwarden/redwarden.toml:2:1: front.idle_timeout_secs must be at least 1",
            ),
            (
                "[service]\nuser = \"x\"\n\n[front]\nmax_connections = 0\n",
                "/etc/redwarden/redwarden.toml:5:1: front.max_connections must be at least 1",
            ),
        ];
        for (text, expected) in cases {
            let err = parse(text).unwrap_err();
            assert!(
                err.starts_with(expected),
                "for {text:?}:\n got {err}\nwant {expected}"
            );
        }
    }
}
