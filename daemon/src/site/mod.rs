//! One site: an actor task that owns the site's lifecycle, its builds, its watch and its
//! HTTP server. The registry holds a [`SiteHandle`] and talks to the task through it;
//! the task publishes its status on a watch channel so `ps` never waits on a busy site.

pub mod state;

use std::net::TcpListener as StdTcpListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sited_proto::{BuildReport, SiteInfo};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::build::content::{ChangeKind, classify};
use crate::build::{self, BuildOptions, Builder, Change as BuildChange, Output};
use crate::progress::Progress;
use crate::serve::livereload::{Change, LiveError, LiveState};
use crate::watch::{Mode, Registration, Watcher};
pub use state::Lifecycle;

/// A burst of saves ends once the files have been quiet this long.
const QUIET: Duration = Duration::from_millis(8);
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
    /// Set for a site that has no task (it failed before it could start): the handle
    /// moves its state itself.
    placeholder: Option<watch::Sender<Status>>,
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
    ) -> SiteHandle {
        let (status_tx, status) = watch::channel(Status {
            lifecycle: Lifecycle::Starting,
            warnings: Vec::new(),
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
            live,
            builder: None,
            progress: progress.clone(),
        };
        tracker.spawn(actor.run(listener).instrument(span));
        SiteHandle {
            config,
            status,
            commands,
            token,
            progress,
            placeholder: None,
        }
    }

    /// A site that could not start (e.g. its remembered root is gone): listed as failed
    /// with the reason, holding nothing, until it is taken down or brought up again.
    pub fn failed(config: SiteConfig, reason: String) -> SiteHandle {
        let (status_tx, status) = watch::channel(Status {
            lifecycle: Lifecycle::Failed {
                reason,
                last_build: None,
            },
            warnings: Vec::new(),
        });
        SiteHandle {
            config,
            status,
            commands: mpsc::channel(1).0,
            token: CancellationToken::new(),
            progress: Arc::default(),
            placeholder: Some(status_tx),
        }
    }

    pub fn lifecycle(&self) -> Lifecycle {
        self.status.borrow().lifecycle.clone()
    }

    pub fn info(&self) -> SiteInfo {
        let mut info = info(&self.config, &self.status.borrow());
        if matches!(
            info.state,
            sited_proto::SiteState::Building | sited_proto::SiteState::Rebuilding
        ) {
            info.progress = self.progress.get();
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

    /// Cancels the site and waits until it has let go of everything it held.
    pub async fn stop(&self) -> SiteInfo {
        if let Some(status) = &self.placeholder {
            status.send_modify(|status| {
                let _ = status.lifecycle.stop();
                let _ = status.lifecycle.stopped();
            });
        }
        self.token.cancel();
        let mut status = self.status.clone();
        // An error means the task is gone (it ended or panicked): nothing is held.
        let _ = status.wait_for(|s| s.lifecycle.is_stopped()).await;
        let mut info = self.info();
        info.state = sited_proto::SiteState::Stopped;
        info
    }
}

fn info(config: &SiteConfig, status: &Status) -> SiteInfo {
    let last_build = status.lifecycle.last_build().cloned();
    SiteInfo {
        port: config.port,
        url: config.host.url(config.port),
        root: config.root.clone(),
        state: status.lifecycle.to_wire(),
        pages: last_build.as_ref().map_or(0, |b| b.pages),
        last_build,
        started_at_ms: config.started_at_ms,
        drafts: config.drafts,
        warnings: status.warnings.clone(),
        attached: config.attached,
        progress: None,
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
    /// What browsers with the page open follow.
    live: watch::Sender<LiveState>,
    /// Keeps what the last build made; lent to the build thread while it builds.
    builder: Option<Builder>,
    /// Counted by every build of this site; the handle reads it for `ps`.
    progress: Arc<Progress>,
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
        let watch = self.start_watching();
        match self.first_build().await {
            Some(output) => match listener
                .set_nonblocking(true)
                .and_then(|()| tokio::net::TcpListener::from_std(listener))
            {
                Ok(listener) => {
                    let (output_tx, output_rx) = watch::channel(Arc::new(output));
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
                        ..crate::serve::ServeConfig::default()
                    };
                    let server = crate::serve::serve(
                        listener,
                        output_rx,
                        serve_config,
                        self.token.child_token(),
                    );
                    let server = self.tracker.spawn(server.in_current_span());
                    let serving = Serving {
                        output: output_tx,
                        watch,
                    };
                    self.serve_until_cancelled(server, serving).await;
                }
                Err(error) => {
                    self.transition(|s| s.fail(format!("cannot serve: {error}")));
                    self.token.cancelled().await;
                }
            },
            None => {
                drop(listener);
                drop(watch);
                self.token.cancelled().await;
            }
        }
        self.transition(Lifecycle::stop);
        self.transition(Lifecycle::stopped);
        tracing::info!("stopped");
    }

    fn start_watching(&self) -> Option<Registration> {
        let watcher = self.watcher.as_ref()?;
        match watcher.watch(&self.config.root) {
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

    /// Runs the first build; `None` if it could not run at all (the site is Failed) or
    /// the site was cancelled meanwhile.
    async fn first_build(&mut self) -> Option<Output> {
        self.transition(Lifecycle::begin_build);
        let token = self.token.clone();
        let output = tokio::select! {
            () = token.cancelled() => return None,
            output = self.build(None) => output,
        };
        match output {
            Ok(output) => {
                let report = output.report.clone().expect("builds always report");
                log_report(&report);
                self.live
                    .send_modify(|live| live.errors = live_errors(&report));
                self.transition(|s| s.finish_build(report));
                Some(output)
            }
            Err(reason) => {
                self.transition(|s| s.fail(reason));
                None
            }
        }
    }

    /// Builds off the async runtime, on the rayon pool. `changes: None` reads the whole
    /// site afresh. A panic in the builder becomes an error, and the next build starts
    /// from scratch.
    async fn build(&mut self, changes: Option<Vec<BuildChange>>) -> Result<Output, String> {
        let mut builder = self.builder.take().unwrap_or_else(|| {
            let options = BuildOptions {
                drafts: self.config.drafts,
                progress: Some(self.progress.clone()),
            };
            Builder::new(self.config.root.clone(), options)
        });
        self.progress.reset();
        let (tx, rx) = tokio::sync::oneshot::channel();
        rayon::spawn(move || {
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                builder.build(changes.as_deref())
            }));
            let _ = tx.send(result.map(|output| (builder, output)));
        });
        match rx.await {
            Ok(Ok((builder, output))) => {
                self.builder = Some(builder);
                Ok(output)
            }
            Ok(Err(panic)) => Err(format!(
                "the builder panicked: {}",
                build::panic_message(&panic)
            )),
            Err(_) => Err("the build was lost".to_string()),
        }
    }

    async fn serve_until_cancelled(
        &mut self,
        mut server: tokio::task::JoinHandle<()>,
        serving: Serving,
    ) {
        let mut handle_alive = true;
        let inbox = serving.watch.as_ref().map(|w| w.inbox.clone());
        loop {
            tokio::select! {
                _ = &mut server => break,
                command = self.commands.recv(), if handle_alive => match command {
                    Some(Command::Rebuild { done }) => {
                        self.rebuild(&serving, None).await;
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
                    let paths = self.debounce(inbox).await;
                    self.on_change(&serving, paths).await;
                }
            }
        }
    }

    /// Waits for a burst of changes to end, and returns the changed paths (`None`: the
    /// watcher lost events; everything must be re-read).
    async fn debounce(&self, inbox: &crate::watch::Inbox) -> Option<Vec<PathBuf>> {
        let started = Instant::now();
        loop {
            let left = MAX_DEBOUNCE.saturating_sub(started.elapsed());
            if left.is_zero() {
                break;
            }
            tokio::select! {
                () = inbox.changed() => continue,
                () = tokio::time::sleep(QUIET.min(left)) => break,
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
        let has_content_dir = root.join("content").is_dir();
        let whole_site = [root.clone()];
        let kinds: Vec<(ChangeKind, &Path)> = match &paths {
            Some(paths) => paths
                .iter()
                .map(|p| (classify(&root, p, has_content_dir), p.as_path()))
                .filter(|(kind, _)| *kind != ChangeKind::Ignored)
                .collect(),
            None => vec![(ChangeKind::Root, whole_site[0].as_path())],
        };
        if kinds.is_empty() {
            return;
        }
        tracing::debug!(changes = kinds.len(), "files changed");
        self.rebuild(serving, Some(&kinds)).await;
    }

    async fn rebuild(&mut self, serving: &Serving, changes: Option<&[(ChangeKind, &Path)]>) {
        if matches!(self.status.borrow().lifecycle, Lifecycle::Failed { .. }) {
            return;
        }
        self.transition(Lifecycle::begin_build);
        let build_changes = changes.map(|changes| {
            changes
                .iter()
                .map(|(kind, path)| BuildChange {
                    kind: *kind,
                    path: path.to_path_buf(),
                })
                .collect()
        });
        let token = self.token.clone();
        let result = tokio::select! {
            () = token.cancelled() => return,
            result = self.build(build_changes) => result,
        };
        match result {
            Ok(new) => {
                let report = new.report.clone().expect("builds always report");
                log_report(&report);
                let css = changes.and_then(|changes| css_only(&self.config.root, changes));
                // Publish whole: a request sees the old build or the new one.
                serving.output.send_replace(Arc::new(new));
                self.live.send_modify(|live| {
                    live.generation += 1;
                    live.errors = live_errors(&report);
                    (live.change, live.css) = match css {
                        Some(urls) => (Change::Css, urls),
                        None => (Change::Reload, Vec::new()),
                    };
                });
                self.transition(|s| s.finish_build(report));
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
                report.finished_at_ms = build::now_ms();
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

/// Resolves when the inbox has news; never without one.
async fn changed(inbox: Option<&crate::watch::Inbox>) {
    match inbox {
        Some(inbox) => inbox.changed().await,
        None => std::future::pending().await,
    }
}

/// If every change is a stylesheet, the URL paths they are served at.
fn css_only(root: &Path, changes: &[(ChangeKind, &Path)]) -> Option<Vec<String>> {
    if changes.is_empty() {
        return None;
    }
    changes
        .iter()
        .map(|(kind, path)| {
            let is_css = path.extension().is_some_and(|e| e == "css");
            let base = match kind {
                ChangeKind::Static => root.join("static"),
                ChangeKind::Asset if root.join("content").is_dir() => root.join("content"),
                ChangeKind::Asset => root.to_path_buf(),
                _ => return None,
            };
            let rel = path.strip_prefix(base).ok().filter(|_| is_css)?;
            Some(format!("/{}", rel.to_str()?.replace('\\', "/")))
        })
        .collect()
}

fn live_errors(report: &BuildReport) -> Vec<LiveError> {
    report.errors.iter().map(LiveError::from).collect()
}

fn log_report(report: &BuildReport) {
    for error in &report.errors {
        tracing::warn!(%error, "build error");
    }
    tracing::info!(
        pages = report.pages,
        files = report.files,
        errors = report.errors.len(),
        ms = report.duration_ms,
        "built"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stylesheet_only_changes_are_recognised() {
        let root = Path::new("/nonexistent-site");
        let css = root.join("static/custom.css");
        let page = root.join("content/a.md");
        assert_eq!(
            css_only(root, &[(ChangeKind::Static, css.as_path())]),
            Some(vec!["/custom.css".to_string()])
        );
        assert_eq!(
            css_only(
                root,
                &[
                    (ChangeKind::Static, css.as_path()),
                    (ChangeKind::Markdown, page.as_path())
                ]
            ),
            None
        );
        let logo = root.join("static/logo.png");
        assert_eq!(
            css_only(root, &[(ChangeKind::Static, logo.as_path())]),
            None
        );
        assert_eq!(css_only(root, &[]), None);
    }
}
