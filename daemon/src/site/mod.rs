//! One site: an actor task that owns the site's lifecycle, its builds and its HTTP server.
//! The registry holds a [`SiteHandle`] and talks to the task through it; the task
//! publishes its state on a watch channel so `ps` never waits on a busy site.

pub mod state;

use std::net::TcpListener as StdTcpListener;
use std::path::PathBuf;
use std::sync::Arc;

use sited_proto::SiteInfo;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::build::{self, BuildOptions, Output};
pub use state::Lifecycle;

/// What a site is, fixed for its life.
#[derive(Debug, Clone)]
pub struct SiteConfig {
    /// Canonical root.
    pub root: PathBuf,
    pub port: u16,
    /// The address it listens on, and the name it was given by.
    pub host: crate::ports::Host,
    pub drafts: bool,
    /// Milliseconds since the Unix epoch.
    pub started_at_ms: u64,
}

/// Messages the registry sends a site.
#[derive(Debug)]
pub enum Command {
    /// Build again and publish the result.
    Rebuild,
}

/// The registry's end of a site.
#[derive(Debug)]
pub struct SiteHandle {
    pub config: SiteConfig,
    state: watch::Receiver<Lifecycle>,
    commands: mpsc::Sender<Command>,
    token: CancellationToken,
}

impl SiteHandle {
    /// Starts the site's task on `tracker`. The listener is already bound: binding is
    /// how the registry reserved the port.
    pub fn spawn(
        config: SiteConfig,
        listener: StdTcpListener,
        token: CancellationToken,
        tracker: &TaskTracker,
    ) -> SiteHandle {
        let (state_tx, state) = watch::channel(Lifecycle::Starting);
        let (commands, command_rx) = mpsc::channel(8);
        let span = tracing::info_span!(parent: None, "site", port = config.port, root = %config.root.display());
        let actor = Actor {
            config: config.clone(),
            state: state_tx,
            commands: command_rx,
            token: token.clone(),
            tracker: tracker.clone(),
        };
        tracker.spawn(actor.run(listener).instrument(span));
        SiteHandle {
            config,
            state,
            commands,
            token,
        }
    }

    pub fn lifecycle(&self) -> Lifecycle {
        self.state.borrow().clone()
    }

    pub fn info(&self) -> SiteInfo {
        info(&self.config, &self.state.borrow())
    }

    /// Waits until the first build is done (or the site failed or stopped).
    pub async fn settled(&self) -> SiteInfo {
        let mut state = self.state.clone();
        let _ = state.wait_for(Lifecycle::is_settled).await;
        self.info()
    }

    /// Asks for a rebuild; a no-op if one is already queued.
    pub fn rebuild(&self) {
        let _ = self.commands.try_send(Command::Rebuild);
    }

    /// Cancels the site and waits until it has let go of everything it held.
    pub async fn stop(&self) -> SiteInfo {
        self.token.cancel();
        let mut state = self.state.clone();
        // An error means the task is gone (it ended or panicked): nothing is held.
        let _ = state.wait_for(Lifecycle::is_stopped).await;
        let mut info = self.info();
        info.state = sited_proto::SiteState::Stopped;
        info
    }
}

fn info(config: &SiteConfig, state: &Lifecycle) -> SiteInfo {
    let last_build = state.last_build().cloned();
    SiteInfo {
        port: config.port,
        url: config.host.url(config.port),
        root: config.root.clone(),
        state: state.to_wire(),
        pages: last_build.as_ref().map_or(0, |b| b.pages),
        last_build,
        started_at_ms: config.started_at_ms,
        drafts: config.drafts,
    }
}

/// The site's task.
struct Actor {
    config: SiteConfig,
    state: watch::Sender<Lifecycle>,
    commands: mpsc::Receiver<Command>,
    token: CancellationToken,
    /// Where the HTTP server task is spawned, so daemon shutdown waits for it too.
    tracker: TaskTracker,
}

impl Actor {
    fn transition(
        &self,
        action: impl FnOnce(&mut Lifecycle) -> Result<(), state::IllegalTransition>,
    ) {
        self.state.send_modify(|state| {
            if let Err(error) = action(state) {
                tracing::error!(%error, "site state machine refused a move");
            }
        });
    }

    async fn run(mut self, listener: StdTcpListener) {
        tracing::info!("starting");
        let published = self.first_build().await;
        if let Some((output_tx, output_rx)) = published {
            match listener
                .set_nonblocking(true)
                .and_then(|()| tokio::net::TcpListener::from_std(listener))
            {
                Ok(listener) => {
                    let serve_config = crate::serve::ServeConfig {
                        hosts: crate::serve::HostPolicy::new(
                            self.config.host.ip,
                            self.config.host.name.clone(),
                        ),
                        limits: crate::serve::Limits::default(),
                    };
                    let server = crate::serve::serve(
                        listener,
                        output_rx,
                        serve_config,
                        self.token.child_token(),
                    );
                    let server = self.tracker.spawn(server.in_current_span());
                    self.serve_until_cancelled(server, &output_tx).await;
                }
                Err(error) => {
                    self.transition(|s| s.fail(format!("cannot serve: {error}")));
                    self.token.cancelled().await;
                }
            }
        } else {
            drop(listener);
            self.token.cancelled().await;
        }
        self.transition(Lifecycle::stop);
        self.transition(Lifecycle::stopped);
        tracing::info!("stopped");
    }

    /// Runs the first build; `None` if it could not run at all (the site is Failed) or
    /// the site was cancelled meanwhile.
    async fn first_build(
        &mut self,
    ) -> Option<(watch::Sender<Arc<Output>>, crate::serve::Published)> {
        self.transition(Lifecycle::begin_build);
        let output = tokio::select! {
            () = self.token.cancelled() => return None,
            output = self.build() => output,
        };
        match output {
            Ok(output) => {
                let report = output.report.clone().expect("builds always report");
                log_report(&report);
                self.transition(|s| s.finish_build(report));
                let (tx, rx) = watch::channel(Arc::new(output));
                Some((tx, rx))
            }
            Err(reason) => {
                self.transition(|s| s.fail(reason));
                None
            }
        }
    }

    /// Builds off the async runtime. A panic in the builder is this site's failure.
    async fn build(&self) -> Result<Output, String> {
        let root = self.config.root.clone();
        let options = BuildOptions {
            drafts: self.config.drafts,
        };
        let (tx, rx) = tokio::sync::oneshot::channel();
        rayon::spawn(move || {
            let result = std::panic::catch_unwind(|| build::build(&root, &options));
            let _ = tx.send(result);
        });
        match rx.await {
            Ok(Ok(output)) => Ok(output),
            Ok(Err(_)) => Err("the builder panicked; see the daemon log".to_string()),
            Err(_) => Err("the build was lost".to_string()),
        }
    }

    async fn serve_until_cancelled(
        &mut self,
        mut server: tokio::task::JoinHandle<()>,
        output: &watch::Sender<Arc<Output>>,
    ) {
        let mut handle_alive = true;
        loop {
            tokio::select! {
                _ = &mut server => break,
                command = self.commands.recv(), if handle_alive => match command {
                    Some(Command::Rebuild) => self.rebuild(output).await,
                    None => {
                        // The registry dropped its handle: nobody can stop us later.
                        handle_alive = false;
                        self.token.cancel();
                    }
                },
            }
        }
    }

    async fn rebuild(&mut self, output: &watch::Sender<Arc<Output>>) {
        self.transition(Lifecycle::begin_build);
        let result = tokio::select! {
            () = self.token.cancelled() => return,
            result = self.build() => result,
        };
        match result {
            Ok(new) => {
                let report = new.report.clone().expect("builds always report");
                log_report(&report);
                // Publish whole: a request sees the old build or the new one.
                output.send_replace(Arc::new(new));
                self.transition(|s| s.finish_build(report));
            }
            Err(reason) => self.transition(|s| s.fail(reason)),
        }
    }
}

fn log_report(report: &sited_proto::BuildReport) {
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
