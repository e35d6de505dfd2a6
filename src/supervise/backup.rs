//! Flows are never lost: before each start, the flows, their credentials and the runtime
//! config (which holds the generated credential key) are copied into a rotating folder; an
//! empty or unparsable file (a power cut on an SD card mid-write) is restored from the newest
//! good copy first.

use std::path::{Path, PathBuf};

use crate::host::fs::{self, FsError};

/// Where the copies live, inside the userDir so they travel with it (adoption, images).
pub const BACKUP_DIR: &str = ".redwarden/backups";

/// The files worth a copy: Node-RED's flows file, `<stem>_cred.json` beside it, and
/// `.config.runtime.json`.
pub fn protected_files(flow_file: &str) -> Vec<String> {
    let stem = flow_file.strip_suffix(".json").unwrap_or(flow_file);
    vec![
        flow_file.to_string(),
        format!("{stem}_cred.json"),
        ".config.runtime.json".to_string(),
    ]
}

/// The flows file settings.js names (`flowFile: 'x.json'` on a line of its own), or Node-RED's
/// default. The settings audit parses settings.js properly; this only needs the name.
pub fn flow_file_from_settings(settings: &str) -> String {
    settings
        .lines()
        .map(str::trim)
        .filter(|line| !line.starts_with("//"))
        .find_map(|line| {
            let rest = line
                .strip_prefix("flowFile")?
                .trim_start()
                .strip_prefix(':')?;
            let rest = rest.trim_start();
            let quote = rest.chars().next().filter(|c| *c == '\'' || *c == '"')?;
            let name = rest[1..].split(quote).next()?;
            (!name.is_empty() && !name.contains('/')).then(|| name.to_string())
        })
        .unwrap_or_else(|| "flows.json".to_string())
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Missing,
    Good(Vec<u8>),
    /// Empty or not JSON.
    Damaged,
}

fn state(path: &Path) -> Result<State, FsError> {
    Ok(match fs::read_nofollow(path)? {
        None => State::Missing,
        Some(bytes) if serde_json::from_slice::<serde_json::Value>(&bytes).is_ok() => {
            State::Good(bytes)
        }
        Some(_) => State::Damaged,
    })
}

/// What `prepare` did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Prepared {
    /// Damaged files put back, with the backup each came from.
    pub restored: Vec<(String, PathBuf)>,
    /// Damaged files no backup could repair.
    pub unrepaired: Vec<String>,
    /// The copy made now; None when the newest copy already held the same files.
    pub backup: Option<PathBuf>,
}

/// Repairs damaged files from the newest good copies, then copies the good files into a new
/// backup (unless the newest is identical) and keeps the `keep` newest. Files are 0600, owned
/// by the caller (the service user), fsynced before their folder is renamed into place.
pub fn prepare(user_dir: &Path, files: &[String], keep: u32) -> Result<Prepared, FsError> {
    let mut prepared = Prepared::default();
    let copies = newest_first(user_dir)?;
    let (uid, gid) = fs::own_ids();
    let mut current = Vec::new();
    for name in files {
        let path = user_dir.join(name);
        let mut found = state(&path)?;
        if found == State::Damaged {
            let good = copies
                .iter()
                .find_map(|copy| match state(&copy.join(name)) {
                    Ok(State::Good(bytes)) => Some((copy.clone(), bytes)),
                    _ => None,
                });
            match good {
                Some((copy, bytes)) => {
                    fs::write_file(&path, &bytes, 0o600, uid, gid)?;
                    prepared.restored.push((name.clone(), copy));
                    found = State::Good(bytes);
                }
                None => prepared.unrepaired.push(name.clone()),
            }
        }
        if let State::Good(bytes) = found {
            current.push((name.clone(), bytes));
        }
    }
    prepared.backup = copy_if_changed(user_dir, copies, &current, keep)?;
    Ok(prepared)
}

/// Copies the good files while Node-RED runs (after a deploy), repairing nothing: a damaged
/// file is skipped, never copied over a good backup.
pub fn snapshot(user_dir: &Path, files: &[String], keep: u32) -> Result<Option<PathBuf>, FsError> {
    let mut current = Vec::new();
    for name in files {
        if let State::Good(bytes) = state(&user_dir.join(name))? {
            current.push((name.clone(), bytes));
        }
    }
    copy_if_changed(user_dir, newest_first(user_dir)?, &current, keep)
}

/// A new copy of `current` unless the newest (first of `copies`) holds the same; then prunes
/// to the `keep` newest.
fn copy_if_changed(
    user_dir: &Path,
    mut copies: Vec<PathBuf>,
    current: &[(String, Vec<u8>)],
    keep: u32,
) -> Result<Option<PathBuf>, FsError> {
    let backups_dir = user_dir.join(BACKUP_DIR);
    let (uid, gid) = fs::own_ids();
    if keep == 0 || current.is_empty() {
        return Ok(None);
    }
    let newest_matches = copies.first().is_some_and(|newest| {
        list_names(newest).is_ok_and(|names| names.len() == current.len())
            && current.iter().all(|(name, bytes)| {
                fs::read_nofollow(&newest.join(name)).is_ok_and(|b| b.as_ref() == Some(bytes))
            })
    });
    let mut made = None;
    if !newest_matches {
        made = Some(write_copy(user_dir, &backups_dir, current, uid, gid)?);
        copies.insert(0, PathBuf::new());
    }
    for old in copies.iter().skip(keep as usize) {
        std::fs::remove_dir_all(old).map_err(fs::std_io("remove old backup", old))?;
    }
    Ok(made)
}

/// The backup folders, newest first (their names are zero-padded UNIX times).
fn newest_first(user_dir: &Path) -> Result<Vec<PathBuf>, FsError> {
    let backups_dir = &user_dir.join(BACKUP_DIR);
    let mut names = match list_names(backups_dir) {
        Ok(names) => names,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(fs::std_io("list backups", backups_dir)(e)),
    };
    names.retain(|n| n.bytes().next().is_some_and(|b| b.is_ascii_digit()));
    names.sort_by(|a, b| b.cmp(a));
    Ok(names.into_iter().map(|n| backups_dir.join(n)).collect())
}

fn list_names(dir: &Path) -> std::io::Result<Vec<String>> {
    std::fs::read_dir(dir)?
        .map(|entry| entry.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect()
}

fn write_copy(
    user_dir: &Path,
    backups_dir: &Path,
    files: &[(String, Vec<u8>)],
    uid: u32,
    gid: u32,
) -> Result<PathBuf, FsError> {
    fs::create_dir(&user_dir.join(".redwarden"), 0o700, uid, gid)?;
    fs::create_dir(backups_dir, 0o700, uid, gid)?;
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (mut name, mut n) = (format!("{seconds:012}"), 0);
    while backups_dir.join(&name).exists() {
        n += 1;
        name = format!("{seconds:012}-{n}");
    }
    // Filled under a name `list` skips, then renamed: a crash never leaves a partial copy
    // that looks like the newest.
    let partial = backups_dir.join(format!(".partial-{name}"));
    if partial.exists() {
        let _ = std::fs::remove_dir_all(&partial);
    }
    fs::create_dir(&partial, 0o700, uid, gid)?;
    for (file, bytes) in files {
        fs::write_file(&partial.join(file), bytes, 0o600, uid, gid)?;
    }
    let done = backups_dir.join(&name);
    std::fs::rename(&partial, &done).map_err(fs::std_io("rename backup", &done))?;
    std::fs::File::open(backups_dir)
        .and_then(|f| f.sync_all())
        .map_err(fs::std_io("fsync", backups_dir))?;
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn files() -> Vec<String> {
        protected_files("flows.json")
    }

    fn write(dir: &Path, name: &str, text: &str) {
        std::fs::write(dir.join(name), text).unwrap();
    }

    #[test]
    fn names_come_from_settings_or_the_default() {
        assert_eq!(
            flow_file_from_settings("module.exports = {\n  flowFile: 'plant.json',\n}"),
            "plant.json"
        );
        assert_eq!(
            flow_file_from_settings("  //flowFile: 'x.json',\n"),
            "flows.json"
        );
        assert_eq!(
            flow_file_from_settings("flowFile: \"a/../b.json\""),
            "flows.json"
        );
        assert_eq!(
            protected_files("plant.json"),
            ["plant.json", "plant_cred.json", ".config.runtime.json"]
        );
    }

    #[test]
    fn copies_rotate_and_identical_starts_add_none() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "flows.json", "[]");
        write(dir.path(), "flows_cred.json", "{\"$\":\"abc\"}");
        let first = prepare(dir.path(), &files(), 3).unwrap();
        let copy = first.backup.expect("a first copy");
        let mode = std::fs::metadata(copy.join("flows.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        // A crash loop restarts with the same files: the history is not flushed by copies of them.
        assert_eq!(prepare(dir.path(), &files(), 3).unwrap().backup, None);
        for i in 0..5 {
            write(dir.path(), "flows.json", &format!("[{i}]"));
            assert!(prepare(dir.path(), &files(), 3).unwrap().backup.is_some());
        }
        assert_eq!(newest_first(dir.path()).unwrap().len(), 3);
    }

    #[test]
    fn a_truncated_flows_file_comes_back_from_the_newest_good_copy() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "flows.json", "[{\"id\":\"one\"}]");
        prepare(dir.path(), &files(), 5).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(10));
        write(dir.path(), "flows.json", "[{\"id\":\"two\"}]");
        prepare(dir.path(), &files(), 5).unwrap();
        for damage in ["", "[{\"id\":\"tw"] {
            write(dir.path(), "flows.json", damage);
            let prepared = prepare(dir.path(), &files(), 5).unwrap();
            assert_eq!(prepared.restored.len(), 1, "{prepared:?}");
            assert_eq!(prepared.restored[0].0, "flows.json");
            assert_eq!(
                std::fs::read_to_string(dir.path().join("flows.json")).unwrap(),
                "[{\"id\":\"two\"}]"
            );
            assert_eq!(
                prepared.backup, None,
                "the restored files equal the newest copy"
            );
        }
    }

    #[test]
    fn a_snapshot_while_running_copies_a_deploy_and_never_a_damaged_file() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "flows.json", "[1]");
        prepare(dir.path(), &files(), 5).unwrap();
        write(dir.path(), "flows.json", "[1,2]");
        let copy = snapshot(dir.path(), &files(), 5)
            .unwrap()
            .expect("the deploy is copied");
        assert_eq!(
            std::fs::read_to_string(copy.join("flows.json")).unwrap(),
            "[1,2]"
        );
        assert_eq!(
            snapshot(dir.path(), &files(), 5).unwrap(),
            None,
            "nothing new"
        );
        write(dir.path(), "flows.json", "[1,");
        assert_eq!(
            snapshot(dir.path(), &files(), 5).unwrap(),
            None,
            "damage is not copied"
        );
        let prepared = prepare(dir.path(), &files(), 5).unwrap();
        assert_eq!(prepared.restored.len(), 1);
        assert_eq!(
            std::fs::read_to_string(dir.path().join("flows.json")).unwrap(),
            "[1,2]"
        );
    }

    #[test]
    fn damage_without_a_good_copy_is_reported_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "flows.json", "");
        let prepared = prepare(dir.path(), &files(), 5).unwrap();
        assert_eq!(prepared.unrepaired, ["flows.json"]);
        assert_eq!(prepared.backup, None);
        assert_eq!(std::fs::read(dir.path().join("flows.json")).unwrap(), b"");
    }

    #[test]
    fn a_symlinked_flows_file_is_refused_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "secret", "[1]");
        std::os::unix::fs::symlink(dir.path().join("secret"), dir.path().join("flows.json"))
            .unwrap();
        let err = prepare(dir.path(), &files(), 5).unwrap_err();
        assert!(err.to_string().contains("flows.json"), "{err}");
        assert!(!dir.path().join(BACKUP_DIR).exists());
    }
}
