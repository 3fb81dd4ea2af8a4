//! The registry: port → site, the single source of truth for what the daemon serves.
//!
//! The map sits behind a plain mutex that is only held for lookups, the bind that
//! reserves a port and inserts; never across a build or an `.await`, so `ps` answers
//! while a large site builds. Every change to the detached sites is written to the state
//! file, so a restarted daemon brings them back.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use sited_proto::{DEFAULT_PORT, Error, SiteInfo, SiteSpec, Target};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::clock::now_ms;
use crate::hooks::TestHooks;
use crate::logs::LogHub;
use crate::ports;
use crate::site::{Lifecycle, SiteConfig, SiteHandle};
use crate::state_file::{PersistedSite, StateStore};
use crate::watch::Watcher;

/// What a registry needs from the daemon around it.
#[derive(Debug)]
pub struct RegistryConfig {
    /// Parent of every site's token; cancelled when the daemon shuts down.
    pub token: CancellationToken,
    /// Every site task is spawned here, so shutdown can wait for all of them.
    pub tracker: TaskTracker,
    /// The daemon's one file watcher; `None` if it could not be created (sites then
    /// serve without live reload).
    pub watcher: Option<Watcher>,
    /// The daemon's connection threads, shared by every site.
    pub pool: crate::serve::Pool,
    /// Where detached sites are remembered; `None` to remember nothing.
    pub store: Option<StateStore>,
    /// Where each site's log lines go.
    pub logs: LogHub,
    /// Behaviour only tests ask for.
    pub hooks: TestHooks,
}

#[derive(Debug)]
pub struct Registry {
    sites: Mutex<BTreeMap<u16, Arc<SiteHandle>>>,
    config: RegistryConfig,
    /// Serializes writes of the state file, so they land in the order of the changes.
    saving: tokio::sync::Mutex<()>,
}

impl Registry {
    pub fn new(config: RegistryConfig) -> Registry {
        Registry {
            sites: Mutex::new(BTreeMap::new()),
            config,
            saving: tokio::sync::Mutex::new(()),
        }
    }

    pub fn logs(&self) -> &LogHub {
        &self.config.logs
    }

    fn sites(&self) -> std::sync::MutexGuard<'_, BTreeMap<u16, Arc<SiteHandle>>> {
        // A panic while holding this lock cannot leave the map half-updated (every
        // critical section is a single insert/remove), so poisoning is ignored.
        self.sites
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Brings a site up, or returns the one already serving the same root. Waits for
    /// the first build. On any error nothing is left behind: no listener, no entry.
    pub async fn up(&self, spec: SiteSpec) -> Result<SiteInfo, Error> {
        let (handle, _) = self.start(spec).await?;
        Ok(handle.settled().await)
    }

    /// Registers the site (or finds the one serving that root) without waiting for its
    /// first build; `true` if this call created it.
    pub async fn start(&self, spec: SiteSpec) -> Result<(Arc<SiteHandle>, bool), Error> {
        if self.config.token.is_cancelled() {
            return Err(Error::ShuttingDown);
        }
        let root = check_root(&spec.root)?;
        // Resolved before the lock: a name lookup can take a while.
        let host = ports::Host::resolve(spec.host.as_deref()).await?;
        let mut port_wanted = spec.port;
        // A failed site with this root (e.g. its folder was deleted and is back) is
        // replaced by a fresh one, on the same port unless another is asked for.
        let failed = {
            let mut sites = self.sites();
            let failed = sites
                .iter()
                .find(|(_, s)| {
                    s.config.root == root && matches!(s.lifecycle(), Lifecycle::Failed { .. })
                })
                .map(|(port, _)| *port);
            failed.and_then(|port| sites.remove(&port))
        };
        if let Some(failed) = &failed {
            port_wanted = port_wanted.or(Some(failed.config.port));
            failed.stop().await;
        }
        let registered = (|| {
            let mut sites = self.sites();
            // Checked again under the lock: a shutdown may have emptied the map while
            // this call waited above, and must not find a new site in it afterwards.
            if self.config.token.is_cancelled() {
                return Err(Error::ShuttingDown);
            }
            if let Some(existing) = sites.values().find(|s| s.config.root == root) {
                return Ok((existing.clone(), false));
            }
            let listener = match port_wanted {
                Some(port) => {
                    if let Some(site) = sites.get(&port) {
                        return Err(Error::PortTakenBySite {
                            port,
                            root: site.config.root.clone(),
                        });
                    }
                    ports::bind(host.ip, port)?
                }
                None => ports::bind_first_free(host.ip, DEFAULT_PORT, |p| sites.contains_key(&p))?,
            };
            let port = bound_port(&listener)?;
            if host.is_exposed() {
                tracing::warn!(
                    address = %host.ip,
                    port,
                    "serving on an address other machines can reach"
                );
            }
            let config = SiteConfig {
                root: root.clone(),
                port,
                host: host.clone(),
                drafts: spec.drafts,
                started_at_ms: now_ms(),
                attached: spec.attach,
            };
            let handle = Arc::new(self.spawn(config, listener));
            sites.insert(handle.config.port, handle.clone());
            Ok((handle, true))
        })();
        let (handle, created) = match registered {
            Ok(registered) => registered,
            Err(error) => {
                // The failed site this call meant to replace stays listed (and
                // remembered), unless its port went to another site meanwhile.
                if let Some(failed) = failed {
                    let mut sites = self.sites();
                    if !sites.contains_key(&failed.config.port) && !self.config.token.is_cancelled()
                    {
                        let reason = format!("could not come back: {error}");
                        let placeholder = SiteHandle::failed(failed.config.clone(), reason);
                        sites.insert(failed.config.port, Arc::new(placeholder));
                    }
                }
                return Err(error);
            }
        };
        if created && !spec.attach || failed.is_some() {
            self.persist().await;
        }
        Ok((handle, created))
    }

    fn spawn(&self, config: SiteConfig, listener: std::net::TcpListener) -> SiteHandle {
        self.config.logs.reset(config.port);
        SiteHandle::spawn(
            config,
            listener,
            self.config.token.child_token(),
            &self.config.tracker,
            self.config.watcher.clone(),
            self.config.pool.clone(),
            self.config.hooks.clone(),
        )
    }

    /// Brings back remembered sites, each on its own port. Binding is immediate (so no
    /// new `up` can take a remembered port); builds go on in the background. A site that
    /// cannot come back is listed as failed, with the reason, and stays remembered.
    pub async fn restore(&self, remembered: &[PersistedSite]) {
        // Addresses first (a name lookup can take a while), then every port at once.
        let mut hosts = Vec::with_capacity(remembered.len());
        for site in remembered {
            hosts.push(ports::Host::resolve(site.host.as_deref()).await);
        }
        let mut sites = self.sites();
        for (site, host) in remembered.iter().zip(hosts) {
            if sites.contains_key(&site.port) {
                tracing::warn!(port = site.port, root = %site.root.display(), "two remembered sites share a port; keeping the first");
                continue;
            }
            let config = SiteConfig {
                root: site.root.clone(),
                port: site.port,
                // Unresolvable now (no network yet at login?): keep the name, so it is
                // still remembered.
                host: host.clone().unwrap_or_else(|_| ports::Host {
                    name: site.host.clone(),
                    ..ports::Host::loopback()
                }),
                drafts: site.drafts,
                started_at_ms: now_ms(),
                attached: false,
            };
            let started = host
                .and_then(|host| check_root(&site.root).map(|root| (root, host)))
                .and_then(|(root, host)| {
                    let listener = ports::bind(host.ip, site.port)?;
                    Ok(self.spawn(
                        SiteConfig {
                            root,
                            ..config.clone()
                        },
                        listener,
                    ))
                });
            let handle = match started {
                Ok(handle) => {
                    tracing::info!(port = site.port, root = %site.root.display(), "restored site");
                    handle
                }
                Err(error) => {
                    let reason = format!("could not be restored: {error}");
                    tracing::warn!(port = site.port, root = %site.root.display(), "site {reason}");
                    SiteHandle::failed(config, reason)
                }
            };
            sites.insert(site.port, Arc::new(handle));
        }
    }

    /// Takes down the sites `target` names and waits until each has released its port.
    pub async fn down(&self, target: &Target) -> Result<Vec<SiteInfo>, Error> {
        let removed = self.remove(|port, site| match target {
            Target::All => true,
            Target::Port(p) => port == *p,
            Target::Root(root) => {
                let canonical = root.canonicalize().unwrap_or_else(|_| root.clone());
                site.config.root == canonical || site.config.root == *root
            }
        });
        if removed.is_empty() && *target != Target::All {
            return Err(Error::NoSuchSite {
                target: target.clone(),
            });
        }
        Ok(self.stop_removed(removed).await)
    }

    /// Takes down the attached sites a closed client connection brought up (those still
    /// here: the client may have taken some down itself, and their ports reused).
    pub async fn detach(&self, attached: &[(u16, u64)]) {
        let removed = self.remove(|port, site| {
            site.config.attached
                && attached
                    .iter()
                    .any(|&(p, started)| p == port && started == site.config.started_at_ms)
        });
        for site in self.stop_removed(removed).await {
            tracing::info!(port = site.port, root = %site.root.display(), "client went away: attached site stopped");
        }
    }

    fn remove(&self, matches: impl Fn(u16, &SiteHandle) -> bool) -> Vec<Arc<SiteHandle>> {
        let mut sites = self.sites();
        let ports: Vec<u16> = sites
            .iter()
            .filter(|(port, site)| matches(**port, site))
            .map(|(port, _)| *port)
            .collect();
        ports.iter().filter_map(|port| sites.remove(port)).collect()
    }

    async fn stop_removed(&self, removed: Vec<Arc<SiteHandle>>) -> Vec<SiteInfo> {
        let detached = removed.iter().any(|site| !site.config.attached);
        let stopped = futures::future::join_all(removed.iter().map(|site| site.stop())).await;
        // On daemon shutdown the sites are stopped, not forgotten.
        if detached && !self.config.token.is_cancelled() {
            self.persist().await;
        }
        stopped
    }

    /// Takes the site on `port` down and brings it up again from the same spec on the
    /// same port; returns once its first build is done. The site stays in the map while
    /// it stops (listed as `stopping`), so no other `up` can take its port or its root
    /// meanwhile. Its log goes on. A root that is no longer there is refused before
    /// anything is touched; a port another program grabbed in the moment between stop
    /// and bind leaves the site failed, with the reason, and remembered.
    pub async fn restart(&self, port: u16) -> Result<SiteInfo, Error> {
        let no_such_site = || Error::NoSuchSite {
            target: Target::Port(port),
        };
        let old = self.sites().get(&port).cloned().ok_or_else(no_such_site)?;
        if old.config.attached {
            return Err(Error::SiteAttached { port });
        }
        if self.config.token.is_cancelled() {
            return Err(Error::ShuttingDown);
        }
        let root = check_root(&old.config.root)?;
        site_span(port, &root).in_scope(|| tracing::info!("restarting, as asked"));
        old.stop().await;
        let config = SiteConfig {
            root,
            port,
            host: old.config.host.clone(),
            drafts: old.config.drafts,
            started_at_ms: now_ms(),
            attached: false,
        };
        let handle = {
            let mut sites = self.sites();
            match sites.get(&port) {
                Some(current) if Arc::ptr_eq(current, &old) => {}
                // Taken down (or restarted by someone else) while it stopped.
                Some(current) => return Ok(current.info()),
                None => return Err(no_such_site()),
            }
            let handle = match ports::bind(config.host.ip, port) {
                // Not `self.spawn`: the site's log carries on across the restart.
                Ok(listener) => SiteHandle::spawn(
                    config,
                    listener,
                    self.config.token.child_token(),
                    &self.config.tracker,
                    self.config.watcher.clone(),
                    self.config.pool.clone(),
                    self.config.hooks.clone(),
                ),
                Err(error) => SiteHandle::failed(config, format!("could not restart: {error}")),
            };
            let handle = Arc::new(handle);
            sites.insert(port, handle.clone());
            handle
        };
        Ok(handle.settled().await)
    }

    /// Builds the site on `port` again from scratch; returns once that build is done.
    pub async fn rebuild(&self, port: u16) -> Result<SiteInfo, Error> {
        let site = self.sites().get(&port).cloned().ok_or(Error::NoSuchSite {
            target: Target::Port(port),
        })?;
        site_span(port, &site.config.root)
            .in_scope(|| tracing::info!("building everything again, as asked"));
        Ok(site.rebuild().await)
    }

    /// Every site, ordered by port.
    pub fn ps(&self) -> Vec<SiteInfo> {
        self.sites().values().map(|site| site.info()).collect()
    }

    /// Stops every site concurrently; used on daemon shutdown.
    pub async fn stop_all(&self) {
        self.config.token.cancel();
        let _ = self.down(&Target::All).await;
    }

    /// Writes the detached sites to the state file (off the async runtime).
    async fn persist(&self) {
        let Some(store) = self.config.store.clone() else {
            return;
        };
        let _order = self.saving.lock().await;
        // On shutdown the sites are stopped, not forgotten: whatever the map holds now
        // is not the list to remember.
        if self.config.token.is_cancelled() {
            return;
        }
        let sites: Vec<PersistedSite> = self
            .sites()
            .values()
            .filter(|site| !site.config.attached)
            .map(|site| PersistedSite {
                root: site.config.root.clone(),
                port: site.config.port,
                drafts: site.config.drafts,
                host: site.config.host.persisted(),
            })
            .collect();
        let saved = tokio::task::spawn_blocking(move || store.save(&sites)).await;
        match saved {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                tracing::error!(%error, "cannot write the state file; sites will not come back after a restart")
            }
            Err(error) => tracing::error!(%error, "writing the state file failed"),
        }
    }
}

/// A span whose events go to the site's own log (`sitectl logs PORT`).
fn site_span(port: u16, root: &Path) -> tracing::Span {
    tracing::info_span!(parent: None, "site", port, root = %root.display())
}

fn bound_port(listener: &std::net::TcpListener) -> Result<u16, Error> {
    listener
        .local_addr()
        .map(|addr| addr.port())
        .map_err(|e| Error::Internal(format!("bound listener has no address: {e}")))
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

    fn registry(store: Option<StateStore>) -> Registry {
        Registry::new(RegistryConfig {
            token: CancellationToken::new(),
            tracker: TaskTracker::new(),
            watcher: Watcher::new().ok(),
            pool: crate::serve::Pool::default(),
            store,
            logs: LogHub::default(),
            hooks: TestHooks::default(),
        })
    }

    fn spec(root: &Path, port: Option<u16>) -> SiteSpec {
        SiteSpec {
            root: root.to_path_buf(),
            port,
            drafts: false,
            attach: false,
            host: None,
        }
    }

    #[tokio::test]
    async fn up_is_idempotent_and_down_frees_the_port() {
        let registry = registry(None);
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
        let registry = registry(None);
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
    async fn restart_keeps_the_port_and_builds_anew() {
        let registry = registry(None);
        let dir = site_dir();
        let first = registry.up(spec(dir.path(), Some(0))).await.unwrap();
        fs::write(dir.path().join("more.md"), "# More\n").unwrap();
        let restarted = registry.restart(first.port).await.unwrap();
        assert_eq!(restarted.port, first.port);
        assert_eq!(restarted.state, sited_proto::SiteState::Serving);
        assert_eq!(restarted.pages, 3, "the new page is in the fresh build");
        assert!(restarted.started_at_ms >= first.started_at_ms);
        assert_eq!(registry.ps().len(), 1);
        let missing = registry.restart(1).await.unwrap_err();
        assert!(matches!(missing, Error::NoSuchSite { .. }), "{missing:?}");
    }

    #[tokio::test]
    async fn restart_refuses_a_root_that_is_gone_and_keeps_the_site() {
        let registry = registry(None);
        let dir = site_dir();
        let up = registry.up(spec(dir.path(), Some(0))).await.unwrap();
        let root = dir.path().to_path_buf();
        drop(dir);
        let error = registry.restart(up.port).await.unwrap_err();
        assert!(matches!(error, Error::RootMissing { .. }), "{error:?}");
        assert_eq!(registry.ps().len(), 1, "{} is still listed", root.display());
    }

    #[tokio::test]
    async fn attached_sites_are_not_restarted() {
        let registry = registry(None);
        let dir = site_dir();
        let up = registry
            .up(SiteSpec {
                attach: true,
                ..spec(dir.path(), Some(0))
            })
            .await
            .unwrap();
        let error = registry.restart(up.port).await.unwrap_err();
        assert_eq!(error, Error::SiteAttached { port: up.port });
    }

    #[tokio::test]
    async fn rebuild_reads_everything_again_and_waits_for_the_build() {
        let registry = registry(None);
        let dir = site_dir();
        let up = registry.up(spec(dir.path(), Some(0))).await.unwrap();
        let first = up.last_build.unwrap();
        // Written behind the watcher's back as far as the result goes: only a full
        // rebuild is sure to have it.
        fs::write(dir.path().join("more.md"), "# More\n").unwrap();
        let rebuilt = registry.rebuild(up.port).await.unwrap();
        let build = rebuilt.last_build.unwrap();
        assert_eq!(rebuilt.pages, 3, "{build:?}");
        assert_eq!(build.rendered, 3, "every page is rendered anew: {build:?}");
        assert!(build.finished_at_ms >= first.finished_at_ms);
        let missing = registry.rebuild(1).await.unwrap_err();
        assert!(matches!(missing, Error::NoSuchSite { .. }), "{missing:?}");
    }

    #[tokio::test]
    async fn down_of_unknown_site_is_an_error() {
        let registry = registry(None);
        let error = registry.down(&Target::Port(1)).await.unwrap_err();
        assert_eq!(
            error,
            Error::NoSuchSite {
                target: Target::Port(1)
            }
        );
        assert!(registry.down(&Target::All).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn detached_sites_are_remembered_and_attached_ones_are_not() {
        let state = tempfile::tempdir().unwrap();
        let store = StateStore::new(state.path().join("state.json"));
        let registry = registry(Some(store.clone()));
        let (a, b) = (site_dir(), site_dir());
        let kept = registry.up(spec(a.path(), Some(0))).await.unwrap();
        let attached = registry
            .up(SiteSpec {
                attach: true,
                ..spec(b.path(), Some(0))
            })
            .await
            .unwrap();
        assert!(attached.attached);
        let remembered = store.load().sites;
        assert_eq!(remembered.len(), 1);
        assert_eq!(remembered[0].port, kept.port);
        assert_eq!(remembered[0].root, a.path().canonicalize().unwrap());

        // Shutdown stops sites without forgetting them.
        registry.stop_all().await;
        assert_eq!(store.load().sites.len(), 1);
    }

    #[tokio::test]
    async fn restore_brings_sites_back_and_lists_the_ones_it_cannot() {
        let registry = registry(None);
        let dir = site_dir();
        let free = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let port = free.local_addr().unwrap().port();
        drop(free);
        let gone = PersistedSite {
            root: "/no/such/site".into(),
            port: 1,
            drafts: false,
            host: None,
        };
        let good = PersistedSite {
            root: dir.path().to_path_buf(),
            port,
            drafts: false,
            host: None,
        };
        registry.restore(&[good, gone]).await;
        let sites = registry.ps();
        assert_eq!(sites.len(), 2);
        let failed = sites.iter().find(|s| s.port == 1).unwrap();
        assert!(
            matches!(&failed.state, sited_proto::SiteState::Failed { reason } if reason.contains("could not be restored")),
            "{failed:?}"
        );
        let handle = registry.sites().get(&port).cloned().unwrap();
        assert_eq!(
            handle.settled().await.state,
            sited_proto::SiteState::Serving
        );
        // A failed placeholder can be taken down like any site.
        registry.down(&Target::Port(1)).await.unwrap();
    }
}
