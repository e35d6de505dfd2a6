//! The firewall step: one nftables table of redwarden's own, `inet redwarden`. It decides who
//! may reach Node-RED's port (this device and the configured sources, each rate-limited) and,
//! opt-in, what the service user's processes may reach. Its base chains accept by default and
//! match only Node-RED's port and the service user's packets, so SSH, ufw, firewalld, docker
//! and hand-written tables keep working; no other table is ever named.

use std::net::IpAddr;
use std::time::Duration;

use crate::config::{Config, Destination, Network};
use crate::host::nft::{self, NftError};
use crate::host::Root;
use crate::report::{Finding, Severity, Uninspected};

/// What the service user's processes may reach when egress filtering is on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Egress {
    pub uid: u32,
    pub allow: Vec<Destination>,
}

/// Node-RED's own port while the TLS front door faces the network: over loopback only, and
/// only from the users with business there, so that another local user cannot go around the
/// front door's TLS and client certificates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Internal {
    pub port: u16,
    /// root, the service user (the supervisor's probe, flows calling their own routes) and
    /// the front door's user, those of them that exist.
    pub uids: Vec<u32>,
}

/// The policy, as typed data; `render` turns it into nft's language.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// The port the network may reach: Node-RED's, or the front door's when it is on.
    pub port: u16,
    pub sources: Vec<Network>,
    pub rate_per_source: u32,
    pub egress: Option<Egress>,
    pub internal: Option<Internal>,
}

impl Policy {
    pub fn from_config(config: &Config, service_uid: Option<u32>, front_uid: Option<u32>) -> Self {
        let firewall = &config.firewall;
        let front = &config.front;
        let internal = front.enabled.then(|| Internal {
            port: front.upstream_port(&config.nodered).get(),
            uids: [Some(0), service_uid, front_uid]
                .into_iter()
                .flatten()
                .collect(),
        });
        Self {
            port: if front.enabled {
                front.listen.get().port()
            } else {
                config.nodered.port.get()
            },
            sources: firewall.sources.clone(),
            rate_per_source: firewall.rate_per_source,
            egress: firewall
                .egress
                .then_some(service_uid)
                .flatten()
                .map(|uid| Egress {
                    uid,
                    allow: firewall.egress_allow.clone(),
                }),
            internal,
        }
    }

    /// Whether a new TCP connection from `source` to `port` would pass.
    pub fn admits(&self, source: IpAddr, port: u16) -> bool {
        let loopback = source.to_canonical().is_loopback();
        if self.internal.as_ref().is_some_and(|i| i.port == port) {
            return loopback;
        }
        port != self.port || loopback || self.sources.iter().any(|n| n.contains(source))
    }

    /// The table, in nft's language.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let mut line = |text: &str| {
            out.push_str(text);
            out.push('\n');
        };
        line(&format!("table {} {} {{", nft::FAMILY, nft::TABLE));
        for (name, kind, v4) in [
            ("sources4", "ipv4_addr", true),
            ("sources6", "ipv6_addr", false),
        ] {
            line(&format!("\tset {name} {{"));
            line(&format!("\t\ttype {kind}"));
            line("\t\tflags interval");
            line("\t\tauto-merge");
            let elements: Vec<String> = self
                .sources
                .iter()
                .filter(|n| n.addr.is_ipv4() == v4)
                .map(ToString::to_string)
                .collect();
            if !elements.is_empty() {
                line(&format!("\t\telements = {{ {} }}", elements.join(", ")));
            }
            line("\t}");
        }
        for (name, kind) in [("rate4", "ipv4_addr"), ("rate6", "ipv6_addr")] {
            line(&format!("\tset {name} {{"));
            line(&format!("\t\ttype {kind}"));
            line("\t\tflags dynamic,timeout");
            line("\t\ttimeout 1m");
            line("\t}");
        }
        let mut counters = vec!["refused", "limited"];
        if self.egress.is_some() {
            counters.push("egress_dropped");
        }
        for counter in counters {
            line(&format!("\tcounter {counter} {{"));
            line("\t}");
        }
        line("\tchain input {");
        line("\t\ttype filter hook input priority filter; policy accept;");
        line(&format!("\t\ttcp dport {} jump nodered", self.port));
        if let Some(internal) = &self.internal {
            line(&format!(
                "\t\ttcp dport {} iif != \"lo\" counter name \"refused\" drop",
                internal.port
            ));
        }
        line("\t}");
        let rate = self.rate_per_source;
        line("\tchain nodered {");
        line("\t\tiif \"lo\" accept");
        line("\t\tct state established,related accept");
        for (ip, set, rate_set) in [("ip", "sources4", "rate4"), ("ip6", "sources6", "rate6")] {
            line(&format!(
                "\t\t{ip} saddr @{set} ct state new update @{rate_set} {{ {ip} saddr limit rate over {rate}/second burst {} packets }} counter name \"limited\" drop",
                rate * 2
            ));
            line(&format!("\t\t{ip} saddr @{set} accept"));
        }
        line("\t\tcounter name \"refused\" drop");
        line("\t}");
        if self.internal.is_some() || self.egress.is_some() {
            line("\tchain output {");
            line("\t\ttype filter hook output priority filter; policy accept;");
            if let Some(internal) = &self.internal {
                let uids: Vec<String> = internal.uids.iter().map(u32::to_string).collect();
                line(&format!(
                    "\t\toif \"lo\" tcp dport {} ct state new meta skuid != {{ {} }} counter name \"refused\" reject with tcp reset",
                    internal.port,
                    uids.join(", ")
                ));
            }
            if let Some(egress) = &self.egress {
                line(&format!("\t\tmeta skuid {} jump egress", egress.uid));
            }
            line("\t}");
        }
        if let Some(egress) = &self.egress {
            line("\tchain egress {");
            line("\t\toif \"lo\" accept");
            line("\t\tct state established,related accept");
            line("\t\tmeta l4proto { tcp, udp } th dport 53 accept");
            line("\t\tudp dport 123 accept");
            for destination in &egress.allow {
                let ip = if destination.network.addr.is_ipv4() {
                    "ip"
                } else {
                    "ip6"
                };
                let port = destination
                    .port
                    .map(|p| format!(" meta l4proto {{ tcp, udp }} th dport {p}"))
                    .unwrap_or_default();
                line(&format!(
                    "\t\t{ip} daddr {}{port} accept",
                    destination.network
                ));
            }
            line("\t\tcounter name \"egress_dropped\" drop");
            line("\t}");
        }
        line("}");
        out
    }
}

/// One transaction that replaces the table whole: created if absent (so the delete cannot
/// fail), deleted, and made again. nft commits all of it or nothing.
pub fn replacement(table: Option<&str>) -> String {
    let mut out = format!(
        "table {f} {t}\ndelete table {f} {t}\n",
        f = nft::FAMILY,
        t = nft::TABLE
    );
    if let Some(table) = table {
        out.push_str(table);
    }
    out
}

/// The SSH session apply runs from, as sshd describes it: (client address, server port).
pub fn ssh_session(ssh_connection: Option<&str>) -> Option<(IpAddr, u16)> {
    let mut words = ssh_connection?.split_whitespace();
    let client = words.next()?.parse().ok()?;
    let server_port = words.nth(2)?.parse().ok()?;
    Some((client, server_port))
}

/// Refuses a policy that would cut the management session or close the SSH port.
pub fn lockout(policy: &Policy, ssh_port: u16, session: Option<(IpAddr, u16)>) -> Option<String> {
    if policy.port == ssh_port || policy.internal.as_ref().is_some_and(|i| i.port == ssh_port) {
        return Some(format!("the policy filters port {ssh_port}, the SSH port"));
    }
    let (client, port) = session?;
    (!policy.admits(client, port))
        .then(|| format!("the policy would cut this SSH session from {client} to port {port}"))
}

#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    pub enabled: bool,
    pub policy: Policy,
    pub ssh_port: u16,
    pub session: Option<(IpAddr, u16)>,
    pub state: State,
}

/// redwarden's table as the kernel holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Live {
    /// It means what the configured policy means (always false when the firewall is off).
    pub matches_policy: bool,
    pub counters: Vec<(String, u64)>,
}

/// What the kernel holds, as far as this process can tell.
#[derive(Debug, Clone, PartialEq)]
pub enum State {
    /// An image folder: the table is loaded when the image boots.
    Image,
    NoNft,
    /// nft could not be asked (not root): the reason.
    Unreadable(String),
    /// The table, or None when it is not loaded.
    Read(Option<Live>),
}

/// Reads the table and judges it by meaning: the policy is loaded into a scratch network
/// namespace (only when there is a table to compare) and both are compared as nft's canonical
/// JSON.
fn read_live(policy: &Policy, enabled: bool) -> Result<Option<Live>, NftError> {
    let Some(listed) = nft::list_json()? else {
        return Ok(None);
    };
    let matches_policy =
        enabled && nft::canonical(&listed) == nft::canonical(&nft::as_loaded(&policy.render())?);
    Ok(Some(Live {
        matches_policy,
        counters: nft::counters(&listed),
    }))
}

pub fn observe(root: &Root, config: &Config) -> Result<Observed, crate::Error> {
    let accounts = crate::host::accounts::AccountDb::load(root)?;
    let uid_of = |name: &str| accounts.user(name).map(|e| e.uid);
    let policy = Policy::from_config(
        config,
        uid_of(config.service.user.as_str()),
        uid_of(crate::host::FRONT_USER),
    );
    let state = if root.is_live() {
        match read_live(&policy, config.firewall.enabled) {
            Ok(live) => State::Read(live),
            Err(NftError::Missing) => State::NoNft,
            Err(e) => State::Unreadable(e.to_string()),
        }
    } else {
        State::Image
    };
    Ok(Observed {
        enabled: config.firewall.enabled,
        policy,
        ssh_port: config.firewall.ssh_port.get(),
        session: ssh_session(std::env::var("SSH_CONNECTION").ok().as_deref()),
        state,
    })
}

/// A change to the kernel's ruleset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FirewallChange {
    Install { table: String },
    Remove,
}

impl std::fmt::Display for FirewallChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Install { .. } => write!(f, "load nftables table {} {}", nft::FAMILY, nft::TABLE),
            Self::Remove => write!(f, "remove nftables table {} {}", nft::FAMILY, nft::TABLE),
        }
    }
}

pub fn plan(observed: &Observed) -> super::Plan {
    let mut plan = super::Plan::default();
    let install = || {
        super::Action::Firewall(FirewallChange::Install {
            table: observed.policy.render(),
        })
    };
    let live = match &observed.state {
        State::Image => {
            plan.uninspected.push(Uninspected::new(
                "the firewall",
                "it lives in the kernel; `apply` loads it when the image boots",
            ));
            return plan;
        }
        State::Unreadable(reason) => {
            plan.uninspected
                .push(Uninspected::new("the firewall", reason.clone()));
            return plan;
        }
        State::NoNft if observed.enabled => {
            plan.findings.push(Finding::new("firewall.nft-missing", Severity::High, "nft is not installed, so nothing filters who reaches Node-RED: install nftables, or set firewall.enabled = false", false));
            // apply then fails naming nft, rather than reporting success without a firewall.
            plan.actions.push(install());
            return plan;
        }
        State::NoNft => return plan,
        State::Read(live) => live,
    };
    if !observed.enabled {
        if live.is_some() {
            plan.findings.push(Finding::new(
                "firewall.stale",
                Severity::Low,
                "redwarden's table is loaded, but the firewall is off in the configuration",
                true,
            ));
            plan.actions
                .push(super::Action::Firewall(FirewallChange::Remove));
        }
        return plan;
    }
    if let Some(live) = live {
        plan.counters.extend(
            live.counters
                .iter()
                .map(|(name, packets)| (format!("firewall.{name}"), *packets)),
        );
    }
    let finding = match live {
        None => Finding::new("firewall.missing", Severity::High, format!("no firewall guards Node-RED's port {}: anyone who can reach this device can reach it", observed.policy.port), true),
        Some(live) if !live.matches_policy => Finding::new("firewall.drifted", Severity::Medium, "redwarden's nftables table differs from the configured policy (edited, or the configuration changed)", true),
        Some(_) => return plan,
    };
    if let Some(why) = lockout(&observed.policy, observed.ssh_port, observed.session) {
        plan.findings.push(Finding::new(
            "firewall.would-lock-out",
            Severity::Critical,
            format!("{why}: refusing to load it; add the session's network to firewall.sources"),
            false,
        ));
        return plan;
    }
    plan.findings.push(finding);
    plan.actions.push(install());
    plan
}

/// How long `apply --confirm` waits for `redwarden confirm` before putting the old table back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Confirm(pub Duration);

pub fn apply(change: &FirewallChange, confirm: Option<Confirm>) -> Result<(), crate::Error> {
    let script = match change {
        FirewallChange::Install { table } => replacement(Some(table)),
        FirewallChange::Remove => replacement(None),
    };
    nft::validate(&script)?;
    if let Some(Confirm(within)) = confirm {
        let previous = nft::list_text()?;
        nft::arm_rollback(&replacement(previous.as_deref()), within)?;
    }
    nft::load(&script)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Policy {
        Policy::from_config(&Config::default(), Some(995), None)
    }

    #[test]
    fn the_default_policy_guards_only_node_reds_port() {
        let text = policy().render();
        assert!(text.contains("tcp dport 1880 jump nodered"), "{text}");
        assert!(
            text.contains(
                "elements = { 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, 169.254.0.0/16 }"
            ),
            "{text}"
        );
        assert!(
            text.contains("elements = { fc00::/7, fe80::/10 }"),
            "{text}"
        );
        assert!(
            text.contains("limit rate over 20/second burst 40 packets"),
            "{text}"
        );
        assert!(!text.contains("hook output"), "egress filtering is opt-in");
        assert_eq!(
            text.matches("policy accept").count(),
            1,
            "base chains accept everything else"
        );
        assert!(!text.contains("policy drop"));
    }

    #[test]
    fn egress_allows_dns_ntp_and_the_listed_destinations_for_the_service_user_only() {
        let mut config = Config::default();
        config.firewall.egress = true;
        config.firewall.egress_allow = ["192.168.1.10:1883", "10.0.0.0/8", "[fd00::/8]:443"]
            .iter()
            .map(|d| Destination::try_from(d.to_string()).unwrap())
            .collect();
        let text = Policy::from_config(&config, Some(995), None).render();
        for line in [
            "meta skuid 995 jump egress",
            "meta l4proto { tcp, udp } th dport 53 accept",
            "udp dport 123 accept",
            "ip daddr 192.168.1.10 meta l4proto { tcp, udp } th dport 1883 accept",
            "ip daddr 10.0.0.0/8 accept",
            "ip6 daddr fd00::/8 meta l4proto { tcp, udp } th dport 443 accept",
            "counter name \"egress_dropped\" drop",
        ] {
            assert!(text.contains(line), "no {line:?} in\n{text}");
        }
        // Without the user there is no uid to match: no egress chain rather than a wrong one.
        assert!(!Policy::from_config(&config, None, None)
            .render()
            .contains("skuid"));
    }

    #[test]
    fn behind_the_front_door_the_network_meets_its_port_and_node_red_only_loopback() {
        let mut config = Config::default();
        config.front.enabled = true;
        let policy = Policy::from_config(&config, Some(995), Some(994));
        let text = policy.render();
        for line in [
            "tcp dport 8443 jump nodered",
            "tcp dport 1880 iif != \"lo\" counter name \"refused\" drop",
            "oif \"lo\" tcp dport 1880 ct state new meta skuid != { 0, 995, 994 } counter name \"refused\" reject with tcp reset",
        ] {
            assert!(text.contains(line), "no {line:?} in\n{text}");
        }
        let lan = "192.168.1.20".parse().unwrap();
        assert!(policy.admits(lan, 8443));
        assert!(!policy.admits(lan, 1880));
        assert!(policy.admits("::1".parse().unwrap(), 1880));
        // An SSH session to Node-RED's port would be cut now.
        assert!(lockout(&policy, 22, Some((lan, 1880))).is_some());
    }

    #[test]
    fn the_lockout_guard_protects_the_session_and_the_ssh_port() {
        let policy = policy();
        let lan = "192.168.1.20".parse().unwrap();
        let outside = "203.0.113.7".parse().unwrap();
        assert_eq!(
            lockout(&policy, 22, Some((outside, 22))),
            None,
            "SSH itself is never filtered"
        );
        assert_eq!(lockout(&policy, 22, Some((lan, 1880))), None);
        assert!(lockout(&policy, 22, Some((outside, 1880)))
            .unwrap()
            .contains("cut this SSH session from 203.0.113.7"));
        assert!(lockout(&policy, 1880, None).unwrap().contains("SSH port"));
        assert_eq!(
            ssh_session(Some("192.168.1.20 50522 192.168.1.5 22")),
            Some((lan, 22))
        );
        assert_eq!(ssh_session(Some("garbage")), None);
    }

    #[test]
    fn the_replacement_is_one_transaction_that_never_fails_on_a_missing_table() {
        let script = replacement(Some("table inet redwarden {\n}\n"));
        assert!(script.starts_with(
            "table inet redwarden\ndelete table inet redwarden\ntable inet redwarden {"
        ));
        assert_eq!(
            replacement(None),
            "table inet redwarden\ndelete table inet redwarden\n"
        );
    }
}
