//! The registry: port → site, the single source of truth for what the daemon serves.
//!
//! The map sits behind a plain mutex that is only held for lookups, the bind that
//! reserves a port and inserts; never across a build or an `.await`, so `ps` answers
//! while a large site builds.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use sited_proto::{DEFAULT_PORT, Error, SiteInfo, SiteSpec, Target};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::build::now_ms;
use crate::ports;
use crate::site::{SiteConfig, SiteHandle};

#[derive(Debug)]
pub struct Registry {
    sites: Mutex<BTreeMap<u16, std::sync::Arc<SiteHandle>>>,
    /// Parent of every site's token; cancelled when the daemon shuts down.
    token: CancellationToken,
    tracker: TaskTracker,
}

impl Registry {
    pub fn new(token: CancellationToken, tracker: TaskTracker) -> Registry {
        Registry {
            sites: Mutex::new(BTreeMap::new()),
            token,
            tracker,
        }
    }

    fn sites(&self) -> std::sync::MutexGuard<'_, BTreeMap<u16, std::sync::Arc<SiteHandle>>> {
        // A panic while holding this lock cannot leave the map half-updated (every
        // critical section is a single insert/remove), so poisoning is ignored.
        self.sites
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Brings a site up, or returns the one already serving the same root. Waits for
    /// the first build. On any error nothing is left behind: no listener, no entry.
    pub async fn up(&self, spec: SiteSpec) -> Result<SiteInfo, Error> {
        if self.token.is_cancelled() {
            return Err(Error::ShuttingDown);
        }
        let root = check_root(&spec.root)?;
        // Resolved before the lock: a name lookup can take a while.
        let host = ports::Host::resolve(spec.host.as_deref()).await?;
        let handle = {
            let mut sites = self.sites();
            if let Some(existing) = sites.values().find(|s| s.config.root == root) {
                existing.clone()
            } else {
                let listener = match spec.port {
                    Some(port) => {
                        if let Some(site) = sites.get(&port) {
                            return Err(Error::PortTakenBySite {
                                port,
                                root: site.config.root.clone(),
                            });
                        }
                        ports::bind(host.ip, port)?
                    }
                    None => {
                        ports::bind_first_free(host.ip, DEFAULT_PORT, |p| sites.contains_key(&p))?
                    }
                };
                let port = listener
                    .local_addr()
                    .map_err(|e| Error::Internal(format!("bound listener has no address: {e}")))?
                    .port();
                if host.is_exposed() {
                    tracing::warn!(
                        address = %host.ip,
                        port,
                        "serving on an address other machines can reach"
                    );
                }
                let config = SiteConfig {
                    root,
                    port,
                    host,
                    drafts: spec.drafts,
                    started_at_ms: now_ms(),
                };
                let handle = std::sync::Arc::new(SiteHandle::spawn(
                    config,
                    listener,
                    self.token.child_token(),
                    &self.tracker,
                ));
                sites.insert(port, handle.clone());
                handle
            }
        };
        Ok(handle.settled().await)
    }

    /// Takes down the sites `target` names and waits until each has released its port.
    pub async fn down(&self, target: &Target) -> Result<Vec<SiteInfo>, Error> {
        let removed: Vec<std::sync::Arc<SiteHandle>> = {
            let mut sites = self.sites();
            let ports: Vec<u16> = match target {
                Target::All => sites.keys().copied().collect(),
                Target::Port(port) => sites
                    .contains_key(port)
                    .then_some(*port)
                    .into_iter()
                    .collect(),
                Target::Root(root) => {
                    let canonical = root.canonicalize().unwrap_or_else(|_| root.clone());
                    sites
                        .iter()
                        .filter(|(_, s)| s.config.root == canonical || s.config.root == *root)
                        .map(|(port, _)| *port)
                        .collect()
                }
            };
            ports.iter().filter_map(|port| sites.remove(port)).collect()
        };
        if removed.is_empty() && *target != Target::All {
            return Err(Error::NoSuchSite {
                target: target.clone(),
            });
        }
        Ok(futures::future::join_all(removed.iter().map(|site| site.stop())).await)
    }

    /// Every site, ordered by port.
    pub fn ps(&self) -> Vec<SiteInfo> {
        self.sites().values().map(|site| site.info()).collect()
    }

    /// Stops every site concurrently; used on daemon shutdown.
    pub async fn stop_all(&self) {
        self.token.cancel();
        let _ = self.down(&Target::All).await;
    }
}

/// Checks that a root can be served and returns its canonical form.
fn check_root(root: &Path) -> Result<PathBuf, Error> {
    if !root.is_absolute() {
        return Err(Error::RootNotAbsolute {
            path: root.to_path_buf(),
        });
    }
    let meta = fs::metadata(root).map_err(|error| match error.kind() {
        io::ErrorKind::NotFound => Error::RootMissing {
            path: root.to_path_buf(),
        },
        _ => Error::RootUnreadable {
            path: root.to_path_buf(),
            message: error.to_string(),
        },
    })?;
    if !meta.is_dir() {
        return Err(Error::RootNotDirectory {
            path: root.to_path_buf(),
        });
    }
    fs::read_dir(root).map_err(|error| Error::RootUnreadable {
        path: root.to_path_buf(),
        message: error.to_string(),
    })?;
    root.canonicalize().map_err(|error| Error::RootUnreadable {
        path: root.to_path_buf(),
        message: error.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site_dir() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("index.md"), "# Home\n\nHello.").unwrap();
        dir
    }

    fn registry() -> Registry {
        Registry::new(CancellationToken::new(), TaskTracker::new())
    }

    fn spec(root: &Path, port: Option<u16>) -> SiteSpec {
        SiteSpec {
            root: root.to_path_buf(),
            port,
            drafts: false,
            host: None,
        }
    }

    #[tokio::test]
    async fn up_is_idempotent_and_down_frees_the_port() {
        let registry = registry();
        let dir = site_dir();
        let first = registry.up(spec(dir.path(), Some(0))).await.unwrap();
        assert_eq!(first.state, sited_proto::SiteState::Serving);
        assert_eq!(first.pages, 2, "home and 404");
        let again = registry.up(spec(dir.path(), None)).await.unwrap();
        assert_eq!(again.port, first.port);
        assert_eq!(registry.ps().len(), 1);
        let stopped = registry.down(&Target::Port(first.port)).await.unwrap();
        assert_eq!(stopped[0].state, sited_proto::SiteState::Stopped);
        assert!(registry.ps().is_empty());
        std::net::TcpListener::bind(("127.0.0.1", first.port)).expect("port is free again");
    }

    #[tokio::test]
    async fn failed_start_leaves_nothing_behind() {
        let registry = registry();
        let missing = registry
            .up(spec(Path::new("/definitely/not/here"), None))
            .await;
        assert!(
            matches!(missing, Err(Error::RootMissing { .. })),
            "{missing:?}"
        );
        let holder = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let port = holder.local_addr().unwrap().port();
        let dir = site_dir();
        let taken = registry.up(spec(dir.path(), Some(port))).await;
        assert!(matches!(taken, Err(Error::PortInUse { .. })), "{taken:?}");
        assert!(registry.ps().is_empty());
    }

    #[tokio::test]
    async fn down_of_unknown_site_is_an_error() {
        let registry = registry();
        let error = registry.down(&Target::Port(1)).await.unwrap_err();
        assert_eq!(
            error,
            Error::NoSuchSite {
                target: Target::Port(1)
            }
        );
        assert!(registry.down(&Target::All).await.unwrap().is_empty());
    }
}
