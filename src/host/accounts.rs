//! The account database as files: /etc/passwd, group, shadow, gshadow and login.defs, parsed and
//! rendered without NSS, so an image's accounts are read and written without ever touching the
//! host's. Lines redwarden does not change are written back byte for byte.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
#[error("{path}:{line}: {what}")]
pub struct ParseError {
    pub path: PathBuf,
    pub line: usize,
    pub what: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswdEntry {
    pub name: String,
    pub password: String,
    pub uid: u32,
    pub gid: u32,
    pub gecos: String,
    pub home: String,
    pub shell: String,
}

impl PasswdEntry {
    fn render(&self) -> String {
        format!(
            "{}:{}:{}:{}:{}:{}:{}",
            self.name, self.password, self.uid, self.gid, self.gecos, self.home, self.shell
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupEntry {
    pub name: String,
    pub password: String,
    pub gid: u32,
    pub members: Vec<String>,
}

impl GroupEntry {
    fn render(&self) -> String {
        format!(
            "{}:{}:{}:{}",
            self.name,
            self.password,
            self.gid,
            self.members.join(",")
        )
    }
}

/// A file of colon-separated records. Unparsed lines (comments, NIS `+` entries, blanks) keep
/// their place so a rewrite changes only the records it means to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table<T> {
    lines: Vec<Line<T>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Line<T> {
    Record(T),
    Verbatim(String),
}

impl<T> Default for Table<T> {
    fn default() -> Self {
        Self { lines: Vec::new() }
    }
}

impl<T> Table<T> {
    pub fn records(&self) -> impl Iterator<Item = &T> {
        self.lines.iter().filter_map(|l| match l {
            Line::Record(r) => Some(r),
            Line::Verbatim(_) => None,
        })
    }

    pub fn records_mut(&mut self) -> impl Iterator<Item = &mut T> {
        self.lines.iter_mut().filter_map(|l| match l {
            Line::Record(r) => Some(r),
            Line::Verbatim(_) => None,
        })
    }

    pub fn push(&mut self, record: T) {
        self.lines.push(Line::Record(record));
    }

    fn parse_with(
        text: &str,
        path: &std::path::Path,
        parse: impl Fn(&[&str]) -> Result<T, String>,
    ) -> Result<Self, ParseError> {
        let mut lines = Vec::new();
        for (index, raw) in text.lines().enumerate() {
            let trimmed = raw.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(['+', '-']) {
                lines.push(Line::Verbatim(raw.to_string()));
                continue;
            }
            let fields: Vec<&str> = raw.split(':').collect();
            let record = parse(&fields).map_err(|what| ParseError {
                path: path.to_path_buf(),
                line: index + 1,
                what,
            })?;
            lines.push(Line::Record(record));
        }
        Ok(Self { lines })
    }

    fn render_with(&self, render: impl Fn(&T) -> String) -> String {
        let mut out = String::new();
        for line in &self.lines {
            match line {
                Line::Record(r) => out.push_str(&render(r)),
                Line::Verbatim(v) => out.push_str(v),
            }
            out.push('\n');
        }
        out
    }
}

fn parse_id(field: &str, what: &str) -> Result<u32, String> {
    field
        .parse()
        .map_err(|_| format!("{what} `{field}` is not a number"))
}

impl Table<PasswdEntry> {
    pub fn parse(text: &str, path: &std::path::Path) -> Result<Self, ParseError> {
        Self::parse_with(text, path, |f| {
            if f.len() != 7 {
                return Err(format!("expected 7 fields, found {}", f.len()));
            }
            Ok(PasswdEntry {
                name: f[0].to_string(),
                password: f[1].to_string(),
                uid: parse_id(f[2], "uid")?,
                gid: parse_id(f[3], "gid")?,
                gecos: f[4].to_string(),
                home: f[5].to_string(),
                shell: f[6].to_string(),
            })
        })
    }

    pub fn render(&self) -> String {
        self.render_with(PasswdEntry::render)
    }

    pub fn by_name(&self, name: &str) -> Option<&PasswdEntry> {
        self.records().find(|e| e.name == name)
    }

    pub fn by_uid(&self, uid: u32) -> Option<&PasswdEntry> {
        self.records().find(|e| e.uid == uid)
    }
}

impl Table<GroupEntry> {
    pub fn parse(text: &str, path: &std::path::Path) -> Result<Self, ParseError> {
        Self::parse_with(text, path, |f| {
            if f.len() != 4 {
                return Err(format!("expected 4 fields, found {}", f.len()));
            }
            Ok(GroupEntry {
                name: f[0].to_string(),
                password: f[1].to_string(),
                gid: parse_id(f[2], "gid")?,
                members: split_members(f[3]),
            })
        })
    }

    pub fn render(&self) -> String {
        self.render_with(GroupEntry::render)
    }

    pub fn by_name(&self, name: &str) -> Option<&GroupEntry> {
        self.records().find(|e| e.name == name)
    }

    pub fn by_gid(&self, gid: u32) -> Option<&GroupEntry> {
        self.records().find(|e| e.gid == gid)
    }

    /// Names of the groups listing `user` as a member (supplementary groups).
    pub fn memberships(&self, user: &str) -> Vec<String> {
        self.records()
            .filter(|g| g.members.iter().any(|m| m == user))
            .map(|g| g.name.clone())
            .collect()
    }
}

fn split_members(field: &str) -> Vec<String> {
    field
        .split(',')
        .filter(|m| !m.is_empty())
        .map(str::to_string)
        .collect()
}

/// A record of /etc/shadow or /etc/gshadow: the name, the password field, and the remaining
/// fields kept as they are (ageing for shadow; admins and members for gshadow).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShadowEntry {
    pub name: String,
    pub password: String,
    pub rest: Vec<String>,
}

impl ShadowEntry {
    /// A password field that no password can match: `!` or `*` prefixed, or empty-but-locked.
    pub fn is_locked(&self) -> bool {
        self.password.starts_with('!') || self.password.starts_with('*')
    }

    fn render(&self) -> String {
        let mut fields = vec![self.name.clone(), self.password.clone()];
        fields.extend(self.rest.iter().cloned());
        fields.join(":")
    }

    pub fn members(&self) -> Vec<String> {
        // gshadow: name:password:admins:members
        self.rest
            .get(1)
            .map(|m| split_members(m))
            .unwrap_or_default()
    }

    pub fn set_members(&mut self, members: &[String]) {
        while self.rest.len() < 2 {
            self.rest.push(String::new());
        }
        self.rest[1] = members.join(",");
    }
}

impl Table<ShadowEntry> {
    pub fn parse(text: &str, path: &std::path::Path) -> Result<Self, ParseError> {
        Self::parse_with(text, path, |f| {
            if f.len() < 2 {
                return Err("expected at least a name and a password field".into());
            }
            Ok(ShadowEntry {
                name: f[0].to_string(),
                password: f[1].to_string(),
                rest: f[2..].iter().map(|s| s.to_string()).collect(),
            })
        })
    }

    pub fn render(&self) -> String {
        self.render_with(ShadowEntry::render)
    }

    pub fn by_name(&self, name: &str) -> Option<&ShadowEntry> {
        self.records().find(|e| e.name == name)
    }
}

/// The id ranges from /etc/login.defs that tell system accounts from login accounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdRanges {
    pub sys_uid: (u32, u32),
    pub sys_gid: (u32, u32),
    pub uid_min: u32,
}

impl Default for IdRanges {
    /// shadow-utils' compiled-in defaults, used when login.defs is absent (busybox, Yocto).
    fn default() -> Self {
        Self {
            sys_uid: (101, 999),
            sys_gid: (101, 999),
            uid_min: 1000,
        }
    }
}

impl IdRanges {
    pub fn parse_login_defs(text: &str) -> Self {
        let mut ranges = Self::default();
        for line in text.lines() {
            let mut words = line.split_whitespace();
            let (Some(key), Some(value)) = (words.next(), words.next()) else {
                continue;
            };
            let Ok(value) = value.parse::<u32>() else {
                continue;
            };
            match key {
                "SYS_UID_MIN" => ranges.sys_uid.0 = value,
                "SYS_UID_MAX" => ranges.sys_uid.1 = value,
                "SYS_GID_MIN" => ranges.sys_gid.0 = value,
                "SYS_GID_MAX" => ranges.sys_gid.1 = value,
                "UID_MIN" => ranges.uid_min = value,
                _ => {}
            }
        }
        ranges
    }

    pub fn is_system_uid(&self, uid: u32) -> bool {
        uid >= self.sys_uid.0 && uid <= self.sys_uid.1
    }

    pub fn is_system_gid(&self, gid: u32) -> bool {
        gid >= self.sys_gid.0 && gid <= self.sys_gid.1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn passwd_round_trips_and_keeps_comments() {
        let text = "root:x:0:0:root:/root:/bin/bash\n# a comment\n+@netgroup\npi:x:1000:1000:,,,:/home/pi:/bin/bash\n";
        let table = Table::<PasswdEntry>::parse(text, Path::new("/etc/passwd")).unwrap();
        assert_eq!(table.render(), text);
        assert_eq!(table.by_name("pi").unwrap().uid, 1000);
    }

    #[test]
    fn bad_line_names_file_and_line() {
        let err = Table::<PasswdEntry>::parse(
            "root:x:0:0:root:/root:/bin/bash\npi:x:abc:1000::/home/pi:/bin/bash\n",
            Path::new("/img/etc/passwd"),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "/img/etc/passwd:2: uid `abc` is not a number"
        );
    }

    #[test]
    fn group_memberships() {
        let text = "sudo:x:27:pi,nodered\ngpio:x:997:pi\nnodered:x:990:\n";
        let table = Table::<GroupEntry>::parse(text, Path::new("/etc/group")).unwrap();
        assert_eq!(table.memberships("nodered"), vec!["sudo"]);
        assert_eq!(table.memberships("pi"), vec!["sudo", "gpio"]);
        assert_eq!(table.render(), text);
    }

    #[test]
    fn shadow_lock_states() {
        let text = "a:!:1::::::\nb:*:1::::::\nc:$y$j9T$abc:1::::::\nd::1::::::\n";
        let table = Table::<ShadowEntry>::parse(text, Path::new("/etc/shadow")).unwrap();
        let locked: Vec<bool> = table.records().map(ShadowEntry::is_locked).collect();
        assert_eq!(locked, vec![true, true, false, false]);
        assert_eq!(table.render(), text);
    }

    #[test]
    fn login_defs_ranges() {
        let ranges = IdRanges::parse_login_defs(
            "# x\nSYS_UID_MIN 100\nSYS_UID_MAX  499\nUID_MIN 500\nFOO bar\n",
        );
        assert_eq!(ranges.sys_uid, (100, 499));
        assert_eq!(ranges.uid_min, 500);
        assert!(ranges.is_system_uid(499) && !ranges.is_system_uid(500));
    }
}

/// The account database of one root, loaded from its files and written back through the
/// hardened writer under the shadow-utils lock.
#[derive(Debug, Clone)]
pub struct AccountDb {
    pub passwd: Table<PasswdEntry>,
    pub group: Table<GroupEntry>,
    /// None when the image has no such file (busybox without shadow) or it cannot be read.
    pub shadow: Option<Table<ShadowEntry>>,
    pub gshadow: Option<Table<ShadowEntry>>,
    pub ranges: IdRanges,
    /// Why shadow could not be read, when it exists but is unreadable (unprivileged check).
    pub shadow_unreadable: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum AccountsError {
    #[error(transparent)]
    Parse(#[from] ParseError),
    #[error(transparent)]
    Fs(#[from] super::fs::FsError),
    #[error(transparent)]
    Root(#[from] super::root::RootError),
    #[error("{path}: not valid UTF-8")]
    Encoding { path: PathBuf },
    #[error("{path}: missing; the root has no account database")]
    Missing { path: PathBuf },
}

fn read_text(root: &super::Root, path: &str) -> Result<Option<(PathBuf, String)>, AccountsError> {
    let host = root.resolve(std::path::Path::new(path))?;
    match super::fs::read_nofollow(&host)? {
        None => Ok(None),
        Some(bytes) => {
            let text = String::from_utf8(bytes)
                .map_err(|_| AccountsError::Encoding { path: host.clone() })?;
            Ok(Some((host, text)))
        }
    }
}

impl AccountDb {
    pub fn load(root: &super::Root) -> Result<Self, AccountsError> {
        use super::paths;
        let (passwd_path, passwd) =
            read_text(root, paths::PASSWD)?.ok_or_else(|| AccountsError::Missing {
                path: root
                    .join(std::path::Path::new(paths::PASSWD))
                    .unwrap_or_default(),
            })?;
        let (group_path, group) =
            read_text(root, paths::GROUP)?.ok_or_else(|| AccountsError::Missing {
                path: root
                    .join(std::path::Path::new(paths::GROUP))
                    .unwrap_or_default(),
            })?;
        // Unprivileged runs cannot read shadow files: that is a gap to report, not a failure.
        let optional =
            |path: &str| -> Result<Result<Option<Table<ShadowEntry>>, String>, AccountsError> {
                match read_text(root, path) {
                    Ok(Some((host, text))) => {
                        Ok(Ok(Some(Table::<ShadowEntry>::parse(&text, &host)?)))
                    }
                    Ok(None) => Ok(Ok(None)),
                    Err(AccountsError::Fs(e)) if e.is_permission_denied() => {
                        Ok(Err("permission denied (run as root to inspect)".to_string()))
                    }
                    Err(e) => Err(e),
                }
            };
        let (shadow, shadow_unreadable) = match optional(paths::SHADOW)? {
            Ok(table) => (table, None),
            Err(reason) => (None, Some(reason)),
        };
        let gshadow = optional(paths::GSHADOW)?.unwrap_or(None);
        let ranges = read_text(root, paths::LOGIN_DEFS)?
            .map(|(_, text)| IdRanges::parse_login_defs(&text))
            .unwrap_or_default();
        Ok(Self {
            passwd: Table::<PasswdEntry>::parse(&passwd, &passwd_path)?,
            group: Table::<GroupEntry>::parse(&group, &group_path)?,
            shadow,
            gshadow,
            ranges,
            shadow_unreadable,
        })
    }

    /// Writes back the files whose rendering differs from what is on disk, keeping each file's
    /// owner and mode. Holds the lock for the whole write.
    pub fn save(&self, root: &super::Root) -> Result<Vec<PathBuf>, AccountsError> {
        use super::paths;
        let _lock =
            super::fs::FileLock::acquire(&root.resolve(std::path::Path::new(paths::PWD_LOCK))?)?;
        let mut files = vec![
            (paths::GROUP, Some(self.group.render())),
            (
                paths::GSHADOW,
                self.gshadow.as_ref().map(Table::<ShadowEntry>::render),
            ),
            (paths::PASSWD, Some(self.passwd.render())),
            (
                paths::SHADOW,
                self.shadow.as_ref().map(Table::<ShadowEntry>::render),
            ),
        ];
        let mut written = Vec::new();
        for (path, text) in files.drain(..) {
            let Some(text) = text else { continue };
            let host = root.resolve(std::path::Path::new(path))?;
            let meta = super::fs::lstat(&host)?
                .ok_or_else(|| AccountsError::Missing { path: host.clone() })?;
            if super::fs::write_file(&host, text.as_bytes(), meta.mode, meta.uid, meta.gid)?
                == super::fs::Written::Changed
            {
                written.push(PathBuf::from(path));
            }
        }
        Ok(written)
    }

    pub fn user(&self, name: &str) -> Option<&PasswdEntry> {
        self.passwd.by_name(name)
    }

    /// A user's password state: from shadow when passwd defers to it (`x`), else passwd itself.
    /// None when it cannot be told (shadow unreadable).
    pub fn password_locked(&self, name: &str) -> Option<bool> {
        let entry = self.user(name)?;
        if entry.password != "x" {
            return Some(entry.password.starts_with('!') || entry.password.starts_with('*'));
        }
        let shadow = self.shadow.as_ref()?;
        // A user without a shadow line has no usable password.
        Some(shadow.by_name(name).is_none_or(ShadowEntry::is_locked))
    }

    /// The highest free id in the system range (as useradd -r picks), the same for user and group
    /// when `prefer` is free, so uid and gid match.
    pub fn free_system_id(&self, prefer: Option<u32>, range: (u32, u32)) -> Option<u32> {
        let taken = |id: u32| self.passwd.by_uid(id).is_some() || self.group.by_gid(id).is_some();
        if let Some(id) = prefer.filter(|&id| !taken(id) && id >= range.0 && id <= range.1) {
            return Some(id);
        }
        (range.0..=range.1).rev().find(|&id| !taken(id))
    }
}
