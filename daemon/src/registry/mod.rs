//! The registry: port → site, the single source of truth for what the daemon serves.
//!
//! The map sits behind a plain mutex that is only held for lookups, the bind that
//! reserves a port and inserts; never across a build or an `.await`, so `ps` answers
//! while a large site builds. Every change to the detached sites is written to the state
//! file, so a restarted daemon brings them back.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use sited_proto::{DEFAULT_PORT, Error, SiteInfo, SiteSpec, Target};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::clock::now_ms;
use crate::hooks::TestHooks;
use crate::logs::LogHub;
use crate::ports;
use crate::site::{SiteConfig, SiteEnv, SiteHandle};
use crate::state_file::{PersistedSite, StateStore};
use crate::watch::Watcher;

mod entry;
mod root;
#[cfg(test)]
mod tests;

pub use entry::{Attachment, Entry, FailedSite};
use root::check_root;

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
    /// The daemon's own folders (canonical), left out of every site that holds one.
    pub own_dirs: Vec<PathBuf>,
}

/// What [`Registry::start`] found or made.
#[derive(Debug)]
pub struct Started {
    pub site: Arc<SiteHandle>,
    /// Set when this call created an attached site: the caller holds the site's life.
    pub attachment: Option<Attachment>,
}

/// Why a registration must wait and try again.
enum Registered {
    Done(Arc<SiteHandle>, bool),
    /// A site on its way down still holds the root or the port asked for.
    WaitFor(Arc<SiteHandle>),
}

#[derive(Debug)]
pub struct Registry {
    sites: Mutex<BTreeMap<u16, Entry>>,
    config: RegistryConfig,
    /// Serializes writes of the state file, so they land in the order of the changes.
    saving: tokio::sync::Mutex<()>,
    /// Why the last write of the state file failed, while it does (S26): shown with
    /// every site, since what a restart brings back is then not what is up.
    unsaved: Mutex<Option<String>>,
}

impl Registry {
    pub fn new(config: RegistryConfig) -> Registry {
        Registry {
            sites: Mutex::new(BTreeMap::new()),
            config,
            saving: tokio::sync::Mutex::new(()),
            unsaved: Mutex::new(None),
        }
    }

    /// `info` with what every site should know: that the state file cannot be written.
    pub fn with_warnings(&self, mut info: SiteInfo) -> SiteInfo {
        if let Some(unsaved) = &*self.unsaved.lock().unwrap_or_else(|p| p.into_inner()) {
            info.warnings.push(unsaved.clone());
        }
        info
    }

    pub fn logs(&self) -> &LogHub {
        &self.config.logs
    }

    fn sites(&self) -> std::sync::MutexGuard<'_, BTreeMap<u16, Entry>> {
        // A panic while holding this lock cannot leave the map half-updated (every
        // critical section is a single insert/remove), so poisoning is ignored.
        self.sites
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Brings a site up, or returns the one already serving the same root. Waits for
    /// the first build. On any error nothing is left behind: no listener, no entry.
    pub async fn up(
        self: &Arc<Self>,
        spec: SiteSpec,
    ) -> Result<(SiteInfo, Option<Attachment>), Error> {
        let started = self.start(spec).await?;
        Ok((started.site.settled().await, started.attachment))
    }

    /// Registers the site (or finds the one serving that root) without waiting for its
    /// first build. A site on its way down with the same root or port is waited for.
    pub async fn start(self: &Arc<Self>, spec: SiteSpec) -> Result<Started, Error> {
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
                .find(|(_, s)| s.config().root == root && s.is_failed())
                .map(|(port, _)| *port);
            failed.and_then(|port| sites.remove(&port))
        };
        if let Some(failed) = &failed {
            port_wanted = port_wanted.or(Some(failed.config().port));
            failed.stop().await;
        }
        let registered = loop {
            match self.register(&spec, &root, &host, port_wanted) {
                Ok(Registered::WaitFor(going)) => {
                    going.stop().await;
                    self.forget(&Entry::Live(going));
                }
                Ok(Registered::Done(site, created)) => break Ok((site, created)),
                Err(error) => break Err(error),
            }
        };
        let (site, created) = match registered {
            Ok(registered) => registered,
            Err(error) => {
                // The failed site this call meant to replace stays listed (and
                // remembered), unless its port went to another site meanwhile.
                if let Some(failed) = failed {
                    let mut sites = self.sites();
                    let port = failed.config().port;
                    if !sites.contains_key(&port) && !self.config.token.is_cancelled() {
                        let reason = format!("could not come back: {error}");
                        let config = failed.config().clone();
                        sites.insert(port, Entry::Failed(Arc::new(FailedSite { config, reason })));
                    }
                }
                return Err(error);
            }
        };
        if created && !spec.attach || failed.is_some() {
            self.persist().await;
        }
        let attachment = (created && spec.attach).then(|| Attachment {
            registry: Arc::downgrade(self),
            site: site.clone(),
        });
        Ok(Started { site, attachment })
    }

    /// The part of [`Registry::start`] under the lock: find the site of `root`, or bind
    /// its port and spawn it; or say which site on its way down is in the way.
    fn register(
        &self,
        spec: &SiteSpec,
        root: &Path,
        host: &ports::Host,
        port_wanted: Option<u16>,
    ) -> Result<Registered, Error> {
        let mut sites = self.sites();
        // Checked again under the lock: a shutdown may have emptied the map while
        // this call waited, and must not find a new site in it afterwards.
        if self.config.token.is_cancelled() {
            return Err(Error::ShuttingDown);
        }
        if let Some(existing) = sites.values().find(|s| s.config().root == root) {
            return Ok(match (existing, existing.stopping()) {
                (_, Some(going)) => Registered::WaitFor(going.clone()),
                (Entry::Live(site), None) => match other_options(&site.config, spec, host) {
                    Some(differences) => {
                        return Err(Error::UpWithOtherOptions {
                            port: site.config.port,
                            root: site.config.root.clone(),
                            differences,
                        });
                    }
                    None => Registered::Done(site.clone(), false),
                },
                // Put back by a concurrent `up` that failed to replace it.
                (Entry::Failed(failed), None) => {
                    return Err(Error::SiteFailed {
                        reason: failed.reason.clone(),
                    });
                }
            });
        }
        let listener = match port_wanted {
            Some(port) => {
                if let Some(site) = sites.get(&port) {
                    if let Some(going) = site.stopping() {
                        return Ok(Registered::WaitFor(going.clone()));
                    }
                    return Err(Error::PortTakenBySite {
                        port,
                        root: site.config().root.clone(),
                    });
                }
                ports::bind(host.ip, port)?
            }
            None => {
                let first = self.config.hooks.first_port.unwrap_or(DEFAULT_PORT);
                ports::bind_first_free(host.ip, first, |p| sites.contains_key(&p))?
            }
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
            root: root.to_path_buf(),
            port,
            host: host.clone(),
            drafts: spec.drafts,
            started_at_ms: now_ms(),
            attached: spec.attach,
            with: spec.with.clone(),
            state_dir: self.state_dir(),
        };
        let site = Arc::new(self.spawn(config, listener));
        sites.insert(port, Entry::Live(site.clone()));
        Ok(Registered::Done(site, true))
    }

    /// Where external generators' builds go: the daemon's state dir.
    fn state_dir(&self) -> Option<std::path::PathBuf> {
        self.config.store.as_ref().and_then(StateStore::dir)
    }

    fn spawn(&self, config: SiteConfig, listener: std::net::TcpListener) -> SiteHandle {
        self.config.logs.reset(config.port);
        self.spawn_keeping_log(config, listener)
    }

    /// Spawns a site whose log goes on from an earlier life on the same port.
    fn spawn_keeping_log(&self, config: SiteConfig, listener: std::net::TcpListener) -> SiteHandle {
        SiteHandle::spawn(
            config,
            listener,
            self.config.token.child_token(),
            &self.config.tracker,
            self.config.watcher.clone(),
            self.config.pool.clone(),
            SiteEnv {
                hooks: self.config.hooks.clone(),
                exclude: self.config.own_dirs.clone(),
            },
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
                with: site.with.clone(),
                state_dir: self.state_dir(),
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
            let entry = match started {
                Ok(handle) => {
                    tracing::info!(port = site.port, root = %site.root.display(), "restored site");
                    Entry::Live(Arc::new(handle))
                }
                Err(error) => {
                    let reason = format!("could not be restored: {error}");
                    tracing::warn!(port = site.port, root = %site.root.display(), "site {reason}");
                    Entry::Failed(Arc::new(FailedSite { config, reason }))
                }
            };
            sites.insert(site.port, entry);
        }
    }

    /// Takes down the sites `target` names and waits until each has released its port.
    /// Each stays listed (as stopping) until it has.
    pub async fn down(&self, target: &Target) -> Result<Vec<SiteInfo>, Error> {
        let chosen = self.select(|port, site| match target {
            Target::All => true,
            Target::Port(p) => port == *p,
            Target::Root(root) => {
                let canonical = root.canonicalize().unwrap_or_else(|_| root.clone());
                site.config().root == canonical || site.config().root == *root
            }
        });
        if chosen.is_empty() && *target != Target::All {
            return Err(Error::NoSuchSite {
                target: target.clone(),
            });
        }
        Ok(self.stop_entries(chosen).await)
    }

    /// Takes down an attached site whose client connection closed, if it is still here
    /// (the client may have taken it down itself, and its port been reused). True if it
    /// was.
    async fn detach(&self, site: &Arc<SiteHandle>) -> bool {
        let entry = Entry::Live(site.clone());
        let listed = self
            .sites()
            .get(&site.config.port)
            .is_some_and(|listed| listed.same(&entry));
        listed && !self.stop_entries(vec![entry]).await.is_empty()
    }

    fn select(&self, matches: impl Fn(u16, &Entry) -> bool) -> Vec<Entry> {
        self.sites()
            .iter()
            .filter(|(port, site)| matches(**port, site))
            .map(|(_, site)| site.clone())
            .collect()
    }

    /// Removes `entry` from the map if it is still the one listed for its port.
    fn forget(&self, entry: &Entry) -> bool {
        let mut sites = self.sites();
        let port = entry.config().port;
        if sites.get(&port).is_some_and(|listed| listed.same(entry)) {
            sites.remove(&port);
            true
        } else {
            false
        }
    }

    /// Stops `entries` concurrently; each is forgotten once it has let go of everything.
    /// Returns those this call forgot (another `down` may have beaten it to some).
    async fn stop_entries(&self, entries: Vec<Entry>) -> Vec<SiteInfo> {
        // Every site is asked at once, so all are listed as stopping from here on.
        for entry in &entries {
            if let Entry::Live(site) = entry {
                site.begin_stop();
            }
        }
        let stopped = futures::future::join_all(entries.iter().map(|entry| async move {
            let info = entry.stop().await;
            self.forget(entry)
                .then_some((info, entry.config().attached))
        }))
        .await;
        let stopped: Vec<(SiteInfo, bool)> = stopped.into_iter().flatten().collect();
        // On daemon shutdown the sites are stopped, not forgotten.
        if stopped.iter().any(|(_, attached)| !attached) && !self.config.token.is_cancelled() {
            self.persist().await;
        }
        stopped.into_iter().map(|(info, _)| info).collect()
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
        if old.config().attached {
            return Err(Error::SiteAttached { port });
        }
        if self.config.token.is_cancelled() {
            return Err(Error::ShuttingDown);
        }
        let root = check_root(&old.config().root)?;
        site_span(port, &root).in_scope(|| tracing::info!("restarting, as asked"));
        old.stop().await;
        let config = SiteConfig {
            root,
            started_at_ms: now_ms(),
            attached: false,
            ..old.config().clone()
        };
        let handle = {
            let mut sites = self.sites();
            match sites.get(&port) {
                Some(current) if current.same(&old) => {}
                // Taken down (or restarted by someone else) while it stopped.
                Some(current) => return Ok(current.info()),
                None => return Err(no_such_site()),
            }
            let entry = match ports::bind(config.host.ip, port) {
                Ok(listener) => Entry::Live(Arc::new(self.spawn_keeping_log(config, listener))),
                Err(error) => Entry::Failed(Arc::new(FailedSite {
                    config,
                    reason: format!("could not restart: {error}"),
                })),
            };
            sites.insert(port, entry.clone());
            entry
        };
        Ok(match handle {
            Entry::Live(site) => site.settled().await,
            Entry::Failed(_) => handle.info(),
        })
    }

    /// Builds the site on `port` again from scratch; returns once that build is done.
    pub async fn rebuild(&self, port: u16) -> Result<SiteInfo, Error> {
        let site = self.sites().get(&port).cloned().ok_or(Error::NoSuchSite {
            target: Target::Port(port),
        })?;
        site_span(port, &site.config().root)
            .in_scope(|| tracing::info!("building everything again, as asked"));
        Ok(match &site {
            Entry::Live(live) => live.rebuild().await,
            // A failed site is not rebuilt: `up` brings it back.
            Entry::Failed(_) => site.info(),
        })
    }

    /// Every site, ordered by port.
    pub fn ps(&self) -> Vec<SiteInfo> {
        let infos: Vec<SiteInfo> = self.sites().values().map(Entry::info).collect();
        infos
            .into_iter()
            .map(|info| self.with_warnings(info))
            .collect()
    }

    /// The site on `port`, if one is listed.
    pub fn entry(&self, port: u16) -> Option<Entry> {
        self.sites().get(&port).cloned()
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
            // A site on its way down is not remembered either.
            .filter(|entry| entry.stopping().is_none())
            .map(Entry::config)
            .filter(|config| !config.attached)
            .map(|config| PersistedSite {
                root: config.root.clone(),
                port: config.port,
                drafts: config.drafts,
                host: config.host.persisted(),
                with: config.with.clone(),
            })
            .collect();
        let path = store.path().to_path_buf();
        let saved = tokio::task::spawn_blocking(move || store.save(&sites)).await;
        let failed = match saved {
            Ok(Ok(())) => None,
            Ok(Err(error)) => Some(error.to_string()),
            Err(error) => Some(error.to_string()),
        };
        if let Some(error) = &failed {
            tracing::error!(%error, "cannot write the state file; sites will not come back after a restart");
        }
        *self.unsaved.lock().unwrap_or_else(|p| p.into_inner()) = failed.map(|error| {
            format!(
                "not remembered: cannot write {}: {error}; a restarted daemon brings back \
                 the sites of the last good write",
                path.display()
            )
        });
    }
}

/// What `spec` asks that the site of `config` was not brought up with, if anything.
/// Only what was asked for counts: `up` with no `--port` or `--host` is content with any,
/// and `--drafts` is a switch, so only its presence can differ.
fn other_options(config: &SiteConfig, spec: &SiteSpec, host: &ports::Host) -> Option<String> {
    let mut differences = Vec::new();
    if let Some(port) = spec.port.filter(|&port| port != 0 && port != config.port) {
        differences.push(format!("--port {port} asked, serving on {}", config.port));
    }
    if spec.host.is_some() && (host.ip != config.host.ip || host.name != config.host.name) {
        differences.push(format!(
            "--host {} asked, listening on {}",
            spec.host.as_deref().unwrap_or_default(),
            config.host.ip
        ));
    }
    if spec.drafts && !config.drafts {
        differences.push("--drafts asked, built without drafts".to_string());
    }
    if let Some(with) = spec
        .with
        .as_deref()
        .filter(|&w| Some(w) != config.with.as_deref())
    {
        let now = config
            .with
            .as_deref()
            .unwrap_or("the builder the site called for");
        differences.push(format!("--with {with} asked, built with {now}"));
    }
    (!differences.is_empty()).then(|| differences.join("; "))
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
