//! The files of XEP-0363 uploads, in one directory: `<slot>` holds the
//! bytes, `<slot>.meta` what the slot granted (owner, name, type, size,
//! when), `<slot>.part` a file still arriving. A file appears under its
//! final name only once complete and synced: a reader never sees half a
//! file, and a crash leaves only a `.part` the purge removes.
//!
//! The purge deletes files older than the retention and abandoned
//! `.part`s; deleting an account deletes its files (`delete_owner`,
//! called by the storage layer's deletion hook).

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use xmpp_core::modules::upload::Slot;
use xmpp_core::time::Millis;

/// A `.part` older than this is abandoned.
const PART_MAX_AGE_MS: Millis = 3600 * 1000;

/// What is known of a stored file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    pub owner: String,
    pub filename: String,
    pub content_type: Option<String>,
    pub size: u64,
    /// When it was stored, ms since the epoch.
    pub created: Millis,
}

impl Meta {
    fn to_text(&self) -> String {
        format!(
            "v1\n{}\n{}\n{}\n{}\n{}\n",
            self.owner,
            self.filename,
            self.content_type.as_deref().unwrap_or(""),
            self.size,
            self.created
        )
    }

    fn parse(text: &str) -> Option<Meta> {
        let mut lines = text.lines();
        if lines.next()? != "v1" {
            return None;
        }
        let owner = lines.next()?.to_owned();
        let filename = lines.next()?.to_owned();
        let content_type = Some(lines.next()?)
            .filter(|t| !t.is_empty())
            .map(str::to_owned);
        let size = lines.next()?.parse().ok()?;
        let created = lines.next()?.parse().ok()?;
        Some(Meta {
            owner,
            filename,
            content_type,
            size,
            created,
        })
    }
}

/// Why a `PUT` is refused.
#[derive(Debug, thiserror::Error)]
pub enum PutError {
    /// The slot was used already.
    #[error("this slot holds a file already")]
    Exists,
    #[error("upload storage: {0}")]
    Io(#[from] io::Error),
}

/// The upload directory.
#[derive(Debug)]
pub struct UploadStore {
    dir: PathBuf,
    /// Files are kept this long, ms.
    retention_ms: Millis,
}

/// A file being written.
pub struct PutFile {
    part: PathBuf,
    file: fs::File,
    written: u64,
    meta: Meta,
    done: PathBuf,
    meta_path: PathBuf,
}

impl UploadStore {
    /// The store in `dir` (created, owner-only).
    pub fn open(dir: &Path, retention_ms: Millis) -> io::Result<UploadStore> {
        fs::create_dir_all(dir)?;
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
        Ok(UploadStore {
            dir: dir.to_owned(),
            retention_ms,
        })
    }

    /// Slot ids are our own hex: anything else never names a file here.
    fn path(&self, id: &str, suffix: &str) -> Option<PathBuf> {
        let ok = !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_hexdigit());
        ok.then(|| self.dir.join(format!("{id}{suffix}")))
    }

    /// Start writing the file `slot` granted.
    pub fn begin(&self, slot: &Slot, now: Millis) -> Result<PutFile, PutError> {
        let (Some(done), Some(part), Some(meta_path)) = (
            self.path(&slot.id, ""),
            self.path(&slot.id, ".part"),
            self.path(&slot.id, ".meta"),
        ) else {
            return Err(PutError::Exists);
        };
        if done.exists() {
            return Err(PutError::Exists);
        }
        // create_new: two PUTs of one slot at once cannot share a file.
        let file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&part)
            .map_err(|e| match e.kind() {
                io::ErrorKind::AlreadyExists => PutError::Exists,
                _ => PutError::Io(e),
            })?;
        Ok(PutFile {
            part,
            file,
            written: 0,
            meta: Meta {
                owner: slot.owner.clone(),
                filename: slot.filename.clone(),
                content_type: slot.content_type.clone(),
                size: slot.size,
                created: now,
            },
            done,
            meta_path,
        })
    }

    /// The file of slot `id`, if stored and still kept at `now`.
    pub fn get(&self, id: &str, now: Millis) -> Option<(Meta, PathBuf)> {
        let path = self.path(id, "")?;
        let meta = Meta::parse(&fs::read_to_string(self.path(id, ".meta")?).ok()?)?;
        if now.saturating_sub(meta.created) > self.retention_ms {
            return None;
        }
        path.exists().then_some((meta, path))
    }

    /// Delete what is past its time: files older than the retention,
    /// `.part`s abandoned for an hour. Returns how many files went.
    pub fn purge(&self, now: Millis) -> usize {
        self.remove_where(|id, meta| match meta {
            Some(m) => now.saturating_sub(m.created) > self.retention_ms,
            None => self.part_age(id, now) > PART_MAX_AGE_MS,
        })
    }

    /// Delete every file of `owner` (its account was deleted).
    pub fn delete_owner(&self, owner: &str) -> usize {
        self.remove_where(|_, meta| meta.is_some_and(|m| m.owner == owner))
    }

    fn part_age(&self, id: &str, now: Millis) -> Millis {
        self.path(id, ".part")
            .and_then(|p| fs::metadata(p).ok())
            .and_then(|m| m.modified().ok())
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| now.saturating_sub(d.as_millis() as Millis))
    }

    /// Remove the slots `doomed` picks (by id and metadata; `None` for a
    /// `.part` without metadata).
    fn remove_where(&self, doomed: impl Fn(&str, Option<&Meta>) -> bool) -> usize {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return 0;
        };
        let mut removed = 0;
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if let Some(id) = name.strip_suffix(".meta") {
                let meta = fs::read_to_string(entry.path())
                    .ok()
                    .and_then(|t| Meta::parse(&t));
                if meta.as_ref().is_some_and(|m| doomed(id, Some(m))) {
                    for suffix in ["", ".meta"] {
                        if let Some(p) = self.path(id, suffix) {
                            let _ = fs::remove_file(p);
                        }
                    }
                    removed += 1;
                }
            } else if let Some(id) = name.strip_suffix(".part") {
                if doomed(id, None) {
                    let _ = fs::remove_file(entry.path());
                }
            }
        }
        removed
    }
}

impl PutFile {
    /// The next bytes.
    pub fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.written += bytes.len() as u64;
        self.file.write_all(bytes)
    }

    /// All bytes came: synced, described, and renamed into place.
    pub fn finish(mut self) -> io::Result<()> {
        if self.written != self.meta.size {
            let _ = fs::remove_file(&self.part);
            return Err(io::Error::other("size differs from the slot's"));
        }
        self.file.flush()?;
        self.file.sync_all()?;
        fs::write(&self.meta_path, self.meta.to_text())?;
        fs::rename(&self.part, &self.done)?;
        Ok(())
    }

    /// The upload broke off: nothing stays.
    pub fn abandon(self) {
        let _ = fs::remove_file(&self.part);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(id: &str, owner: &str) -> Slot {
        Slot {
            id: id.into(),
            filename: "a.txt".into(),
            size: 3,
            content_type: Some("text/plain".into()),
            owner: owner.into(),
            expires: 0,
        }
    }

    #[test]
    fn files_appear_whole_expire_and_go_with_their_owner() {
        let dir = tempfile::tempdir().expect("dir");
        let store = UploadStore::open(dir.path(), 1000).expect("open");
        let mut put = store.begin(&slot("ab", "alice@x"), 0).expect("begin");
        put.write(b"abc").expect("write");
        assert!(
            store.get("ab", 0).is_none(),
            "not visible before it is complete"
        );
        put.finish().expect("finish");
        let (meta, _) = store.get("ab", 10).expect("stored");
        assert_eq!(meta.owner, "alice@x");
        assert!(matches!(
            store.begin(&slot("ab", "alice@x"), 0),
            Err(PutError::Exists)
        ));
        assert!(store.get("ab", 2000).is_none(), "past the retention");
        assert_eq!(store.purge(2000), 1);

        let mut put = store.begin(&slot("cd", "bob@x"), 0).expect("begin");
        put.write(b"xyz").expect("write");
        put.finish().expect("finish");
        assert_eq!(store.delete_owner("alice@x"), 0);
        assert_eq!(store.delete_owner("bob@x"), 1);
        assert!(store.get("cd", 0).is_none());
        assert!(store.get("../etc", 0).is_none(), "ids are hex only");
    }

    #[test]
    fn a_short_upload_leaves_nothing() {
        let dir = tempfile::tempdir().expect("dir");
        let store = UploadStore::open(dir.path(), 1000).expect("open");
        let mut put = store.begin(&slot("ef", "a@x"), 0).expect("begin");
        put.write(b"ab").expect("write");
        assert!(put.finish().is_err());
        assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 0);
    }
}
