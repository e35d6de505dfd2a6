//! Signals through a signalfd, so each one comes with its sender. Node-RED runs as the same
//! user as the supervisor and may therefore signal it; a SIGTERM or SIGHUP sent by that user
//! is Node-RED's (or a flow's) and is ignored, while systemd (pid 1) and root are obeyed.
//! SIGKILL and SIGSTOP cannot be caught: systemd restarts a killed supervisor, and its
//! watchdog kills a stopped one.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd};

use tokio::io::unix::AsyncFd;

/// A delivered signal and who sent it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    pub signal: i32,
    /// 0 when the kernel sent it (a terminal's Ctrl-C).
    pub pid: u32,
    pub uid: u32,
}

pub struct SignalFd {
    fd: AsyncFd<OwnedFd>,
}

/// Signals blocked and routed to a descriptor, before the runtime that will read it exists.
pub struct Blocked(OwnedFd);

impl Blocked {
    /// Registers the descriptor with the running runtime.
    #[allow(unsafe_code)]
    pub fn into_async(self) -> io::Result<SignalFd> {
        // SAFETY: the descriptor is owned by the AsyncFd and lives exactly as long as it.
        let fd = unsafe { AsyncFd::register(self.0) }.map_err(io::Error::from)?;
        Ok(SignalFd { fd })
    }
}

/// Blocks `signals` for this thread (and so for threads it creates later) and returns a
/// descriptor that delivers them. Call before the runtime starts. Children get a clean mask:
/// std's spawn resets it before exec.
#[allow(unsafe_code)]
pub fn block_and_open(signals: &[i32]) -> io::Result<Blocked> {
    // SAFETY: sigset_t is plain data that sigemptyset initialises before any other use.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid sigset_t; sigemptyset/sigaddset only write into it.
    unsafe {
        libc::sigemptyset(&mut set);
        for &signal in signals {
            libc::sigaddset(&mut set, signal);
        }
    }
    // SAFETY: `set` is initialised and the old mask is not asked for (null).
    let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    // SAFETY: -1 asks for a new descriptor; `set` is initialised; the flags are valid.
    let raw = unsafe { libc::signalfd(-1, &set, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC) };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: signalfd returned a new descriptor that nothing else owns.
    Ok(Blocked(unsafe { OwnedFd::from_raw_fd(raw) }))
}

impl SignalFd {
    pub async fn recv(&self) -> io::Result<Delivery> {
        loop {
            let mut guard = self.fd.readable().await?;
            // struct signalfd_siginfo is 128 bytes: ssi_signo, ssi_errno, ssi_code, ssi_pid,
            // ssi_uid, each 32 bits, at its start.
            let mut info = [0u8; 128];
            match guard
                .try_io(|fd| rustix::io::read(fd.get_ref(), &mut info).map_err(io::Error::from))
            {
                Ok(Ok(128)) => {
                    let word = |at: usize| {
                        u32::from_ne_bytes([info[at], info[at + 1], info[at + 2], info[at + 3]])
                    };
                    return Ok(Delivery {
                        signal: word(0) as i32,
                        pid: word(12),
                        uid: word(16),
                    });
                }
                Ok(Ok(n)) => {
                    return Err(io::Error::other(format!(
                        "signalfd: short read of {n} bytes"
                    )))
                }
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => continue,
            }
        }
    }
}

/// Whether a terminating or reloading signal comes from someone allowed to give it: the
/// kernel, systemd, root, our own process, or any user other than the one Node-RED shares with
/// us (when we run as the dedicated service user).
pub fn obeyed(delivery: &Delivery, own_uid: u32, own_pid: u32, service_uid: Option<u32>) -> bool {
    let from_service_user = service_uid == Some(own_uid) && delivery.uid == own_uid;
    delivery.pid == 0
        || delivery.pid == 1
        || delivery.uid == 0
        || delivery.pid == own_pid
        || !from_service_user
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn who_may_stop_the_supervisor() {
        let nodered = 995;
        let as_service = Some(nodered);
        let from = |pid, uid| Delivery {
            signal: libc::SIGTERM,
            pid,
            uid,
        };
        // systemd, root, the kernel: obeyed.
        assert!(obeyed(&from(1, 0), nodered, 40, as_service));
        assert!(obeyed(&from(777, 0), nodered, 40, as_service));
        assert!(obeyed(&from(0, 0), nodered, 40, as_service));
        // Node-RED or a flow, running as the service user: ignored.
        assert!(!obeyed(&from(41, nodered), nodered, 40, as_service));
        // A developer running `redwarden run` as themselves may stop it from another shell.
        assert!(obeyed(&from(900, 1000), 1000, 40, as_service));
        assert!(obeyed(&from(900, 1000), 1000, 40, None));
    }

    #[test]
    #[allow(unsafe_code)]
    fn a_blocked_signal_arrives_with_its_sender() {
        // Runs in its own thread so the blocked mask does not leak into other tests.
        std::thread::spawn(|| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let fd = block_and_open(&[libc::SIGUSR2])
                    .unwrap()
                    .into_async()
                    .unwrap();
                // SAFETY: tgkill to our own thread with a blocked signal only queues it.
                let rc = unsafe {
                    libc::syscall(
                        libc::SYS_tgkill,
                        libc::getpid(),
                        libc::gettid(),
                        libc::SIGUSR2,
                    )
                };
                assert_eq!(rc, 0);
                let delivery = fd.recv().await.unwrap();
                assert_eq!(delivery.signal, libc::SIGUSR2);
                assert_eq!(delivery.pid, std::process::id());
                assert_eq!(delivery.uid, rustix::process::getuid().as_raw());
            });
        })
        .join()
        .unwrap();
    }
}
