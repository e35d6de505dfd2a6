//! The front door's certificate, as `check` reports it: its SHA-256 fingerprint (to compare with
//! what a browser shows on first contact with a self-signed one), and a warning 30 days before
//! it expires. A check only: renewing is the certificate's owner's business.

use std::path::PathBuf;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

use crate::config::Config;
use crate::host::{fs, Root};
use crate::report::{Finding, Severity, Uninspected};

/// How long before expiry `check` starts warning.
const WARN_DAYS: i64 = 30;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observed {
    /// The front door is off.
    Off,
    /// The self-signed certificate is made at the front door's first start.
    NotYetMade(PathBuf),
    Missing(PathBuf),
    Unreadable(PathBuf, String),
    Read {
        path: PathBuf,
        /// The first certificate of the chain: its fingerprint and last valid day, or why it
        /// could not be read.
        leaf: Result<Leaf, String>,
        /// Today, as days since 1970-01-01.
        today: i64,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leaf {
    pub fingerprint: String,
    /// The notAfter date: (year, month, day), and as days since 1970-01-01.
    pub not_after: (i64, u32, u32),
}

pub fn observe(root: &Root, config: &Config) -> Result<Observed, crate::Error> {
    let front = &config.front;
    if !front.enabled {
        return Ok(Observed::Off);
    }
    let (path, configured) = match &front.cert {
        Some(cert) => (cert.as_path().to_path_buf(), true),
        None => (front.state_dir.as_path().join("cert.pem"), false),
    };
    let bytes = match fs::read_nofollow(&root.resolve(&path)?) {
        Ok(Some(bytes)) => bytes,
        Ok(None) if configured => return Ok(Observed::Missing(path)),
        Ok(None) => return Ok(Observed::NotYetMade(path)),
        Err(e) => return Ok(Observed::Unreadable(path, e.to_string())),
    };
    let today = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| (d.as_secs() / 86_400) as i64);
    Ok(Observed::Read {
        path,
        leaf: leaf(&bytes),
        today,
    })
}

/// The first certificate of a PEM chain.
pub fn leaf(pem: &[u8]) -> Result<Leaf, String> {
    let der = CertificateDer::pem_slice_iter(pem)
        .next()
        .ok_or("no PEM certificate in it")?
        .map_err(|e| format!("not a PEM certificate: {e}"))?;
    Ok(Leaf {
        fingerprint: crate::front::fingerprint(&der),
        not_after: not_after(&der)?,
    })
}

pub fn plan(observed: &Observed) -> super::Plan {
    let mut plan = super::Plan::default();
    match observed {
        Observed::Off => {}
        Observed::NotYetMade(path) => plan.uninspected.push(
            Uninspected::new(
                "the front door's certificate",
                "the front door makes its self-signed one when it first starts",
            )
            .at(path),
        ),
        Observed::Unreadable(path, why) => plan.uninspected.push(
            Uninspected::new("the front door's certificate", why.clone()).at(path),
        ),
        Observed::Missing(path) => plan.findings.push(
            Finding::new(
                "front.cert-missing",
                Severity::High,
                "front.cert names no file: the front door cannot start, and Node-RED is unreachable from the network",
                false,
            )
            .at(path),
        ),
        Observed::Read { path, leaf, today } => {
            let finding = match leaf {
                Err(why) => Finding::new(
                    "front.cert-unreadable",
                    Severity::High,
                    format!("the front door's certificate cannot be read: {why}"),
                    false,
                ),
                Ok(leaf) => {
                    let (y, m, d) = leaf.not_after;
                    let left = days_from_civil(y, m, d) - today;
                    let about = format!("SHA-256 {}, valid until {y:04}-{m:02}-{d:02}", leaf.fingerprint);
                    if left < 0 {
                        Finding::new("front.cert-expired", Severity::Critical, format!("the front door's certificate has expired ({about}): browsers and clients refuse it; replace the files (the front door takes them up without a restart)"), false)
                    } else if left <= WARN_DAYS {
                        Finding::new("front.cert-expiring", Severity::Medium, format!("the front door's certificate expires in {left} day(s) ({about}); replace the files (the front door takes them up without a restart)"), false)
                    } else {
                        Finding::new("front.certificate", Severity::Info, format!("the front door serves {about}"), false)
                    }
                }
            };
            plan.findings.push(finding.at(path));
        }
    }
    plan
}

/// One DER element: its tag, its contents and what follows it.
fn element(input: &[u8]) -> Result<(u8, &[u8], &[u8]), String> {
    let truncated = || "truncated DER".to_string();
    let (&tag, rest) = input.split_first().ok_or_else(truncated)?;
    let (&first, rest) = rest.split_first().ok_or_else(truncated)?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return Err("a DER length that is not definite".into());
        }
        let len = rest[..count]
            .iter()
            .fold(0usize, |len, byte| len << 8 | usize::from(*byte));
        (len, &rest[count..])
    };
    if rest.len() < len {
        return Err(truncated());
    }
    Ok((tag, &rest[..len], &rest[len..]))
}

const SEQUENCE: u8 = 0x30;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;

/// The notAfter of an X.509 certificate (RFC 5280 §4.1: Certificate → tbsCertificate →
/// [version], serialNumber, signature, issuer, validity → notBefore, notAfter).
fn not_after(der: &[u8]) -> Result<(i64, u32, u32), String> {
    let not_x509 = |what: &str| format!("not an X.509 certificate ({what})");
    let (tag, certificate, _) = element(der)?;
    if tag != SEQUENCE {
        return Err(not_x509("no Certificate sequence"));
    }
    let (tag, tbs, _) = element(certificate)?;
    if tag != SEQUENCE {
        return Err(not_x509("no tbsCertificate"));
    }
    let mut rest = tbs;
    let (tag, _, after) = element(rest)?;
    if tag == 0xa0 {
        rest = after; // the explicit [0] version
    }
    for _ in ["serialNumber", "signature", "issuer"] {
        rest = element(rest)?.2;
    }
    let (tag, validity, _) = element(rest)?;
    if tag != SEQUENCE {
        return Err(not_x509("no validity"));
    }
    let (_, _, after_not_before) = element(validity)?;
    let (tag, time, _) = element(after_not_before)?;
    let text = std::str::from_utf8(time).map_err(|_| not_x509("a time that is not text"))?;
    let digits = |range: std::ops::Range<usize>| -> Result<i64, String> {
        text.get(range)
            .filter(|s| s.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| not_x509("a malformed notAfter"))
    };
    let (year, at) = match tag {
        // RFC 5280 §4.1.2.5.1: two-digit years 50-99 are 19xx.
        UTC_TIME => {
            let yy = digits(0..2)?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, 2)
        }
        GENERALIZED_TIME => (digits(0..4)?, 4),
        _ => return Err(not_x509("notAfter is not a time")),
    };
    let month = digits(at..at + 2)?;
    let day = digits(at + 2..at + 4)?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return Err(not_x509("a malformed notAfter"));
    }
    Ok((year, month as u32, day as u32))
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's days_from_civil).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn made(days_valid: i64) -> String {
        let mut params = rcgen::CertificateParams::new(vec!["gateway.local".to_string()]).unwrap();
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::days(1);
        params.not_after = now + time::Duration::days(days_valid);
        let key = rcgen::KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().pem()
    }

    fn judged(pem: &str) -> Finding {
        let now = time::OffsetDateTime::now_utc();
        let today = days_from_civil(
            now.year().into(),
            u8::from(now.month()).into(),
            now.day().into(),
        );
        let plan = plan(&Observed::Read {
            path: "/var/lib/redwarden-front/cert.pem".into(),
            leaf: leaf(pem.as_bytes()),
            today,
        });
        assert_eq!(plan.findings.len(), 1);
        plan.findings[0].clone()
    }

    #[test]
    fn the_certificate_is_reported_with_its_fingerprint_and_warned_of_before_expiry() {
        let pem = made(3650);
        let der = CertificateDer::from_pem_slice(pem.as_bytes()).unwrap();
        let long = judged(&pem);
        assert_eq!(
            (long.id, long.severity),
            ("front.certificate", Severity::Info)
        );
        assert!(
            long.message
                .contains(&format!("SHA-256 {}", crate::front::fingerprint(&der))),
            "{}",
            long.message
        );
        let soon = judged(&made(10));
        assert_eq!(
            (soon.id, soon.severity),
            ("front.cert-expiring", Severity::Medium)
        );
        assert!(
            soon.message.contains("expires in 10 day(s)"),
            "{}",
            soon.message
        );
        let gone = judged(&made(-2));
        assert_eq!(
            (gone.id, gone.severity),
            ("front.cert-expired", Severity::Critical)
        );
    }

    #[test]
    fn dates_come_out_of_both_time_forms_and_garbage_is_named() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2026, 11, 27), 20_784);
        let bad = judged("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
        assert_eq!(bad.id, "front.cert-unreadable");
        assert!(leaf(b"no pem here")
            .unwrap_err()
            .contains("no PEM certificate"));
        // A certificate valid until 2051 uses GeneralizedTime (RFC 5280: from 2050 on).
        let late = made(365 * 26);
        assert!(leaf(late.as_bytes()).unwrap().not_after.0 >= 2051);
    }
}
