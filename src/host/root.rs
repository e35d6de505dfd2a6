//! Every system path goes through a [`Root`]: `/` on a live system, an image's root folder under
//! `--root`. Paths are resolved the way a chroot would see them, so an image's absolute symlinks
//! (`/etc/systemd/system/x.service -> /lib/systemd/system/x.service`) never reach the host.

use std::ffi::OsStr;
use std::io;
use std::path::{Component, Path, PathBuf};

/// Symlinks followed in one resolution before giving up, as the kernel's own limit.
const MAX_SYMLINKS: usize = 40;

#[derive(Debug, thiserror::Error)]
pub enum RootError {
    #[error("{path}: a system path must be absolute and free of `..` and `.` components")]
    NotClean { path: PathBuf },
    #[error("{path}: more than {MAX_SYMLINKS} symbolic links while resolving it inside {root}")]
    SymlinkLoop { root: PathBuf, path: PathBuf },
    #[error("{path}: cannot read symbolic link: {source}")]
    ReadLink { path: PathBuf, source: io::Error },
}

/// The filesystem root that redwarden inspects and changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Root {
    dir: PathBuf,
    live: bool,
}

impl Root {
    /// The running system: units are started, the firewall is loaded, processes are asked.
    pub fn live() -> Self {
        Self {
            dir: PathBuf::from("/"),
            live: true,
        }
    }

    /// An image's root, changed as files only. `/` too: an image build runs redwarden in a
    /// chroot (pi-gen's on_chroot) with `--root /`, where nothing of the build host's kernel,
    /// firewall or systemd may be touched.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            live: false,
        }
    }

    pub fn is_live(&self) -> bool {
        self.live
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Checks that a system path is absolute and has no `.`/`..`, so configuration cannot walk
    /// out of the root.
    pub fn check_clean(path: &Path) -> Result<(), RootError> {
        let mut components = path.components();
        let absolute = components.next() == Some(Component::RootDir);
        if !absolute || !components.all(|c| matches!(c, Component::Normal(_))) {
            return Err(RootError::NotClean {
                path: path.to_path_buf(),
            });
        }
        Ok(())
    }

    /// The host path of a system path, joined lexically: no symlink in the image is followed.
    /// Use it for files redwarden opens with O_NOFOLLOW semantics of its own.
    pub fn join(&self, path: &Path) -> Result<PathBuf, RootError> {
        Self::check_clean(path)?;
        let relative = path.strip_prefix("/").unwrap_or(path);
        Ok(self.dir.join(relative))
    }

    /// The host path of a system path whose parent folders are resolved inside the root but whose
    /// last component is kept as it is: for paths redwarden opens with O_NOFOLLOW, such as the
    /// userDir, which Node-RED's user could replace with a link.
    pub fn resolve_parent(&self, path: &Path) -> Result<PathBuf, RootError> {
        Self::check_clean(path)?;
        match (path.parent(), path.file_name()) {
            (Some(parent), Some(name)) => Ok(self.resolve(parent)?.join(name)),
            _ => Ok(self.dir.clone()),
        }
    }

    /// The host path of a system path with every symlink resolved inside the root, as a process
    /// chrooted there would see it. A missing tail is kept as written, so a file that does not
    /// exist yet still gets its final host path.
    pub fn resolve(&self, path: &Path) -> Result<PathBuf, RootError> {
        Self::check_clean(path)?;
        if self.is_live() {
            return Ok(path.to_path_buf());
        }
        let mut pending: Vec<std::ffi::OsString> = path
            .components()
            .skip(1)
            .map(|c| c.as_os_str().to_os_string())
            .collect();
        pending.reverse();
        // `resolved` is relative to the root; it never holds `..`.
        let mut resolved = PathBuf::new();
        let mut links = 0;
        while let Some(name) = pending.pop() {
            if name == OsStr::new("..") {
                resolved.pop();
                continue;
            }
            if name == OsStr::new(".") || name.is_empty() {
                continue;
            }
            let candidate = resolved.join(&name);
            let host = self.dir.join(&candidate);
            match std::fs::symlink_metadata(&host) {
                Ok(meta) if meta.file_type().is_symlink() => {
                    links += 1;
                    if links > MAX_SYMLINKS {
                        return Err(RootError::SymlinkLoop {
                            root: self.dir.clone(),
                            path: path.to_path_buf(),
                        });
                    }
                    let target = std::fs::read_link(&host)
                        .map_err(|source| RootError::ReadLink { path: host, source })?;
                    if target.is_absolute() {
                        resolved = PathBuf::new();
                    }
                    for c in target.components().rev() {
                        if let Component::Normal(_) | Component::ParentDir = c {
                            pending.push(c.as_os_str().to_os_string());
                        }
                    }
                }
                _ => resolved = candidate,
            }
        }
        Ok(self.dir.join(resolved))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_relative_and_dotdot_paths() {
        let root = Root::new("/tmp/image");
        for bad in ["etc/passwd", "/etc/../../passwd", "/etc/..", ""] {
            assert!(root.join(Path::new(bad)).is_err(), "{bad} was accepted");
        }
        assert_eq!(
            root.join(Path::new("/etc/passwd")).unwrap(),
            PathBuf::from("/tmp/image/etc/passwd")
        );
    }

    #[test]
    fn absolute_symlinks_stay_inside_the_image() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::new(dir.path());
        std::fs::create_dir_all(dir.path().join("usr/lib/systemd")).unwrap();
        std::os::unix::fs::symlink("/usr/lib", dir.path().join("lib")).unwrap();
        std::os::unix::fs::symlink("../../../../..", dir.path().join("usr/lib/systemd/up"))
            .unwrap();
        assert_eq!(
            root.resolve(Path::new("/lib/systemd/system/x.service"))
                .unwrap(),
            dir.path().join("usr/lib/systemd/system/x.service")
        );
        // `..` through a link clamps at the image root instead of reaching the host.
        assert_eq!(
            root.resolve(Path::new("/usr/lib/systemd/up/etc/shadow"))
                .unwrap(),
            dir.path().join("etc/shadow")
        );
    }

    #[test]
    fn symlink_loops_are_an_error() {
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/b", dir.path().join("a")).unwrap();
        std::os::unix::fs::symlink("/a", dir.path().join("b")).unwrap();
        let err = Root::new(dir.path())
            .resolve(Path::new("/a/x"))
            .unwrap_err();
        assert!(matches!(err, RootError::SymlinkLoop { .. }), "{err}");
    }
}
