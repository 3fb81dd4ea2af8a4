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
use std::sync::{Arc, Mutex, Weak};

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

/// What the registry holds for a port: a site that runs, or one that could not start.
/// A failed site holds no listener, task or watch, and cannot be given one: to serve
/// again it is replaced by a fresh live site.
#[derive(Debug, Clone)]
pub enum Entry {
    Live(Arc<SiteHandle>),
    Failed(Arc<FailedSite>),
}

/// A site that could not start (its remembered root is gone, its port was taken): listed
/// with the reason until it is taken down or brought up again.
#[derive(Debug)]
pub struct FailedSite {
    pub config: SiteConfig,
    pub reason: String,
}

impl Entry {
    pub fn config(&self) -> &SiteConfig {
        match self {
            Entry::Live(site) => &site.config,
            Entry::Failed(site) => &site.config,
        }
    }

    pub fn info(&self) -> SiteInfo {
        match self {
            Entry::Live(site) => site.info(),
            Entry::Failed(site) => crate::site::failed_info(&site.config, &site.reason),
        }
    }

    /// Whether this is the very entry `other` is (not merely one for the same port).
    /// A site that cannot serve: one that never started, or a live one that failed
    /// since (its root was deleted). `up` of its root replaces it.
    pub fn is_failed(&self) -> bool {
        match self {
            Entry::Failed(_) => true,
            Entry::Live(site) => matches!(site.lifecycle(), crate::site::Lifecycle::Failed { .. }),
        }
    }

    fn same(&self, other: &Entry) -> bool {
        match (self, other) {
            (Entry::Live(a), Entry::Live(b)) => Arc::ptr_eq(a, b),
            (Entry::Failed(a), Entry::Failed(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }

    /// A live site on its way down: it still holds its port and root until it is gone.
    fn stopping(&self) -> Option<&Arc<SiteHandle>> {
        match self {
            Entry::Live(site) if site.is_stopping() => Some(site),
            _ => None,
        }
    }

    async fn stop(&self) -> SiteInfo {
        match self {
            Entry::Live(site) => site.stop().await,
            Entry::Failed(_) => {
                let mut info = self.info();
                info.state = sited_proto::SiteState::Stopped;
                info
            }
        }
    }
}

/// An attached site's tie to the client connection that brought it up: dropping it (the
/// connection closed) takes the site down. Only [`Registry::start`] makes one, for the
/// site it just created.
#[derive(Debug)]
pub struct Attachment {
    registry: Weak<Registry>,
    site: Arc<SiteHandle>,
}

impl Attachment {
    pub fn port(&self) -> u16 {
        self.site.config.port
    }
}

impl Drop for Attachment {
    fn drop(&mut self) {
        // The site lets go of its port at once; the registry forgets it once it is gone.
        self.site.begin_stop();
        let Some(registry) = self.registry.upgrade() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let site = self.site.clone();
        let tracker = registry.config.tracker.clone();
        tracker.spawn_on(
            async move {
                if registry.detach(&site).await {
                    tracing::info!(port = site.config.port, root = %site.config.root.display(), "client went away: attached site stopped");
                }
            },
            &runtime,
        );
    }
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

/// The kind of pseudo-file system `root` lies on (/proc, /sys, ...), if it does (S23).
fn pseudo_file_system(root: &Path) -> Option<&'static str> {
    let stat = rustix::fs::statfs(root).ok()?;
    // Magic numbers from linux/magic.h.
    #[allow(clippy::unreadable_literal)]
    let kind = match stat.f_type as u64 {
        0x9fa0 => "proc",
        0x62656572 => "sysfs",
        0x1cd1 => "devpts",
        0x27e0eb => "cgroup",
        0x63677270 => "cgroup2",
        0x64626720 => "debugfs",
        0x74726163 => "tracefs",
        0x73636673 => "securityfs",
        0xcafe4a11 => "bpf",
        0x62656570 => "configfs",
        0x6165676c => "pstore",
        0x65735543 => "fusectl",
        _ => return None,
    };
    Some(kind)
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
    if let Some(kind) = pseudo_file_system(root) {
        return Err(Error::RootUnreadable {
            path: root.to_path_buf(),
            message: format!(
                "it is on a {kind} pseudo-file system, which holds no site (and whose \
                 endless files no watch can follow)"
            ),
        });
    }
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

    fn registry(store: Option<StateStore>) -> Arc<Registry> {
        Arc::new(Registry::new(RegistryConfig {
            token: CancellationToken::new(),
            tracker: TaskTracker::new(),
            watcher: Watcher::new().ok(),
            pool: crate::serve::Pool::default(),
            store,
            logs: LogHub::default(),
            hooks: TestHooks::default(),
            own_dirs: Vec::new(),
        }))
    }

    fn spec(root: &Path, port: Option<u16>) -> SiteSpec {
        SiteSpec {
            root: root.to_path_buf(),
            port,
            drafts: false,
            attach: false,
            host: None,
            with: None,
        }
    }

    #[tokio::test]
    async fn up_is_idempotent_and_down_frees_the_port() {
        let registry = registry(None);
        let dir = site_dir();
        let first = registry.up(spec(dir.path(), Some(0))).await.unwrap().0;
        assert_eq!(first.state, sited_proto::SiteState::Serving);
        assert_eq!(first.pages, 2, "home and 404");
        let again = registry.up(spec(dir.path(), None)).await.unwrap().0;
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
            .await
            .map(|(info, _)| info);
        assert!(
            matches!(missing, Err(Error::RootMissing { .. })),
            "{missing:?}"
        );
        let holder = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let port = holder.local_addr().unwrap().port();
        let dir = site_dir();
        let taken = registry
            .up(spec(dir.path(), Some(port)))
            .await
            .map(|(info, _)| info);
        assert!(matches!(taken, Err(Error::PortInUse { .. })), "{taken:?}");
        assert!(registry.ps().is_empty());
    }

    #[tokio::test]
    async fn restart_keeps_the_port_and_builds_anew() {
        let registry = registry(None);
        let dir = site_dir();
        let first = registry.up(spec(dir.path(), Some(0))).await.unwrap().0;
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
        let up = registry.up(spec(dir.path(), Some(0))).await.unwrap().0;
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
        let (up, attachment) = registry
            .up(SiteSpec {
                attach: true,
                ..spec(dir.path(), Some(0))
            })
            .await
            .unwrap();
        let error = registry.restart(up.port).await.unwrap_err();
        assert_eq!(error, Error::SiteAttached { port: up.port });
        assert_eq!(attachment.expect("made attached").port(), up.port);
    }

    #[tokio::test]
    async fn dropping_the_attachment_takes_the_site_down() {
        let registry = registry(None);
        let dir = site_dir();
        let (up, attachment) = registry
            .up(SiteSpec {
                attach: true,
                ..spec(dir.path(), Some(0))
            })
            .await
            .unwrap();
        // Only the call that created the site holds its life.
        let (again, none) = registry.up(spec(dir.path(), None)).await.unwrap();
        assert_eq!(again.port, up.port);
        assert!(none.is_none());
        drop(attachment);
        assert_eq!(
            registry.ps()[0].state,
            sited_proto::SiteState::Stopping,
            "listed as stopping from the moment the client went"
        );
        // The site and the registry's detaching both run on the tracker.
        let tasks = registry.config.tracker.clone();
        tasks.close();
        tasks.wait().await;
        assert!(registry.ps().is_empty());
        std::net::TcpListener::bind(("127.0.0.1", up.port)).expect("port is free again");
    }

    #[tokio::test]
    async fn ps_shows_stopping_while_down_waits() {
        let registry = registry(None);
        let dir = site_dir();
        let (up, _) = registry.up(spec(dir.path(), Some(0))).await.unwrap();
        let target = Target::Port(up.port);
        let down = registry.down(&target);
        let mut down = std::pin::pin!(down);
        // One poll asks the site to stop; it cannot be gone before its task has run.
        assert!(futures::poll!(down.as_mut()).is_pending());
        let listed = registry.ps();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].state, sited_proto::SiteState::Stopping);
        let stopped = down.await.unwrap();
        assert_eq!(stopped[0].state, sited_proto::SiteState::Stopped);
        assert!(registry.ps().is_empty());
    }

    #[tokio::test]
    async fn up_of_a_root_on_its_way_down_waits_and_starts_afresh() {
        let registry = registry(None);
        let dir = site_dir();
        let (first, _) = registry.up(spec(dir.path(), Some(0))).await.unwrap();
        let Some(Entry::Live(site)) = registry.entry(first.port) else {
            panic!("live");
        };
        site.begin_stop();
        let (second, _) = registry.up(spec(dir.path(), None)).await.unwrap();
        assert_eq!(second.state, sited_proto::SiteState::Serving);
        assert!(second.started_at_ms >= first.started_at_ms);
        assert_eq!(registry.ps().len(), 1);
        assert!(!registry.ps()[0].state.name().contains("stop"));
    }

    #[tokio::test]
    async fn rebuild_reads_everything_again_and_waits_for_the_build() {
        let registry = registry(None);
        let dir = site_dir();
        let up = registry.up(spec(dir.path(), Some(0))).await.unwrap().0;
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
        let kept = registry.up(spec(a.path(), Some(0))).await.unwrap().0;
        let (attached, _attachment) = registry
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
            with: None,
        };
        let good = PersistedSite {
            root: dir.path().to_path_buf(),
            port,
            drafts: false,
            host: None,
            with: None,
        };
        registry.restore(&[good, gone]).await;
        let sites = registry.ps();
        assert_eq!(sites.len(), 2);
        let failed = sites.iter().find(|s| s.port == 1).unwrap();
        assert!(
            matches!(&failed.state, sited_proto::SiteState::Failed { reason } if reason.contains("could not be restored")),
            "{failed:?}"
        );
        let Some(Entry::Live(handle)) = registry.entry(port) else {
            panic!("the restored site is live");
        };
        assert_eq!(
            handle.settled().await.state,
            sited_proto::SiteState::Serving
        );
        // A failed placeholder can be taken down like any site.
        registry.down(&Target::Port(1)).await.unwrap();
    }
}

/// S23 (issue 12.6, issue 16.3): one site's watch registration never stalls the others.
#[cfg(test)]
mod registration {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A site of `dirs` folders of `per_dir` Markdown files each.
    fn big_site(dirs: usize, per_dir: usize) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("index.md"), "# Big\n").unwrap();
        for d in 0..dirs {
            let sub = dir.path().join(format!("d{d}"));
            fs::create_dir(&sub).unwrap();
            for f in 0..per_dir {
                fs::write(sub.join(format!("f{f}.txt")), "x").unwrap();
            }
        }
        dir
    }

    /// The status line of a GET of `/` on `port`.
    async fn status_line(port: u16) -> String {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut reply = Vec::new();
        stream.read_to_end(&mut reply).await.unwrap();
        let reply = String::from_utf8_lossy(&reply);
        reply.lines().next().unwrap_or_default().to_string()
    }

    /// On a single-threaded runtime every task shares one thread: a registration walking
    /// its tree there would hold every other task until it is done. So the order proves
    /// it: another site answers while the big site is still registering (its state is
    /// `starting` until its watch is in place and its first build begins).
    #[tokio::test(flavor = "current_thread")]
    async fn s23_a_30000_file_site_registering_does_not_hold_another_sites_requests() {
        let registry = Arc::new(Registry::new(RegistryConfig {
            token: CancellationToken::new(),
            tracker: TaskTracker::new(),
            watcher: Some(Watcher::new().expect("a file watcher")),
            pool: crate::serve::Pool::default(),
            store: None,
            logs: LogHub::default(),
            hooks: TestHooks::default(),
            own_dirs: Vec::new(),
        }));
        let small = tempfile::tempdir().unwrap();
        fs::write(small.path().join("index.md"), "# Small\n").unwrap();
        let spec = |root: &Path| SiteSpec {
            root: root.to_path_buf(),
            port: Some(0),
            drafts: false,
            attach: false,
            host: None,
            with: None,
        };
        let (other, _) = registry.up(spec(small.path())).await.unwrap();
        let big = big_site(300, 100);
        let started = registry.start(spec(big.path())).await.unwrap();
        let answered = status_line(other.port).await;
        let big_state = started.site.info().state;
        assert_eq!(answered, "HTTP/1.1 200 OK");
        assert_eq!(
            big_state,
            sited_proto::SiteState::Starting,
            "the other site answered only once the big one had registered"
        );
        assert_eq!(
            started.site.settled().await.state,
            sited_proto::SiteState::Serving
        );
        registry.stop_all().await;
    }
}
