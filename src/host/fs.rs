//! Files, the careful way. Everything here works on opened handles: the userDir is writable by
//! Node-RED, so a path that was a file when observed may be a symlink by the time it is changed.
//! Directories are descended with O_NOFOLLOW, entries are stat'ed without following links, and a
//! change is made through a handle whose inode is checked against what was observed.

//!
//! Built on rustix rather than nix/libc: rustix always uses the 64-bit stat and getdents calls,
//! where libc's plain ones fail with EOVERFLOW on 32-bit ARM (armv7 Pi OS) for large inode
//! numbers and directory offsets.

use rustix::fs::{
    fchmod, fchown, fstat, fsync, mkdirat, openat, statat, unlinkat, AtFlags, FileType, Gid, Mode,
    OFlags, Stat, Uid, CWD,
};
use rustix::io::Errno;
use std::ffi::{CString, OsStr, OsString};
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum FsError {
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: Errno,
    },
    #[error("{path}: refusing to {op} through a symbolic link")]
    Symlink { op: &'static str, path: PathBuf },
    #[error("{path}: changed between observation and change (expected inode {expected}, found {found}); nothing done")]
    Replaced {
        path: PathBuf,
        expected: u64,
        found: u64,
    },
    #[error("{path}: not a regular file or folder; left alone")]
    Special { path: PathBuf },
    #[error("{path}: the folder is writable by group or others (mode {mode:04o}) or owned by uid {uid}; refusing to write system files into it")]
    UnsafeParent { path: PathBuf, mode: u32, uid: u32 },
}

impl FsError {
    /// Unprivileged runs meet these; they are reported as not inspected, not as failures.
    pub fn is_permission_denied(&self) -> bool {
        matches!(
            self,
            Self::Io {
                source: Errno::ACCESS | Errno::PERM,
                ..
            }
        )
    }
}

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(Errno) -> FsError + 'a {
    move |source| FsError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// This process's effective uid and gid: the owner of files it writes for itself.
pub fn own_ids() -> (u32, u32) {
    (
        rustix::process::geteuid().as_raw(),
        rustix::process::getegid().as_raw(),
    )
}

/// For std's I/O calls: the error, naming the operation and the path.
pub fn std_io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> FsError + 'a {
    move |e| io(op, path)(errno_of(e))
}

fn cstring(name: &OsStr) -> CString {
    // Names come from paths and directory entries, which cannot contain NUL.
    CString::new(name.as_bytes()).unwrap_or_default()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    Symlink,
    Other,
}

/// One observed file: what a plan needs, and the identity that a fix checks against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    pub kind: Kind,
    /// Permission bits including setuid/setgid/sticky (`st_mode & 0o7777`).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub ino: u64,
    /// Modification time, nanoseconds since the epoch.
    pub modified_ns: i128,
}

impl From<&Stat> for Meta {
    fn from(st: &Stat) -> Self {
        let kind = match FileType::from_raw_mode(st.st_mode) {
            FileType::RegularFile => Kind::File,
            FileType::Directory => Kind::Dir,
            FileType::Symlink => Kind::Symlink,
            _ => Kind::Other,
        };
        Self {
            kind,
            mode: st.st_mode & 0o7777,
            uid: st.st_uid,
            gid: st.st_gid,
            ino: st.st_ino,
            modified_ns: i128::from(st.st_mtime) * 1_000_000_000 + i128::from(st.st_mtime_nsec),
        }
    }
}

fn mode(bits: u32) -> Mode {
    Mode::from_raw_mode(bits)
}

/// Stats a path without following a final symlink. `Ok(None)` when it does not exist.
pub fn lstat(path: &Path) -> Result<Option<Meta>, FsError> {
    match statat(CWD, path, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(Meta::from(&st))),
        Err(Errno::NOENT | Errno::NOTDIR) => Ok(None),
        Err(e) => Err(io("stat", path)(e)),
    }
}

/// An entry met while walking a tree.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Path relative to the walked top folder.
    pub rel: PathBuf,
    pub meta: Meta,
    /// The link's target, for symlinks.
    pub link: Option<PathBuf>,
}

/// What could not be read during a walk, so a report can say what it did not inspect.
#[derive(Debug, Clone)]
pub struct Unreadable {
    /// Relative to the walked top folder; empty for the top itself.
    pub rel: PathBuf,
    pub reason: Errno,
}

fn open_dir_nofollow(dirfd: impl AsFd, name: &Path) -> Result<OwnedFd, Errno> {
    openat(
        dirfd,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

/// Walks the tree under `top` (itself not reported) without following any symlink, calling
/// `visit` for each entry. Folders that cannot be read are returned, not fatal.
pub fn walk(top: &Path, mut visit: impl FnMut(&Entry)) -> Result<Vec<Unreadable>, FsError> {
    let top_fd = open_dir_nofollow(CWD, top).map_err(|e| match e {
        Errno::LOOP => FsError::Symlink {
            op: "walk",
            path: top.to_path_buf(),
        },
        e => io("open folder", top)(e),
    })?;
    let mut unreadable = Vec::new();
    let mut stack: Vec<(OwnedFd, PathBuf)> = vec![(top_fd, PathBuf::new())];
    while let Some((fd, rel_dir)) = stack.pop() {
        let names = match read_names(&fd) {
            Ok(names) => names,
            Err(reason) => {
                unreadable.push(Unreadable {
                    rel: rel_dir,
                    reason,
                });
                continue;
            }
        };
        for name in names {
            let rel = rel_dir.join(&name);
            let st = match statat(&fd, name.as_os_str(), AtFlags::SYMLINK_NOFOLLOW) {
                Ok(st) => st,
                Err(Errno::NOENT) => continue, // removed while walking
                Err(reason) => {
                    unreadable.push(Unreadable { rel, reason });
                    continue;
                }
            };
            let meta = Meta::from(&st);
            let link = match meta.kind {
                Kind::Symlink => rustix::fs::readlinkat(&fd, name.as_os_str(), Vec::new())
                    .ok()
                    .map(|target| PathBuf::from(OsStr::from_bytes(target.as_bytes()))),
                _ => None,
            };
            let entry = Entry { rel, meta, link };
            visit(&entry);
            if entry.meta.kind == Kind::Dir {
                match open_dir_nofollow(&fd, Path::new(&name)) {
                    Ok(child) => stack.push((child, entry.rel)),
                    Err(Errno::NOENT | Errno::LOOP | Errno::NOTDIR) => {}
                    Err(reason) => unreadable.push(Unreadable {
                        rel: entry.rel,
                        reason,
                    }),
                }
            }
        }
    }
    Ok(unreadable)
}

/// The folders (never symlinks to one) in a folder, by name; none when it does not exist.
pub fn subdirs(dir: &Path) -> Result<Vec<(OsString, PathBuf)>, FsError> {
    let fd = match open_dir_nofollow(CWD, dir) {
        Ok(fd) => fd,
        Err(Errno::NOENT | Errno::NOTDIR) => return Ok(Vec::new()),
        Err(Errno::LOOP) => {
            return Err(FsError::Symlink {
                op: "list",
                path: dir.to_path_buf(),
            })
        }
        Err(e) => return Err(io("list", dir)(e)),
    };
    let mut found = Vec::new();
    for name in read_names(&fd).map_err(io("list", dir))? {
        if statat(&fd, name.as_os_str(), AtFlags::SYMLINK_NOFOLLOW)
            .is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Directory)
        {
            found.push((name.clone(), dir.join(name)));
        }
    }
    found.sort();
    Ok(found)
}

fn read_names(fd: &OwnedFd) -> Result<Vec<OsString>, Errno> {
    let dir = rustix::fs::Dir::read_from(fd)?;
    let mut names = Vec::new();
    for entry in dir {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            names.push(OsStr::from_bytes(name).to_os_string());
        }
    }
    Ok(names)
}

fn errno_of(e: std::io::Error) -> Errno {
    Errno::from_io_error(&e).unwrap_or(Errno::IO)
}

/// Opens `rel` below the folder `top` one component at a time, never following a symlink, and
/// checks that the final inode is the one that was observed.
fn open_beneath(top: &Path, rel: &Path, expected_ino: u64) -> Result<OwnedFd, FsError> {
    let full = top.join(rel);
    let mut fd = open_dir_nofollow(CWD, top).map_err(|e| match e {
        Errno::LOOP => FsError::Symlink {
            op: "open",
            path: top.to_path_buf(),
        },
        e => io("open folder", top)(e),
    })?;
    let components: Vec<&OsStr> = rel
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n),
            _ => None,
        })
        .collect();
    for (index, name) in components.iter().enumerate() {
        let last = index + 1 == components.len();
        let flags = if last {
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY
        } else {
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW
        };
        fd = match openat(&fd, *name, flags | OFlags::CLOEXEC, Mode::empty()) {
            Ok(next) => next,
            Err(e @ (Errno::LOOP | Errno::NOTDIR)) => {
                return Err(link_or_io(&fd, Path::new(name), "change", &full, e))
            }
            Err(e) => return Err(io("open", &full)(e)),
        };
    }
    let st = fstat(&fd).map_err(io("stat", &full))?;
    let meta = Meta::from(&st);
    if meta.ino != expected_ino {
        return Err(FsError::Replaced {
            path: full,
            expected: expected_ino,
            found: meta.ino,
        });
    }
    if !matches!(meta.kind, Kind::File | Kind::Dir) {
        return Err(FsError::Special { path: full });
    }
    Ok(fd)
}

/// O_NOFOLLOW meets a link as ELOOP, O_DIRECTORY as ENOTDIR: tell a link (refused) from
/// anything else (an I/O error).
fn link_or_io(dirfd: impl AsFd, name: &Path, op: &'static str, path: &Path, e: Errno) -> FsError {
    if statat(dirfd, name, AtFlags::SYMLINK_NOFOLLOW)
        .is_ok_and(|st| Meta::from(&st).kind == Kind::Symlink)
    {
        FsError::Symlink {
            op,
            path: path.to_path_buf(),
        }
    } else {
        io("open", path)(e)
    }
}

/// Changes owner and/or mode of an observed entry below `top`, through a handle. The owner goes
/// first: chown clears setuid/setgid bits, and the mode is what must hold at the end.
pub fn fix_entry(
    top: &Path,
    rel: &Path,
    expected_ino: u64,
    owner: Option<(u32, u32)>,
    mode: Option<u32>,
) -> Result<(), FsError> {
    let full = top.join(rel);
    let fd = open_beneath(top, rel, expected_ino)?;
    if let Some((uid, gid)) = owner {
        fchown(&fd, Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid)))
            .map_err(io("chown", &full))?;
    }
    if let Some(mode) = mode {
        fchmod(&fd, self::mode(mode)).map_err(io("chmod", &full))?;
    }
    Ok(())
}

/// Creates a folder (and missing parents, root-owned 0755) with an exact owner and mode.
pub fn create_dir(path: &Path, mode: u32, uid: u32, gid: u32) -> Result<(), FsError> {
    if let Some(parent) = path.parent() {
        if lstat(parent)?.is_none() {
            create_dir(parent, 0o755, 0, 0)?;
        }
    }
    let (parent, name) = split(path)?;
    let parent_fd = open_dir_nofollow(CWD, parent).map_err(io("open folder", parent))?;
    match mkdirat(&parent_fd, name, self::mode(0o700)) {
        Ok(()) | Err(Errno::EXIST) => {}
        Err(e) => return Err(io("create folder", path)(e)),
    }
    let fd = open_dir_nofollow(&parent_fd, Path::new(name)).map_err(|e| match e {
        Errno::LOOP | Errno::NOTDIR => FsError::Symlink {
            op: "create folder",
            path: path.to_path_buf(),
        },
        e => io("open folder", path)(e),
    })?;
    chown_if_needed(&fd, path, uid, gid)?;
    fchmod(&fd, self::mode(mode)).map_err(io("chmod", path))?;
    Ok(())
}

fn chown_if_needed(fd: &OwnedFd, path: &Path, uid: u32, gid: u32) -> Result<(), FsError> {
    let st = fstat(fd).map_err(io("stat", path))?;
    if st.st_uid != uid || st.st_gid != gid {
        fchown(fd, Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid)))
            .map_err(io("chown", path))?;
    }
    Ok(())
}

fn split(path: &Path) -> Result<(&Path, &OsStr), FsError> {
    match (path.parent(), path.file_name()) {
        (Some(parent), Some(name)) => Ok((parent, name)),
        _ => Err(FsError::Io {
            op: "split",
            path: path.to_path_buf(),
            source: Errno::INVAL,
        }),
    }
}

/// What a tree copy did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CopyStats {
    pub files: usize,
    pub bytes: u64,
    pub links: usize,
    /// Sockets, FIFOs and device nodes, which are not copied.
    pub skipped: usize,
}

fn read_fd(fd: OwnedFd, path: &Path) -> Result<Vec<u8>, FsError> {
    use std::io::Read;
    let mut out = Vec::new();
    std::fs::File::from(fd)
        .read_to_end(&mut out)
        .map_err(|e| io("read", path)(errno_of(e)))?;
    Ok(out)
}

/// Copies the tree at `from` into the new folder `to`, every entry owned by `uid:gid`, never
/// following a link in the source (links are copied as links). Setuid/setgid and world-write
/// bits are dropped. `to` must not exist.
pub fn copy_tree(from: &Path, to: &Path, uid: u32, gid: u32) -> Result<CopyStats, FsError> {
    let (parent, name) = split(to)?;
    let parent_fd = open_trusted_folder(parent)?;
    mkdirat(&parent_fd, name, self::mode(0o700)).map_err(io("create folder", to))?;
    let mut entries = Vec::new();
    let unreadable = walk(from, |e| entries.push(e.clone()))?;
    if let Some(first) = unreadable.first() {
        return Err(io("read folder", &from.join(&first.rel))(first.reason));
    }
    let owner = (Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid)));
    let mut stats = CopyStats::default();
    // Owner and mode are set through a handle once an entry exists; the top folder first.
    let finish = |target: &Path, mode_bits: u32| -> Result<(), FsError> {
        let fd = openat(
            CWD,
            target,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(io("open", target))?;
        fchown(&fd, owner.0, owner.1).map_err(io("chown", target))?;
        fchmod(&fd, self::mode(mode_bits & 0o775)).map_err(io("chmod", target))
    };
    finish(to, 0o750)?;
    for entry in &entries {
        let source = from.join(&entry.rel);
        let target = to.join(&entry.rel);
        match entry.meta.kind {
            Kind::Dir => {
                mkdirat(CWD, &target, self::mode(0o700)).map_err(io("create folder", &target))?;
            }
            Kind::File => {
                let contents = read_fd(open_beneath(from, &entry.rel, entry.meta.ino)?, &source)?;
                let fd = openat(
                    CWD,
                    &target,
                    OFlags::WRONLY
                        | OFlags::CREATE
                        | OFlags::EXCL
                        | OFlags::NOFOLLOW
                        | OFlags::CLOEXEC,
                    self::mode(0o600),
                )
                .map_err(io("create", &target))?;
                let mut file = std::fs::File::from(fd);
                file.write_all(&contents)
                    .map_err(|e| io("write", &target)(errno_of(e)))?;
                fsync(&file).map_err(io("fsync", &target))?;
                stats.files += 1;
                stats.bytes += contents.len() as u64;
            }
            Kind::Symlink => {
                let link = entry
                    .link
                    .as_ref()
                    .ok_or(FsError::Special { path: source })?;
                rustix::fs::symlinkat(link, CWD, &target).map_err(io("create link", &target))?;
                rustix::fs::chownat(CWD, &target, owner.0, owner.1, AtFlags::SYMLINK_NOFOLLOW)
                    .map_err(io("chown", &target))?;
                stats.links += 1;
                continue;
            }
            Kind::Other => {
                stats.skipped += 1;
                continue;
            }
        }
        finish(&target, entry.meta.mode)?;
    }
    fsync(&parent_fd).map_err(io("fsync", parent))?;
    Ok(stats)
}

/// The entries where two trees differ: missing on one side, another kind, other contents, or
/// another link target. Owners and modes are not compared. Empty when the copy is faithful.
pub fn compare_trees(a: &Path, b: &Path) -> Result<Vec<PathBuf>, FsError> {
    let collect = |top: &Path| -> Result<std::collections::BTreeMap<PathBuf, Entry>, FsError> {
        let mut map = std::collections::BTreeMap::new();
        walk(top, |e| {
            map.insert(e.rel.clone(), e.clone());
        })?;
        Ok(map)
    };
    let (left, right) = (collect(a)?, collect(b)?);
    let mut differences = Vec::new();
    for (rel, l) in &left {
        let same = match right.get(rel) {
            None => false,
            Some(r) if r.meta.kind != l.meta.kind => false,
            Some(r) => match l.meta.kind {
                Kind::File => {
                    read_fd(open_beneath(a, rel, l.meta.ino)?, &a.join(rel))?
                        == read_fd(open_beneath(b, rel, r.meta.ino)?, &b.join(rel))?
                }
                Kind::Symlink => l.link == r.link,
                Kind::Dir => true,
                // Not copied: present only on the source side.
                Kind::Other => continue,
            },
        };
        if !same {
            differences.push(rel.clone());
        }
    }
    differences.extend(right.keys().filter(|rel| !left.contains_key(*rel)).cloned());
    Ok(differences)
}

/// Opens a folder that system files may be written into: owned by root (or by whoever runs
/// redwarden, for image folders they own) and writable by nobody else, as sudo-rs checks.
fn open_trusted_folder(folder: &Path) -> Result<OwnedFd, FsError> {
    let fd = open_dir_nofollow(CWD, folder).map_err(io("open folder", folder))?;
    let meta = Meta::from(&fstat(&fd).map_err(io("stat", folder))?);
    let euid = rustix::process::geteuid().as_raw();
    if meta.mode & 0o022 != 0 || (meta.uid != 0 && meta.uid != euid) {
        return Err(FsError::UnsafeParent {
            path: folder.to_path_buf(),
            mode: meta.mode,
            uid: meta.uid,
        });
    }
    Ok(fd)
}

/// The outcome of a write: whether the file on disk changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    Changed,
    Unchanged,
}

/// The one writer for files that redwarden owns or rewrites (account files, units, configs).
/// Writes a temp file beside the target (O_EXCL|O_NOFOLLOW, final owner and mode), fsyncs it,
/// renames it over the target and fsyncs the folder, so a crash leaves the old file or the new
/// one. Skips the write when content, mode and owner already match. Refuses a folder that a
/// less privileged user could write to, and a target that is a symlink.
pub fn write_file(
    path: &Path,
    contents: &[u8],
    mode: u32,
    uid: u32,
    gid: u32,
) -> Result<Written, FsError> {
    let (parent, name) = split(path)?;
    let parent_fd = open_trusted_folder(parent)?;
    match statat(&parent_fd, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => {
            let meta = Meta::from(&st);
            match meta.kind {
                Kind::Symlink => {
                    return Err(FsError::Symlink {
                        op: "write",
                        path: path.to_path_buf(),
                    })
                }
                Kind::File
                    if meta.mode == mode
                        && meta.uid == uid
                        && meta.gid == gid
                        && same_contents(&parent_fd, name, contents) =>
                {
                    return Ok(Written::Unchanged)
                }
                Kind::File => {}
                _ => {
                    return Err(FsError::Special {
                        path: path.to_path_buf(),
                    })
                }
            }
        }
        Err(Errno::NOENT) => {}
        Err(e) => return Err(io("stat", path)(e)),
    }

    replace_at(&parent_fd, name, path, contents, mode, uid, gid)?;
    fsync(&parent_fd).map_err(io("fsync", parent))?;
    Ok(Written::Changed)
}

/// Puts `contents` at `name` in the open folder: a temp file beside it (O_EXCL|O_NOFOLLOW, final
/// owner and mode, fsynced) renamed over it, so a reader sees the old file or the new one. The
/// caller fsyncs the folder. `path` names the file in errors.
fn replace_at(
    parent_fd: &OwnedFd,
    name: &OsStr,
    path: &Path,
    contents: &[u8],
    mode: u32,
    uid: u32,
    gid: u32,
) -> Result<(), FsError> {
    let temp_name = temp_name(name);
    let temp = openat(
        parent_fd,
        temp_name.as_c_str(),
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        self::mode(mode & 0o777),
    )
    .map_err(io("create", path))?;
    let result = (|| {
        chown_if_needed(&temp, path, uid, gid)?;
        fchmod(&temp, self::mode(mode)).map_err(io("chmod", path))?;
        let mut file = std::fs::File::from(
            temp.try_clone()
                .map_err(|e| io("write", path)(errno_of(e)))?,
        );
        file.write_all(contents)
            .map_err(|e| io("write", path)(errno_of(e)))?;
        fsync(&temp).map_err(io("fsync", path))?;
        rustix::fs::renameat(parent_fd, temp_name.as_c_str(), parent_fd, name)
            .map_err(io("rename", path))
    })();
    if result.is_err() {
        let _ = unlinkat(parent_fd, temp_name.as_c_str(), AtFlags::empty());
    }
    result
}

/// What [`carry_over`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CarriedOver {
    pub files: u64,
    pub bytes: u64,
    pub links: u64,
    /// Changed in both trees since the copy: the copy's version stays.
    pub kept: Vec<PathBuf>,
    /// Special files (FIFOs, sockets, devices), which are never copied.
    pub skipped: Vec<PathBuf>,
}

/// Brings into the copy `to` each regular file of `from` that was modified at or after
/// `changed_since` (ns since the epoch), unless the copy's own file was modified at or after
/// `copy_made`: a copy that changed since it was made is never overwritten. Files land with the
/// owner of `to` and their source mode without setuid, setgid or world-write; missing folders
/// and links are created, a link the copy holds otherwise is kept, and nothing is deleted. `to` may belong to a less privileged user: it is entered
/// through handles, never through a symlink.
pub fn carry_over(
    from: &Path,
    to: &Path,
    changed_since: i128,
    copy_made: i128,
) -> Result<CarriedOver, FsError> {
    let mut changed = Vec::new();
    let unreadable = walk(from, |e| {
        if e.meta.modified_ns >= changed_since && e.meta.kind != Kind::Dir {
            changed.push(e.clone());
        }
    })?;
    if let Some(first) = unreadable.first() {
        return Err(io("read folder", &from.join(&first.rel))(first.reason));
    }
    let top =
        open_dir_nofollow(CWD, to).map_err(|e| link_or_io(CWD, to, "carry over into", to, e))?;
    let owner = Meta::from(&fstat(&top).map_err(io("stat", to))?);
    let mut done = CarriedOver::default();
    for entry in changed {
        let target = to.join(&entry.rel);
        match (&entry.meta.kind, &entry.link) {
            (Kind::File, _) => {}
            (Kind::Symlink, Some(link)) => {
                let (folder, name) = open_folder_creating(&top, to, &entry.rel, &owner)?;
                match rustix::fs::readlinkat(&folder, name, Vec::new()) {
                    Ok(current) if current.as_bytes() == link.as_os_str().as_bytes() => {}
                    Err(Errno::NOENT) => {
                        rustix::fs::symlinkat(link, &folder, name)
                            .map_err(io("create link", &target))?;
                        rustix::fs::chownat(
                            &folder,
                            name,
                            Some(Uid::from_raw(owner.uid)),
                            Some(Gid::from_raw(owner.gid)),
                            AtFlags::SYMLINK_NOFOLLOW,
                        )
                        .map_err(io("chown", &target))?;
                        done.links += 1;
                    }
                    _ => done.kept.push(entry.rel),
                }
                continue;
            }
            _ => {
                done.skipped.push(entry.rel);
                continue;
            }
        }
        let contents = read_fd(
            open_beneath(from, &entry.rel, entry.meta.ino)?,
            &from.join(&entry.rel),
        )?;
        let (folder, name) = open_folder_creating(&top, to, &entry.rel, &owner)?;
        match statat(&folder, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => {
                let current = Meta::from(&st);
                if current.kind == Kind::File && same_contents(&folder, name, &contents) {
                    continue;
                }
                if current.kind != Kind::File || current.modified_ns >= copy_made {
                    done.kept.push(entry.rel);
                    continue;
                }
            }
            Err(Errno::NOENT) => {}
            Err(e) => return Err(io("stat", &target)(e)),
        }
        replace_at(
            &folder,
            name,
            &target,
            &contents,
            entry.meta.mode & 0o775,
            owner.uid,
            owner.gid,
        )?;
        fsync(&folder).map_err(io("fsync", &target))?;
        done.files += 1;
        done.bytes += contents.len() as u64;
    }
    Ok(done)
}

/// Opens the folder that holds `rel` below the open folder `top` (named `top_path` in errors),
/// creating missing folders 0700 with the owner of `top`, and never entering a symlink.
fn open_folder_creating<'a>(
    top: &OwnedFd,
    top_path: &Path,
    rel: &'a Path,
    owner: &Meta,
) -> Result<(OwnedFd, &'a OsStr), FsError> {
    let mut names: Vec<&OsStr> = rel
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n),
            _ => None,
        })
        .collect();
    let file = names.pop().ok_or(FsError::Special {
        path: top_path.join(rel),
    })?;
    let mut folder = top
        .try_clone()
        .map_err(|e| io("open", top_path)(errno_of(e)))?;
    let mut path = top_path.to_path_buf();
    for name in names {
        path.push(name);
        let next = match open_dir_nofollow(&folder, Path::new(name)) {
            Err(Errno::NOENT) => {
                mkdirat(&folder, name, self::mode(0o700)).map_err(io("create folder", &path))?;
                let created =
                    open_dir_nofollow(&folder, Path::new(name)).map_err(io("open", &path))?;
                fchown(
                    &created,
                    Some(Uid::from_raw(owner.uid)),
                    Some(Gid::from_raw(owner.gid)),
                )
                .map_err(io("chown", &path))?;
                created
            }
            Err(e @ (Errno::LOOP | Errno::NOTDIR)) => {
                return Err(link_or_io(
                    &folder,
                    Path::new(name),
                    "carry over into",
                    &path,
                    e,
                ))
            }
            other => other.map_err(io("open", &path))?,
        };
        folder = next;
    }
    Ok((folder, file))
}

/// Makes `path` a symlink to `target` (atomically: a temp link renamed over it), unless it
/// already is one. Missing parent folders are created root-owned 0755.
pub fn write_symlink(path: &Path, target: &Path) -> Result<Written, FsError> {
    let (parent, name) = split(path)?;
    if lstat(parent)?.is_none() {
        create_dir(parent, 0o755, 0, 0)?;
    }
    let parent_fd = open_trusted_folder(parent)?;
    if let Ok(current) = rustix::fs::readlinkat(&parent_fd, name, Vec::new()) {
        if current.as_bytes() == target.as_os_str().as_bytes() {
            return Ok(Written::Unchanged);
        }
    }
    let temp = temp_name(name);
    rustix::fs::symlinkat(target, &parent_fd, temp.as_c_str()).map_err(io("create link", path))?;
    rustix::fs::renameat(&parent_fd, temp.as_c_str(), &parent_fd, name).map_err(|e| {
        let _ = unlinkat(&parent_fd, temp.as_c_str(), AtFlags::empty());
        io("rename", path)(e)
    })?;
    fsync(&parent_fd).map_err(io("fsync", parent))?;
    Ok(Written::Changed)
}

fn temp_name(name: &OsStr) -> CString {
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let mut temp = OsString::from(".");
    temp.push(name);
    temp.push(format!(
        ".redwarden-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    cstring(&temp)
}

fn same_contents(parent_fd: &OwnedFd, name: &OsStr, contents: &[u8]) -> bool {
    // NONBLOCK: a FIFO swapped in by the folder's owner must not hang the reader.
    let Ok(fd) = openat(
        parent_fd,
        name,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    ) else {
        return false;
    };
    let mut existing = Vec::with_capacity(contents.len());
    use std::io::Read;
    std::fs::File::from(fd).read_to_end(&mut existing).is_ok() && existing == contents
}

/// Removes a file or a symlink (never what a symlink points to); a missing one is no error.
pub fn remove_file(path: &Path) -> Result<(), FsError> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(std_io("remove", path)(e)),
        _ => Ok(()),
    }
}

/// Reads a file that must not be a symlink planted by a less privileged user.
pub fn read_nofollow(path: &Path) -> Result<Option<Vec<u8>>, FsError> {
    read_nofollow_upto(path, u64::MAX)
}

/// Like [`read_nofollow`], but reads no more than `max` bytes and one more, so that a caller
/// that bounds what it reads from a tree others write can tell a file that is too large.
pub fn read_nofollow_upto(path: &Path, max: u64) -> Result<Option<Vec<u8>>, FsError> {
    match openat(
        CWD,
        path,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK,
        Mode::empty(),
    ) {
        Ok(fd) => {
            use std::io::Read;
            let mut out = Vec::new();
            std::fs::File::from(fd)
                .take(max.saturating_add(1))
                .read_to_end(&mut out)
                .map_err(|e| io("read", path)(errno_of(e)))?;
            Ok(Some(out))
        }
        Err(Errno::NOENT) => Ok(None),
        Err(Errno::LOOP) => Err(FsError::Symlink {
            op: "read",
            path: path.to_path_buf(),
        }),
        Err(e) => Err(io("read", path)(e)),
    }
}

/// An exclusive whole-file lock (fcntl F_SETLK[W]), released when dropped. The account files
/// use the shadow-utils lock `/etc/.pwd.lock` (as lckpwdf(3) takes it), so redwarden's edits
/// never interleave with useradd, passwd or another redwarden.
pub struct FileLock {
    _fd: OwnedFd,
}

impl FileLock {
    fn open(lock_path: &Path) -> Result<OwnedFd, FsError> {
        let (folder, name) = split(lock_path)?;
        openat(
            open_trusted_folder(folder)?,
            name,
            OFlags::WRONLY | OFlags::CREATE | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            self::mode(0o600),
        )
        .map_err(io("open lock", lock_path))
    }

    /// Waits until the lock is free.
    pub fn acquire(lock_path: &Path) -> Result<Self, FsError> {
        let fd = Self::open(lock_path)?;
        rustix::fs::fcntl_lock(&fd, rustix::fs::FlockOperation::LockExclusive)
            .map_err(io("lock", lock_path))?;
        Ok(Self { _fd: fd })
    }

    /// Takes the lock if it is free; `None` when someone holds it.
    pub fn try_acquire(lock_path: &Path) -> Result<Option<Self>, FsError> {
        let fd = Self::open(lock_path)?;
        match rustix::fs::fcntl_lock(&fd, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => Ok(Some(Self { _fd: fd })),
            Err(Errno::AGAIN | Errno::ACCESS) => Ok(None),
            Err(e) => Err(io("lock", lock_path)(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, PermissionsExt};

    fn mode_of(path: &Path) -> u32 {
        std::fs::symlink_metadata(path)
            .unwrap()
            .permissions()
            .mode()
            & 0o7777
    }

    #[test]
    fn copy_tree_is_faithful_and_compare_trees_sees_every_difference() {
        let dir = tempfile::tempdir().unwrap();
        let from = dir.path().join("from");
        std::fs::create_dir_all(from.join("node_modules/a")).unwrap();
        std::fs::write(from.join("flows_cred.json"), "secret").unwrap();
        std::fs::write(from.join("node_modules/a/index.js"), "x").unwrap();
        symlink("node_modules/a/index.js", from.join("link")).unwrap();
        let to = dir.path().join("to");
        let (uid, gid) = own_ids();
        let stats = copy_tree(&from, &to, uid, gid).unwrap();
        assert_eq!((stats.files, stats.links, stats.bytes), (2, 1, 7));
        assert_eq!(compare_trees(&from, &to).unwrap(), Vec::<PathBuf>::new());

        std::fs::write(to.join("flows_cred.json"), "changed").unwrap();
        std::fs::remove_file(to.join("link")).unwrap();
        symlink("elsewhere", to.join("link")).unwrap();
        std::fs::write(to.join("extra"), "").unwrap();
        let mut differences = compare_trees(&from, &to).unwrap();
        differences.sort();
        assert_eq!(
            differences,
            [
                PathBuf::from("extra"),
                "flows_cred.json".into(),
                "link".into()
            ]
        );
    }

    fn ns(time: std::time::SystemTime) -> i128 {
        time.duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as i128
    }

    fn age(path: &Path, time: std::time::SystemTime) {
        std::fs::File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(time)
            .unwrap();
    }

    #[test]
    fn carry_over_brings_later_changes_and_keeps_what_the_copy_changed() {
        let dir = tempfile::tempdir().unwrap();
        let from = dir.path().join("from");
        std::fs::create_dir_all(from.join("context")).unwrap();
        for name in ["flows.json", "both.json", "context/global.json"] {
            std::fs::write(from.join(name), "copied").unwrap();
        }
        let to = dir.path().join("to");
        let (uid, gid) = own_ids();
        copy_tree(&from, &to, uid, gid).unwrap();
        let now = std::time::SystemTime::now();
        let long_ago = now - std::time::Duration::from_secs(100);
        for top in [&from, &to] {
            for name in ["flows.json", "both.json", "context/global.json"] {
                age(&top.join(name), long_ago);
            }
        }
        let copied = ns(now - std::time::Duration::from_secs(60));
        let switched = ns(now - std::time::Duration::from_secs(50));

        std::fs::write(from.join("flows.json"), "deployed later").unwrap();
        std::fs::write(from.join("both.json"), "old side").unwrap();
        std::fs::write(to.join("both.json"), "new side").unwrap();
        std::fs::create_dir_all(from.join("node_modules/x")).unwrap();
        std::fs::write(from.join("node_modules/x/index.js"), "installed").unwrap();
        symlink("flows.json", from.join("link")).unwrap();

        let done = carry_over(&from, &to, copied, switched).unwrap();
        assert_eq!((done.files, done.bytes), (2, 23));
        assert_eq!(done.kept, [PathBuf::from("both.json")]);
        assert_eq!(done.links, 1);
        assert_eq!(
            std::fs::read_link(to.join("link")).unwrap(),
            Path::new("flows.json")
        );
        let read = |rel: &str| std::fs::read_to_string(to.join(rel)).unwrap();
        assert_eq!(read("flows.json"), "deployed later");
        assert_eq!(read("both.json"), "new side");
        assert_eq!(read("context/global.json"), "copied");
        assert_eq!(read("node_modules/x/index.js"), "installed");
        assert_eq!(mode_of(&to.join("node_modules")), 0o700);

        let again = carry_over(&from, &to, copied, switched).unwrap();
        assert_eq!(again.files, 0, "a second run writes nothing");
    }

    #[test]
    fn carry_over_never_writes_through_a_link_in_the_copy() {
        let dir = tempfile::tempdir().unwrap();
        let (from, to, victim) = (
            dir.path().join("from"),
            dir.path().join("to"),
            dir.path().join("victim"),
        );
        std::fs::create_dir_all(from.join("lib")).unwrap();
        std::fs::create_dir_all(&to).unwrap();
        std::fs::create_dir_all(&victim).unwrap();
        std::fs::write(from.join("lib/settings.js"), "x").unwrap();
        symlink(&victim, to.join("lib")).unwrap();
        let err = carry_over(&from, &to, 0, i128::MAX).unwrap_err();
        assert!(matches!(err, FsError::Symlink { .. }), "{err}");
        assert_eq!(std::fs::read_dir(&victim).unwrap().count(), 0);
        let err = carry_over(&from, &to.join("lib"), 0, i128::MAX).unwrap_err();
        assert!(matches!(err, FsError::Symlink { .. }), "{err}");
    }

    #[test]
    fn write_file_is_idempotent_and_exact() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("passwd");
        let (uid, gid) = own_ids();
        assert_eq!(
            write_file(&path, b"a\n", 0o640, uid, gid).unwrap(),
            Written::Changed
        );
        assert_eq!(mode_of(&path), 0o640);
        assert_eq!(
            write_file(&path, b"a\n", 0o640, uid, gid).unwrap(),
            Written::Unchanged
        );
        assert_eq!(
            write_file(&path, b"a\n", 0o600, uid, gid).unwrap(),
            Written::Changed
        );
        assert_eq!(mode_of(&path), 0o600);
        let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "temp files left behind");
    }

    #[test]
    fn write_file_refuses_symlink_target_and_open_folders() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "keep").unwrap();
        let link = dir.path().join("link");
        symlink(&victim, &link).unwrap();
        let (uid, gid) = own_ids();
        let err = write_file(&link, b"x", 0o600, uid, gid).unwrap_err();
        assert!(matches!(err, FsError::Symlink { .. }), "{err}");
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");

        let open = dir.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        let err = write_file(&open.join("f"), b"x", 0o600, uid, gid).unwrap_err();
        assert!(matches!(err, FsError::UnsafeParent { .. }), "{err}");
    }

    #[test]
    fn walk_does_not_follow_links_and_fix_refuses_swapped_entries() {
        let dir = tempfile::tempdir().unwrap();
        let top = dir.path().join("top");
        let outside = dir.path().join("outside");
        std::fs::create_dir_all(top.join("a/b")).unwrap();
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("secret"), "s").unwrap();
        std::fs::write(top.join("a/b/f"), "x").unwrap();
        symlink(&outside, top.join("a/escape")).unwrap();

        let mut seen = Vec::new();
        let unreadable = walk(&top, |e| seen.push((e.rel.clone(), e.meta.kind))).unwrap();
        assert!(unreadable.is_empty(), "{unreadable:?}");
        seen.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            seen,
            vec![
                (PathBuf::from("a"), Kind::Dir),
                (PathBuf::from("a/b"), Kind::Dir),
                (PathBuf::from("a/b/f"), Kind::File),
                (PathBuf::from("a/escape"), Kind::Symlink),
            ]
        );

        // An entry observed as a file, then swapped for a link, is not changed.
        let observed = lstat(&top.join("a/b/f")).unwrap().unwrap();
        std::fs::remove_file(top.join("a/b/f")).unwrap();
        symlink(outside.join("secret"), top.join("a/b/f")).unwrap();
        let err = fix_entry(&top, Path::new("a/b/f"), observed.ino, None, Some(0o777)).unwrap_err();
        assert!(matches!(err, FsError::Symlink { .. }), "{err}");
        // A parent folder swapped for a link is refused too.
        let err = fix_entry(&top, Path::new("a/escape/secret"), 1, None, Some(0o777)).unwrap_err();
        assert!(matches!(err, FsError::Symlink { .. }), "{err}");
        assert_ne!(mode_of(&outside.join("secret")), 0o777);
    }
}
