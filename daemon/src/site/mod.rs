//! One site: an actor task that owns the site's lifecycle, its builds, its watch and its
//! HTTP server. The registry holds a [`SiteHandle`] and talks to the task through it;
//! the task publishes its status on a watch channel so `ps` never waits on a busy site.

mod builder;
mod builds;
pub mod early;
mod publish;
pub mod state;

use std::net::TcpListener as StdTcpListener;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sited_builder::{BuildResult, Cancel, Changes, Progress, Reload};
use sited_proto::{BuildReport, SiteInfo};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use publish::Cause;

use crate::hooks::TestHooks;
use crate::serve::Output;
use crate::serve::livereload::{Change, LiveError, LiveState};
use crate::watch::{Mode, Registration, Watcher};
use builder::Builder;
use early::Early;
pub use state::Lifecycle;

/// A burst of saves ends once the files have been quiet this long.
const QUIET: Duration = Duration::from_millis(8);
/// A lone change (none handled within [`QUIET`] before it) waits only this long for the
/// rest of its save: an editor's save is several events (truncate, write, close; or
/// write a temp file, rename), microseconds apart, and should make one build.
const SETTLE: Duration = Duration::from_millis(1);
/// ...or at the latest this long after its first event, however busy the files are.
const MAX_DEBOUNCE: Duration = Duration::from_millis(100);

/// What a site is, fixed for its life.
#[derive(Debug, Clone)]
pub struct SiteConfig {
    /// Canonical root.
    pub root: PathBuf,
    pub port: u16,
    /// The address it listens on, and the name it was given by.
    pub host: crate::ports::Host,
    pub drafts: bool,
    /// Milliseconds since the Unix epoch; with the port, identifies this site's life.
    pub started_at_ms: u64,
    /// Lives only as long as the client connection that brought it up.
    pub attached: bool,
    /// `up --with`: `native`, `hugo`, `zola` or `mdbook`; `None` lets the site decide.
    pub with: Option<String>,
    /// The daemon's state dir, where external builds write and pages are spilled
    /// (`None`: a temp dir).
    pub state_dir: Option<PathBuf>,
}

impl SiteConfig {
    /// Where this site's build keeps what it writes: the daemon's state dir, else a
    /// folder in the temp dir.
    pub fn work_dir(&self) -> PathBuf {
        self.state_dir
            .clone()
            .unwrap_or_else(|| std::env::temp_dir().join("sited"))
    }
}

/// What every site gets from the daemon around it, besides its config.
#[derive(Debug, Clone, Default)]
pub struct SiteEnv {
    /// Behaviour only tests ask for.
    pub hooks: TestHooks,
    /// The daemon's own folders (state, runtime), canonical: a site that holds one
    /// neither builds nor watches it, so its log and state are never served and its
    /// log's growth never rebuilds the site (S27).
    pub exclude: Vec<PathBuf>,
}

/// Messages the registry sends a site.
#[derive(Debug)]
pub enum Command {
    /// Build again from scratch and publish the result; `done` is told once it is out.
    Rebuild { done: oneshot::Sender<()> },
}

/// What `ps` shows of a site, published by its task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub lifecycle: Lifecycle,
    pub warnings: Vec<String>,
    /// `native` or the program that builds the site; empty until it is chosen.
    pub builder: String,
}

/// The registry's end of a site.
#[derive(Debug)]
pub struct SiteHandle {
    pub config: SiteConfig,
    status: watch::Receiver<Status>,
    commands: mpsc::Sender<Command>,
    token: CancellationToken,
    /// Pages rendered by the running build, shown by `ps` while the site builds.
    progress: Arc<Progress>,
}

impl SiteHandle {
    /// Starts the site's task on `tracker`. The listener is already bound: binding is
    /// how the registry reserved the port.
    pub fn spawn(
        config: SiteConfig,
        listener: StdTcpListener,
        token: CancellationToken,
        tracker: &TaskTracker,
        watcher: Option<Watcher>,
        pool: crate::serve::Pool,
        env: SiteEnv,
    ) -> SiteHandle {
        let (status_tx, status) = watch::channel(Status {
            lifecycle: Lifecycle::Starting,
            warnings: Vec::new(),
            builder: String::new(),
        });
        let (commands, command_rx) = mpsc::channel(8);
        let span = tracing::info_span!(parent: None, "site", port = config.port, root = %config.root.display());
        let session = format!("{}-{}", config.port, config.started_at_ms);
        let (live, _) = watch::channel(LiveState::initial(session, Vec::new()));
        let progress = Arc::new(Progress::default());
        let actor = Actor {
            config: config.clone(),
            status: status_tx,
            commands: command_rx,
            token: token.clone(),
            tracker: tracker.clone(),
            watcher,
            pool,
            hooks: env.hooks,
            exclude: env.exclude,
            live,
            site: None,
            progress: progress.clone(),
            cancel: Cancel::default(),
            wanted: None,
            building: Arc::new(tokio::sync::Semaphore::new(1)),
        };
        tracker.spawn(actor.run(listener).instrument(span));
        SiteHandle {
            config,
            status,
            commands,
            token,
            progress,
        }
    }

    pub fn lifecycle(&self) -> Lifecycle {
        self.status.borrow().lifecycle.clone()
    }

    pub fn info(&self) -> SiteInfo {
        let mut info = info(&self.config, &self.status.borrow());
        // Stopping from the moment it was asked, not only once the task reacts: `ps`
        // shows a site on its way down at once, and never as serving after `down`.
        if self.is_stopping() && info.state != sited_proto::SiteState::Stopped {
            info.state = sited_proto::SiteState::Stopping;
        }
        if matches!(
            info.state,
            sited_proto::SiteState::Building | sited_proto::SiteState::Rebuilding
        ) {
            info.progress = publish::progress(&self.progress);
        }
        info
    }

    /// Waits until the first build is done (or the site failed or stopped).
    pub async fn settled(&self) -> SiteInfo {
        let mut status = self.status.clone();
        let _ = status.wait_for(|s| s.lifecycle.is_settled()).await;
        self.info()
    }

    /// Builds the site again from scratch and returns once that build is out (or the
    /// site failed or stopped: a failed site is not rebuilt).
    pub async fn rebuild(&self) -> SiteInfo {
        let mut status = self.status.clone();
        let gone = |s: &Status| {
            matches!(
                s.lifecycle,
                Lifecycle::Failed { .. } | Lifecycle::Stopping { .. } | Lifecycle::Stopped { .. }
            )
        };
        let (done, built) = oneshot::channel();
        let asked = async {
            if self.commands.send(Command::Rebuild { done }).await.is_ok() {
                let _ = built.await;
            }
        };
        tokio::select! {
            () = asked => {}
            _ = status.wait_for(gone) => {}
        }
        self.info()
    }

    /// Whether the site was asked to stop (it may still be letting go).
    pub fn is_stopping(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Asks the site to stop, without waiting.
    pub fn begin_stop(&self) {
        self.token.cancel();
    }

    /// Cancels the site and waits until it has let go of everything it held.
    pub async fn stop(&self) -> SiteInfo {
        self.token.cancel();
        let mut status = self.status.clone();
        // An error means the task is gone (it ended or panicked): nothing is held.
        let _ = status.wait_for(|s| s.lifecycle.is_stopped()).await;
        let mut info = self.info();
        info.state = sited_proto::SiteState::Stopped;
        info
    }
}

/// What `ps` shows of a site that could not start: failed, with the reason.
pub fn failed_info(config: &SiteConfig, reason: &str) -> SiteInfo {
    let status = Status {
        lifecycle: Lifecycle::Failed {
            reason: reason.to_string(),
            last_build: None,
        },
        builder: String::new(),
        warnings: Vec::new(),
    };
    info(config, &status)
}

fn info(config: &SiteConfig, status: &Status) -> SiteInfo {
    let last_build = status.lifecycle.last_build().cloned();
    SiteInfo {
        port: config.port,
        url: config.host.url(config.port),
        address: std::net::SocketAddr::from((config.host.ip, config.port)).to_string(),
        root: config.root.clone(),
        state: status.lifecycle.to_wire(),
        pages: last_build.as_ref().map_or(0, |b| b.pages),
        last_build,
        started_at_ms: config.started_at_ms,
        drafts: config.drafts,
        warnings: status.warnings.clone(),
        attached: config.attached,
        progress: None,
        builder: status.builder.clone(),
    }
}

/// The site's task.
struct Actor {
    config: SiteConfig,
    status: watch::Sender<Status>,
    commands: mpsc::Receiver<Command>,
    token: CancellationToken,
    /// Where the HTTP server task is spawned, so daemon shutdown waits for it too.
    tracker: TaskTracker,
    watcher: Option<Watcher>,
    /// The daemon's connection threads, which serve this site too.
    pool: crate::serve::Pool,
    hooks: TestHooks,
    /// The daemon's own folders: never part of a site, though one may lie inside it.
    exclude: Vec<PathBuf>,
    /// What browsers with the page open follow.
    live: watch::Sender<LiveState>,
    /// The builder, keeping what the last build made; lent to the build thread while it
    /// builds.
    site: Option<Builder>,
    /// Held by the thread of the build in progress: a site that goes down waits for it,
    /// so no generator outlives its site.
    building: Arc<tokio::sync::Semaphore>,
    /// Counted by every build of this site; the handle reads it for `ps`.
    progress: Arc<Progress>,
    /// Raised when the site goes down, so a build in progress stops at its next page.
    cancel: Cancel,
    /// What requests during the first build ask the builder for (closed after it).
    wanted: Option<sited_builder::Wanted>,
}

/// What the site is serving, while it serves.
struct Serving {
    output: watch::Sender<Arc<Output>>,
    watch: Option<Registration>,
}

impl Actor {
    fn transition(
        &self,
        action: impl FnOnce(&mut Lifecycle) -> Result<(), state::IllegalTransition>,
    ) {
        self.status.send_modify(|status| {
            if let Err(error) = action(&mut status.lifecycle) {
                tracing::error!(%error, "site state machine refused a move");
            }
        });
    }

    fn warn(&self, warning: String) {
        tracing::warn!("{warning}");
        self.status
            .send_modify(|status| status.warnings.push(warning));
    }

    async fn run(mut self, listener: StdTcpListener) {
        tracing::info!("starting");
        // Watch before the first build, so a save during it is not missed.
        let started = Instant::now();
        let watch = self.start_watching().await;
        tracing::debug!(watch_us = started.elapsed().as_micros(), "watch registered");
        let (output_tx, output_rx) = watch::channel(Arc::new(Output::default()));
        let early = Early::new(output_tx.clone(), self.hooks.hold_first_build.clone());
        self.wanted = Some(early.wanted().clone());
        let listener = if self.choose_builder() {
            listener
                .set_nonblocking(true)
                .and_then(|()| tokio::net::TcpListener::from_std(listener))
                .map_err(|error| self.transition(|s| s.fail(format!("cannot serve: {error}"))))
                .ok()
        } else {
            None
        };
        match listener {
            Some(listener) => {
                let serving = Serving {
                    output: output_tx,
                    watch,
                };
                self.serve(listener, output_rx, early, serving).await;
            }
            None => {
                early.finish();
                unwatch(watch).await;
                self.token.cancelled().await;
            }
        }
        self.transition(Lifecycle::stop);
        self.cancel.cancel();
        let _ = self.building.acquire().await;
        self.transition(Lifecycle::stopped);
        tracing::info!("stopped");
    }

    /// Serves from the start: the server answers while the first build runs (see
    /// [`early`]), then the site serves and rebuilds until it is cancelled. A first build
    /// that fails or is cancelled stops the server.
    async fn serve(
        &mut self,
        listener: tokio::net::TcpListener,
        output_rx: watch::Receiver<Arc<Output>>,
        early: Early,
        serving: Serving,
    ) {
        let serve_config = crate::serve::ServeConfig {
            hosts: crate::serve::HostPolicy::new(
                self.config.host.ip,
                self.config.host.name.clone(),
            ),
            live: Some(crate::serve::livereload::Live::new(
                self.live.subscribe(),
                output_rx.clone(),
            )),
            pool: self.pool.clone(),
            root: Some(self.config.root.clone()),
            limits: self.limits(),
            test_panic: self.hooks.panic_request,
            early: Some(Arc::new(early.clone())),
            ..crate::serve::ServeConfig::default()
        };
        let server_token = self.token.child_token();
        let server = crate::serve::serve(listener, output_rx, serve_config, server_token.clone());
        let server = self.tracker.spawn(server.in_current_span());
        match self.first_build().await {
            Some((built, report)) => {
                // Keeps what serving made of the resources served early (the same ones).
                let output = publish::servable(&built, Some(&serving.output.borrow()));
                // The builder's own copy is all that is left, which an edit then changes
                // in place instead of copying.
                drop(built);
                // Published before the site says it serves, and before waiting requests
                // are told: they are answered from it.
                serving.output.send_replace(Arc::new(output));
                early.finish();
                self.transition(|s| s.finish_build(report));
                self.serve_until_cancelled(server, &serving).await;
                unwatch(serving.watch).await;
            }
            None => {
                early.finish();
                server_token.cancel();
                let _ = server.await;
                unwatch(serving.watch).await;
                self.token.cancelled().await;
            }
        }
    }

    /// What the site's server bounds: the defaults, unless a test hook says otherwise.
    fn limits(&self) -> crate::serve::Limits {
        let mut limits = crate::serve::Limits::default();
        if let Some(timeout) = self.hooks.idle_timeout {
            limits.header_read_timeout = timeout;
        }
        limits
    }

    /// Registers the site's files with the watcher. A recursive registration walks the
    /// whole tree (and waits for any other site's registration): it runs off the async
    /// workers, which other sites' requests and RPCs need meanwhile.
    async fn start_watching(&self) -> Option<Registration> {
        let watcher = self.watcher.clone()?;
        let root = self.config.root.clone();
        let ignore = self.exclude.clone();
        let registered =
            tokio::task::spawn_blocking(move || watcher.watch_ignoring(&root, ignore)).await;
        let registered = match registered {
            Ok(registered) => registered,
            Err(error) => {
                self.warn(format!(
                    "not watching for changes: the registration failed: {error}"
                ));
                return None;
            }
        };
        match registered {
            Ok(registration) => {
                if let Mode::Polling { reason } = &registration.mode {
                    self.warn(reason.clone());
                }
                Some(registration)
            }
            Err(error) => {
                self.warn(format!("not watching for changes: {error}"));
                None
            }
        }
    }

    /// Chooses the site's builder; `false` (and the site Failed) if the choice cannot be
    /// met.
    fn choose_builder(&mut self) -> bool {
        match Builder::choose(
            &self.config,
            &self.progress,
            &self.cancel,
            self.hooks.panic_function,
            &self.exclude,
            self.wanted.as_ref(),
        ) {
            Ok((builder, warning)) => {
                tracing::info!(builder = builder.name(), "builder chosen");
                let name = builder.name().to_string();
                self.status.send_modify(|status| status.builder = name);
                self.site = Some(builder);
                if let Some(warning) = warning {
                    self.warn(warning);
                }
                true
            }
            Err(reason) => {
                self.transition(|s| s.fail(reason));
                false
            }
        }
    }

    /// Runs the first build: its servable output and report, for the caller to publish;
    /// `None` if it failed (the site is Failed) or the site was cancelled meanwhile.
    async fn first_build(&mut self) -> Option<(Arc<sited_builder::Output>, BuildReport)> {
        self.transition(Lifecycle::begin_build);
        let (token, cancel) = (self.token.clone(), self.cancel.clone());
        let built = tokio::select! {
            () = token.cancelled() => {
                cancel.cancel();
                return None;
            }
            built = self.build(Changes::Everything) => built,
        };
        match built {
            Ok(built) => {
                let report = publish::wire_report(&built.report);
                publish::log_report(&built.report, &Cause::First, &self.config.root);
                self.live.send_modify(|live| {
                    live.errors = live_errors(&report);
                    live.warnings = live_warnings(&report);
                });
                Some((built.output, report))
            }
            Err(reason) => {
                self.transition(|s| s.fail(reason));
                None
            }
        }
    }

    /// The site's builder, made on first use (and again after a build was lost).
    fn site(&mut self) -> &mut Builder {
        self.site.get_or_insert_with(|| {
            let (progress, cancel) = (&self.progress, &self.cancel);
            let panic_function = self.hooks.panic_function;
            let (exclude, wanted) = (&self.exclude, self.wanted.as_ref());
            Builder::choose(
                &self.config,
                progress,
                cancel,
                panic_function,
                exclude,
                wanted,
            )
            .map(|(builder, _)| builder)
            .unwrap_or_else(|_| {
                let config = &self.config;
                Builder::native(config, progress, cancel, panic_function, exclude, wanted)
            })
        })
    }

    /// Builds off the async runtime, on a pool of its own (see [`builds`]), whose thread
    /// outlives a generator it runs. A panic in the builder becomes
    /// an error, and the next build starts from scratch.
    async fn build(&mut self, changes: Changes) -> Result<BuildResult, String> {
        self.site();
        let mut site = self.site.take().expect("made above");
        self.progress.reset();
        let permit = self.building.clone().acquire_owned().await;
        // The site's span, so what the build logs (a generator's output) is the site's.
        let span = tracing::Span::current();
        let built = builds::run(move || {
            let _entered = span.enter();
            let result = site.build(changes);
            drop(permit);
            (site, result)
        });
        match built.await {
            Ok((site, result)) => {
                self.site = Some(site);
                result.map_err(|failure| failure.to_string())
            }
            Err(lost) => Err(lost.to_string()),
        }
    }

    async fn serve_until_cancelled(
        &mut self,
        mut server: tokio::task::JoinHandle<()>,
        serving: &Serving,
    ) {
        let mut handle_alive = true;
        let inbox = serving.watch.as_ref().map(|w| w.inbox.clone());
        // When the last change was handled: a change soon after it is part of a burst.
        let mut last_change: Option<Instant> = None;
        loop {
            tokio::select! {
                _ = &mut server => break,
                command = self.commands.recv(), if handle_alive => match command {
                    Some(Command::Rebuild { done }) => {
                        self.rebuild(serving, Changes::Everything, &Cause::Asked).await;
                        let _ = done.send(());
                    }
                    None => {
                        // The registry dropped its handle: nobody can stop us later.
                        handle_alive = false;
                        self.token.cancel();
                    }
                },
                () = changed(inbox.as_deref()) => {
                    let inbox = inbox.as_deref().expect("only woken with an inbox");
                    let woken = Instant::now();
                    let paths = self.debounce(inbox, last_change).await;
                    tracing::debug!(settle_us = woken.elapsed().as_micros(), "changes settled");
                    self.on_change(serving, paths).await;
                    last_change = Some(Instant::now());
                }
            }
        }
    }

    /// Returns the changed paths (`None`: the watcher lost events; everything must be
    /// re-read). A lone change (none handled within [`QUIET`] before it) waits only
    /// [`SETTLE`] for the rest of its save, so a save does not wait out a window; a change
    /// that follows one closely (a burst, or saves made while the last build ran) waits
    /// for the burst to be quiet for [`QUIET`], so the burst costs one more build, not one
    /// per event; so does a new folder, whose files are still to come. Either way, while a file is written to and not closed yet (a save under
    /// way: `open(O_TRUNC)` has emptied it, its bytes are still to come), it waits for
    /// the close, up to [`MAX_DEBOUNCE`]: a build must not read, and keep as the last
    /// good page, a file half-written.
    async fn debounce(
        &self,
        inbox: &crate::watch::Inbox,
        last_change: Option<Instant>,
    ) -> Option<Vec<PathBuf>> {
        let started = Instant::now();
        let lone = last_change.is_none_or(|last| started.duration_since(last) >= QUIET);
        loop {
            let left = MAX_DEBOUNCE.saturating_sub(started.elapsed());
            if left.is_zero() {
                break;
            }
            // A new folder is no lone save: what goes into it is still coming.
            let lone = lone && !inbox.made_folder();
            let quiet = match (inbox.is_writing(), lone) {
                (true, _) => left,
                (false, true) => SETTLE,
                (false, false) => QUIET,
            };
            tokio::select! {
                () = inbox.changed() => continue,
                () = tokio::time::sleep(quiet.min(left)) => break,
            }
        }
        let changes = inbox.take();
        (!changes.rescan).then(|| changes.paths.into_iter().collect())
    }

    async fn on_change(&mut self, serving: &Serving, paths: Option<Vec<PathBuf>>) {
        let root = self.config.root.clone();
        if !root.is_dir() {
            let reason = format!("site root {} was deleted or moved", root.display());
            if !matches!(self.status.borrow().lifecycle, Lifecycle::Failed { .. }) {
                tracing::warn!(
                    "{reason}; `sitectl up` brings the site back once it is there again"
                );
                self.transition(|s| s.fail(reason.clone()));
                self.live.send_modify(|live| {
                    live.generation += 1;
                    live.change = Change::Reload;
                    live.errors = vec![LiveError {
                        location: root.display().to_string(),
                        message: reason,
                    }];
                });
            }
            return;
        }
        // The builder alone knows which paths are its sources.
        match paths {
            Some(paths) if !self.site().affects_output(&paths) => {}
            Some(paths) => {
                tracing::debug!(?paths, "files changed");
                let cause = Cause::Changed(&paths);
                self.rebuild(serving, Changes::Paths(paths.clone()), &cause)
                    .await;
            }
            None => {
                self.rebuild(serving, Changes::Everything, &Cause::Rescan)
                    .await
            }
        }
    }

    async fn rebuild(&mut self, serving: &Serving, changes: Changes, cause: &Cause<'_>) {
        if matches!(self.status.borrow().lifecycle, Lifecycle::Failed { .. }) {
            return;
        }
        self.transition(Lifecycle::begin_build);
        let (token, cancel) = (self.token.clone(), self.cancel.clone());
        let started = Instant::now();
        let result = tokio::select! {
            () = token.cancelled() => {
                cancel.cancel();
                return;
            }
            result = self.build(changes) => result,
        };
        let built_at = Instant::now();
        match result {
            Ok(built) => {
                let report = publish::wire_report(&built.report);
                publish::log_report(&built.report, cause, &self.config.root);
                // A request sees the old build or the new one, never a mix.
                let listed = self.site().lists_its_changes();
                match (&built.reload, listed) {
                    // Only these URLs differ from what is served: a one-page edit costs
                    // that page, not a pass over the site's map (60-80 ms at 100k pages).
                    (Reload::Pages(urls), true) => serving.output.send_modify(|published| {
                        publish::apply(&built.output, Arc::make_mut(published), urls);
                        debug_assert!(publish::agrees(published, &built.output));
                    }),
                    (Reload::Nothing, true) => {}
                    _ => {
                        let output =
                            publish::servable(&built.output, Some(&serving.output.borrow()));
                        serving.output.send_replace(Arc::new(output));
                    }
                }
                self.live.send_modify(|live| {
                    live.generation += 1;
                    live.errors = live_errors(&report);
                    live.warnings = live_warnings(&report);
                    // Each page's event stream says what its URL serves now, and the
                    // page updates itself only if that differs from what it shows: one
                    // announcement serves every kind of change but stylesheets alone.
                    (live.change, live.css) = match built.reload {
                        Reload::Styles(urls) => (Change::Css, urls),
                        Reload::Full | Reload::Pages(_) | Reload::Nothing => {
                            (Change::Reload, Vec::new())
                        }
                    };
                });
                self.transition(|s| s.finish_build(report));
                // Where an edit's time goes: bench/'s reload-latency harness reads these.
                tracing::debug!(
                    build_us = (built_at - started).as_micros(),
                    builder_us = built.report.duration.as_micros(),
                    publish_us = built_at.elapsed().as_micros(),
                    "rebuild timed"
                );
            }
            Err(reason) => {
                // Keep serving the last good build; report the failure like any build error.
                tracing::error!("{reason}");
                let mut report = self
                    .status
                    .borrow()
                    .lifecycle
                    .last_build()
                    .cloned()
                    .expect("a rebuild follows a finished build");
                report.finished_at_ms = crate::clock::now_ms();
                report.errors = vec![sited_proto::BuildError {
                    file: self.config.root.clone(),
                    line: None,
                    column: None,
                    message: reason,
                }];
                self.live.send_modify(|live| {
                    live.generation += 1;
                    live.errors = live_errors(&report);
                });
                self.transition(|s| s.finish_build(report));
            }
        }
    }
}

/// Stops watching, off the async workers: taking the watches off a large tree takes a
/// while, and waits for any other site's registration in progress. Awaited, so that a
/// site brought up again on the same root registers after this one is gone.
async fn unwatch(watch: Option<Registration>) {
    if let Some(watch) = watch {
        let _ = tokio::task::spawn_blocking(move || drop(watch)).await;
    }
}

/// Resolves when the inbox has news; never without one.
async fn changed(inbox: Option<&crate::watch::Inbox>) {
    match inbox {
        Some(inbox) => inbox.changed().await,
        None => std::future::pending().await,
    }
}

fn live_errors(report: &BuildReport) -> Vec<LiveError> {
    report.errors.iter().map(LiveError::from).collect()
}

fn live_warnings(report: &BuildReport) -> Vec<LiveError> {
    report.warnings.iter().map(LiveError::from).collect()
}
