//! `state.json`: the detached sites, so a restarted daemon (after a crash, a reboot, a
//! `kill -9`) brings every one of them back on its port.
//!
//! Written atomically: the new list goes to a temp file that is fsynced and renamed over
//! the old one, and the old one is first kept as `state.json.bak` (a hard link, so at no
//! moment is there no `state.json`). A file that does not parse is moved aside with a
//! warning, never silently dropped, and the `.bak` is used instead. A crash can therefore
//! never leave an empty list where a good one was.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

const VERSION: u32 = 1;

/// One detached site, as remembered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersistedSite {
    pub root: PathBuf,
    pub port: u16,
    #[serde(default)]
    pub drafts: bool,
    /// `--host`, when one was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// `--with`, when one was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub with: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct StateFile {
    version: u32,
    sites: Vec<PersistedSite>,
}

/// What loading found.
#[derive(Debug, Default)]
pub struct Loaded {
    pub sites: Vec<PersistedSite>,
    /// Things the user should hear about (a corrupt file moved aside, ...).
    pub warnings: Vec<String>,
}

/// The state file of one daemon.
#[derive(Debug, Clone)]
pub struct StateStore {
    path: PathBuf,
}

impl StateStore {
    pub fn new(path: PathBuf) -> StateStore {
        StateStore { path }
    }

    fn sibling(&self, suffix: &str) -> PathBuf {
        let mut name = self.path.file_name().unwrap_or_default().to_os_string();
        name.push(suffix);
        self.path.with_file_name(name)
    }

    /// The directory the state file is in: the daemon's state dir.
    pub fn dir(&self) -> Option<PathBuf> {
        self.path.parent().map(Path::to_path_buf)
    }

    pub fn backup_path(&self) -> PathBuf {
        self.sibling(".bak")
    }

    /// Reads the remembered sites. Never fails: what cannot be read is set aside and
    /// reported in `warnings`.
    pub fn load(&self) -> Loaded {
        let mut loaded = Loaded::default();
        match read(&self.path) {
            Ok(Some(sites)) => loaded.sites = sites,
            Ok(None) => {
                // No state file: a first start, unless a backup says otherwise.
                if let Ok(Some(sites)) = read(&self.backup_path()) {
                    loaded.warnings.push(format!(
                        "{} is missing; restored {} site(s) from {}",
                        self.path.display(),
                        sites.len(),
                        self.backup_path().display()
                    ));
                    loaded.sites = sites;
                }
            }
            Err(problem) => {
                let aside = self.sibling(&format!(".corrupt-{}", crate::clock::now_ms()));
                let moved = fs::rename(&self.path, &aside);
                let mut warning = match moved {
                    Ok(()) => format!(
                        "{} could not be read ({problem}); moved it to {}",
                        self.path.display(),
                        aside.display()
                    ),
                    Err(error) => format!(
                        "{} could not be read ({problem}) nor moved aside ({error})",
                        self.path.display()
                    ),
                };
                match read(&self.backup_path()) {
                    Ok(Some(sites)) => {
                        warning.push_str(&format!(
                            "; restored {} site(s) from {}",
                            sites.len(),
                            self.backup_path().display()
                        ));
                        loaded.sites = sites;
                    }
                    _ => warning.push_str("; no usable backup, starting with no sites"),
                }
                loaded.warnings.push(warning);
            }
        }
        loaded
    }

    /// Replaces the remembered sites, atomically.
    /// Writes `sites` atomically (a temporary file renamed over the old one, the old one
    /// kept as the backup). On failure the temporary file is removed: nothing is left
    /// behind, and the state file is as it was.
    pub fn save(&self, sites: &[PersistedSite]) -> io::Result<()> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(dir)?;
        let temp = self.sibling(&format!(".tmp-{}", std::process::id()));
        let saved = self.save_through(sites, &temp, dir);
        if saved.is_err() {
            // Only the file this call made: a directory in its way is not ours.
            if fs::symlink_metadata(&temp).is_ok_and(|meta| meta.is_file()) {
                let _ = fs::remove_file(&temp);
            }
        }
        saved
    }

    fn save_through(&self, sites: &[PersistedSite], temp: &Path, dir: &Path) -> io::Result<()> {
        let state = StateFile {
            version: VERSION,
            sites: sites.to_vec(),
        };
        let mut json = serde_json::to_vec_pretty(&state).map_err(io::Error::other)?;
        json.push(b'\n');
        {
            let mut file = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(temp)?;
            file.write_all(&json)?;
            file.sync_all()?;
        }
        // Keep the current good file as the backup before replacing it. Only a file that
        // parses is worth keeping: never overwrite a good backup with garbage.
        if matches!(read(&self.path), Ok(Some(_))) {
            let backup = self.backup_path();
            let _ = fs::remove_file(&backup);
            fs::hard_link(&self.path, &backup)?;
        }
        fs::rename(temp, &self.path)?;
        File::open(dir)?.sync_all()
    }

    /// Where the state is written.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// `Ok(None)`: no such file. `Err`: it exists but is not a state file.
fn read(path: &Path) -> Result<Option<Vec<PersistedSite>>, String> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(error.to_string()),
    };
    let state: StateFile = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
    if state.version != VERSION {
        return Err(format!("unknown state file version {}", state.version));
    }
    Ok(Some(state.sites))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site(port: u16) -> PersistedSite {
        PersistedSite {
            root: PathBuf::from(format!("/sites/{port}")),
            port,
            drafts: false,
            host: None,
            with: None,
        }
    }

    #[test]
    fn save_then_load_round_trips_and_keeps_a_backup() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::new(dir.path().join("state.json"));
        assert!(store.load().sites.is_empty(), "first start");
        store.save(&[site(5173)]).unwrap();
        store.save(&[site(5173), site(5174)]).unwrap();
        let loaded = store.load();
        assert_eq!(loaded.sites, [site(5173), site(5174)]);
        assert!(loaded.warnings.is_empty());
        let backup = read(&store.backup_path()).unwrap().unwrap();
        assert_eq!(backup, [site(5173)], "the previous list is the backup");
        let leftovers: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.contains(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[test]
    fn corrupt_file_is_moved_aside_and_the_backup_used() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::new(dir.path().join("state.json"));
        store.save(&[site(1)]).unwrap();
        store.save(&[site(1), site(2)]).unwrap();
        // Truncated mid-write by something other than us.
        let text = fs::read_to_string(dir.path().join("state.json")).unwrap();
        fs::write(dir.path().join("state.json"), &text[..text.len() / 2]).unwrap();
        let loaded = store.load();
        assert_eq!(loaded.sites, [site(1)], "from the backup");
        assert_eq!(loaded.warnings.len(), 1);
        assert!(
            loaded.warnings[0].contains("moved it to"),
            "{:?}",
            loaded.warnings
        );
        let aside: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.starts_with("state.json.corrupt-"))
            .collect();
        assert_eq!(aside.len(), 1, "the bad file is kept for inspection");
        assert!(store.backup_path().exists(), "the backup is never consumed");
    }

    #[test]
    fn garbage_without_backup_starts_empty_and_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::new(dir.path().join("state.json"));
        fs::write(dir.path().join("state.json"), "\u{0}\u{1}garbage").unwrap();
        let loaded = store.load();
        assert!(loaded.sites.is_empty());
        assert!(
            loaded.warnings[0].contains("no usable backup"),
            "{:?}",
            loaded.warnings
        );
        // The next save does not turn garbage into the backup.
        store.save(&[site(3)]).unwrap();
        assert!(!store.backup_path().exists());
    }
}
