//! What /proc says about a process, and the machine's memory.

/// The text of /proc/<pid>/status (or the caller's own).
pub fn status(pid: Option<u32>) -> std::io::Result<String> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/status"),
        None => "/proc/self/status".to_string(),
    };
    std::fs::read_to_string(path)
}

/// The value of one `Name:\tvalue` line of a status text.
pub fn field<'a>(status: &'a str, name: &str) -> Option<&'a str> {
    status.lines().find_map(|line| {
        line.strip_prefix(name)
            .and_then(|rest| rest.strip_prefix(':'))
            .map(str::trim)
    })
}

/// A process's resident memory in bytes (VmRSS); None once it is gone.
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let text = status(Some(pid)).ok()?;
    let kib: u64 = field(&text, "VmRSS")?
        .strip_suffix(" kB")?
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// Physical memory, from sysinfo(2): the unit's ProcSubset=pid hides /proc/meminfo.
// totalram is a C unsigned long: 32 bits on armv7, where the conversion is not useless.
#[allow(clippy::useless_conversion)]
pub fn total_memory() -> u64 {
    let info = rustix::system::sysinfo();
    u64::from(info.totalram).saturating_mul(u64::from(info.mem_unit.max(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_own_status_has_memory_and_ids() {
        let text = status(None).unwrap();
        assert_eq!(
            field(&text, "Pid"),
            Some(std::process::id().to_string().as_str())
        );
        assert!(rss_bytes(std::process::id()).unwrap() > 1 << 20);
        assert!(total_memory() > 64 << 20);
        assert_eq!(field("Uid:\t1\t1\t1\t1\n", "Uid"), Some("1\t1\t1\t1"));
        assert_eq!(field("VmRSSx: 1\n", "VmRSS"), None);
    }
}
