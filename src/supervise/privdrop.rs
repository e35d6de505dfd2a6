//! Dropping root, in one place: `redwarden run` started as root outside systemd (busybox or
//! sysvinit images, a shell) becomes the service user before it starts anything. Order
//! matters: the bounding set can only shrink while CAP_SETPCAP is held, so it goes first;
//! groups and gid change while root, uid last. Then every set is read back from /proc.

use crate::host::proc;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups: the hardware groups of the service user.
    pub groups: Vec<u32>,
}

#[derive(Debug, thiserror::Error)]
pub enum DropError {
    #[error("dropping privileges: {threads} threads run; a uid change would reach only this one")]
    Threads { threads: String },
    #[error("dropping privileges: {op}: {message}")]
    Call { op: &'static str, message: String },
    #[error(
        "dropping privileges: /proc/self/status says {field} is `{found}`, expected `{expected}`"
    )]
    Verify {
        field: &'static str,
        found: String,
        expected: String,
    },
}

fn call<E: std::fmt::Display>(op: &'static str) -> impl FnOnce(E) -> DropError {
    move |e| DropError::Call {
        op,
        message: e.to_string(),
    }
}

/// Becomes `to` for good: no way back to root, no capabilities in any set, no_new_privs.
pub fn drop_to(to: &Identity) -> Result<(), DropError> {
    use caps::CapSet;
    use rustix::process::{Gid, Uid};
    let status = proc::status(None).map_err(call("read /proc/self/status"))?;
    let threads = proc::field(&status, "Threads").unwrap_or("?").to_string();
    if threads != "1" {
        return Err(DropError::Threads { threads });
    }
    caps::clear(None, CapSet::Bounding).map_err(call("clear the bounding set"))?;
    caps::clear(None, CapSet::Ambient).map_err(call("clear the ambient set"))?;
    caps::clear(None, CapSet::Inheritable).map_err(call("clear the inheritable set"))?;
    let groups: Vec<Gid> = to.groups.iter().map(|g| Gid::from_raw(*g)).collect();
    // The thread-level calls are the process's own here: it has one thread (checked above).
    rustix::thread::set_thread_groups(&groups).map_err(call("setgroups"))?;
    let gid = Gid::from_raw(to.gid);
    rustix::thread::set_thread_res_gid(gid, gid, gid).map_err(call("setresgid"))?;
    let uid = Uid::from_raw(to.uid);
    rustix::thread::set_thread_res_uid(uid, uid, uid).map_err(call("setresuid"))?;
    caps::clear(None, CapSet::Effective).map_err(call("clear the effective set"))?;
    caps::clear(None, CapSet::Permitted).map_err(call("clear the permitted set"))?;
    rustix::thread::set_no_new_privs(true).map_err(call("set no_new_privs"))?;
    verify(to)
}

/// Reads the result back as the kernel reports it, and proves root cannot be regained.
pub fn verify(to: &Identity) -> Result<(), DropError> {
    let status = proc::status(None).map_err(call("read /proc/self/status"))?;
    let mut groups = to.groups.clone();
    groups.sort_unstable();
    groups.dedup();
    let expected = [
        ("Uid", vec![to.uid.to_string(); 4].join("\t")),
        ("Gid", vec![to.gid.to_string(); 4].join("\t")),
        (
            "Groups",
            groups
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(" "),
        ),
        ("CapInh", "0000000000000000".into()),
        ("CapPrm", "0000000000000000".into()),
        ("CapEff", "0000000000000000".into()),
        ("CapBnd", "0000000000000000".into()),
        ("CapAmb", "0000000000000000".into()),
        ("NoNewPrivs", "1".into()),
    ];
    for (field, expected) in expected {
        let found = proc::field(&status, field).unwrap_or_default();
        let found = if field == "Groups" {
            let mut ids: Vec<u32> = found
                .split_whitespace()
                .filter_map(|g| g.parse().ok())
                .collect();
            ids.sort_unstable();
            ids.iter().map(u32::to_string).collect::<Vec<_>>().join(" ")
        } else {
            found.to_string()
        };
        if found != expected {
            return Err(DropError::Verify {
                field,
                found,
                expected,
            });
        }
    }
    let root = rustix::process::Uid::ROOT;
    if rustix::thread::set_thread_res_uid(root, root, root).is_ok() {
        return Err(DropError::Verify {
            field: "Uid",
            found: "0 (setresuid(0) succeeded)".into(),
            expected: to.uid.to_string(),
        });
    }
    Ok(())
}
