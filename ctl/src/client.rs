//! Talking to the daemon: connect (starting it when asked), the version handshake, and
//! one method per RPC with a deadline chosen for what it does.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sited_proto::{
    Error, Hello, LogLine, LogQuery, PROTOCOL_VERSION, Paths, SiteInfo, SiteSpec, SitedClient,
    Target,
};
use tarpc::client::RpcError;
use tarpc::context;

/// Why a command failed, and what its exit code is.
#[derive(Debug)]
pub enum Failure {
    /// The command line was wrong (exit 2).
    Usage(String),
    /// No daemon could be reached or started (exit 3).
    Unreachable {
        message: String,
        hint: Option<String>,
    },
    /// The daemon refused (exit 1).
    Daemon(Error),
    /// A site came up failed (exit 1).
    Site(String),
    /// `sitectl service` could not do all it was asked (exit 1).
    Service {
        message: String,
        hint: Option<String>,
    },
}

impl Failure {
    pub fn usage(message: String) -> Failure {
        Failure::Usage(message)
    }

    pub fn site(reason: String) -> Failure {
        Failure::Site(reason)
    }

    pub fn service(message: String, hint: Option<String>) -> Failure {
        Failure::Service { message, hint }
    }

    pub fn exit_code(&self) -> u8 {
        match self {
            Failure::Usage(_) => 2,
            Failure::Unreachable { .. } => 3,
            Failure::Daemon(_) | Failure::Site(_) | Failure::Service { .. } => 1,
        }
    }

    fn rpc(error: RpcError) -> Failure {
        Failure::Unreachable {
            message: format!("lost the daemon mid-call: {error}"),
            hint: Some(
                "`sitectl daemon status` tells whether it still runs; its log has details".into(),
            ),
        }
    }

    fn paths(error: sited_proto::PathsError) -> Failure {
        Failure::Unreachable {
            message: error.to_string(),
            hint: None,
        }
    }
}

/// How long each call may take.
const HELLO_DEADLINE: Duration = Duration::from_secs(5);
const QUICK_DEADLINE: Duration = Duration::from_secs(30);
/// `up` waits for the first build of the site, which for a big site takes a while.
const UP_DEADLINE: Duration = Duration::from_secs(600);
const STOP_DEADLINE: Duration = Duration::from_secs(10);
/// How long one `logs` call waits for a new line before the client asks again.
const LOG_WAIT: Duration = Duration::from_secs(20);
/// How long a client whose launch lost the race waits for the winner to answer.
const RACE_DEADLINE: Duration = Duration::from_secs(2);

fn deadline(after: Duration) -> context::Context {
    let mut ctx = context::current();
    ctx.deadline = Instant::now() + after;
    ctx
}

/// A handshaken connection to the daemon.
#[derive(Debug)]
pub struct Daemon {
    client: SitedClient,
    pub hello: Hello,
}

impl Daemon {
    /// Connects to a running daemon; `Ok(None)` if none runs.
    pub async fn connect(paths: &Paths) -> Result<Option<Daemon>, Failure> {
        let client = match sited_proto::transport::connect(&paths.socket).await {
            Ok(client) => client,
            Err(error)
                if matches!(
                    error.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
                ) =>
            {
                return Ok(None);
            }
            Err(error) => {
                return Err(Failure::Unreachable {
                    message: format!("cannot connect to {}: {error}", paths.socket.display()),
                    hint: None,
                });
            }
        };
        let hello = client
            .hello(deadline(HELLO_DEADLINE), PROTOCOL_VERSION)
            .await
            .map_err(Failure::rpc)?;
        if hello.protocol != PROTOCOL_VERSION {
            let side = if hello.protocol < PROTOCOL_VERSION {
                "older"
            } else {
                "newer"
            };
            return Err(Failure::Unreachable {
                message: format!(
                    "the running daemon (sited {}, pid {}) is {side} than this sitectl {} \
                     (protocol {} vs {PROTOCOL_VERSION})",
                    hello.version,
                    hello.pid,
                    sited_proto::VERSION,
                    hello.protocol
                ),
                hint: Some("run `sitectl daemon restart` to start the matching daemon".into()),
            });
        }
        Ok(Some(Daemon { client, hello }))
    }

    /// Connects, starting the daemon first if none runs.
    pub async fn connect_or_start() -> Result<Daemon, Failure> {
        let paths = Paths::from_env().map_err(Failure::paths)?;
        if let Some(daemon) = Daemon::connect(&paths).await? {
            return Ok(daemon);
        }
        if let Err(failure) = launch(&paths) {
            return match Daemon::started_by_another(&paths).await? {
                Some(daemon) => Ok(daemon),
                None => Err(failure),
            };
        }
        Daemon::connect(&paths)
            .await?
            .ok_or_else(|| Failure::Unreachable {
                message: "the daemon started but its socket does not answer".into(),
                hint: Some(format!("see {}", paths.log_file.display())),
            })
    }

    /// After a failed launch: the daemon another client started meanwhile, if any.
    /// Clients that find no daemon at the same moment (several `sitectl up` at once) all
    /// launch one; the first takes the lock and the others' exit "already running".
    /// What they wanted, a running daemon, is there: the winner, which took the lock just
    /// before binding its socket, so it answers at once or within a moment.
    async fn started_by_another(paths: &Paths) -> Result<Option<Daemon>, Failure> {
        let started = Instant::now();
        loop {
            if let Some(daemon) = Daemon::connect(paths).await? {
                return Ok(Some(daemon));
            }
            // No lock file: nobody holds it, so the launch failed for another reason.
            if !paths.lock.exists() || started.elapsed() > RACE_DEADLINE {
                return Ok(None);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    pub async fn up(&self, spec: SiteSpec) -> Result<SiteInfo, Failure> {
        self.client
            .up(deadline(UP_DEADLINE), spec)
            .await
            .map_err(Failure::rpc)?
            .map_err(Failure::Daemon)
    }

    pub async fn down(&self, target: Target) -> Result<Vec<SiteInfo>, Failure> {
        self.client
            .down(deadline(QUICK_DEADLINE), target)
            .await
            .map_err(Failure::rpc)?
            .map_err(Failure::Daemon)
    }

    /// The port of a site given as a port number or a root path.
    pub async fn port_of(&self, target: &str) -> Result<u16, Failure> {
        match parse_target(target) {
            Target::Port(port) => Ok(port),
            Target::Root(root) => {
                let canonical = root.canonicalize().unwrap_or_else(|_| root.clone());
                self.ps()
                    .await?
                    .into_iter()
                    .find(|site| site.root == canonical || site.root == root)
                    .map(|site| site.port)
                    .ok_or(Failure::Daemon(Error::NoSuchSite {
                        target: Target::Root(root),
                    }))
            }
            Target::All => unreachable!("parse_target never says all"),
        }
    }

    async fn logs(&self, query: LogQuery) -> Result<Vec<LogLine>, Failure> {
        let wait = Duration::from_millis(query.wait_ms) + QUICK_DEADLINE;
        self.client
            .logs(deadline(wait), query)
            .await
            .map_err(Failure::rpc)?
            .map_err(Failure::Daemon)
    }

    /// Prints the last `lines` lines of a site's log (`None`: the daemon's), and with
    /// `follow` every new one until Ctrl+C.
    pub async fn print_logs(
        &self,
        port: Option<u16>,
        lines: usize,
        follow: bool,
    ) -> Result<(), Failure> {
        let recent = self
            .logs(LogQuery {
                port,
                after: None,
                limit: lines,
                wait_ms: 0,
            })
            .await?;
        let mut last = recent.last().map_or(0, |line| line.seq);
        crate::output::print_log_lines(&recent);
        if !follow {
            return Ok(());
        }
        loop {
            let query = LogQuery {
                port,
                after: Some(last),
                limit: 10_000,
                wait_ms: LOG_WAIT.as_millis() as u64,
            };
            let lines = tokio::select! {
                lines = self.logs(query) => lines?,
                _ = tokio::signal::ctrl_c() => return Ok(()),
            };
            if let Some(line) = lines.last() {
                last = line.seq;
            }
            crate::output::print_log_lines(&lines);
        }
    }

    /// Follows an attached site's log until Ctrl+C, then takes it down. Any other end of
    /// this process closes the connection, and the daemon takes the site down itself.
    pub async fn serve_attached(&self, site: &SiteInfo) -> Result<(), Failure> {
        let follow = self.print_logs(Some(site.port), 50, true);
        follow.await?;
        let stopped = self.down(Target::Port(site.port)).await?;
        crate::output::print_down(&stopped);
        Ok(())
    }

    pub async fn ps(&self) -> Result<Vec<SiteInfo>, Failure> {
        self.client
            .ps(deadline(QUICK_DEADLINE))
            .await
            .map_err(Failure::rpc)
    }
}

/// A `down` argument: a port number, or else a path.
pub fn parse_target(arg: &str) -> Target {
    match arg.parse::<u16>() {
        Ok(port) => Target::Port(port),
        Err(_) => {
            let path = Path::new(arg);
            Target::Root(std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()))
        }
    }
}

/// The `sited` binary to start: the one installed next to this `sitectl`, else `PATH`.
fn sited_binary() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join("sited")))
        .filter(|candidate| candidate.is_file())
        .unwrap_or_else(|| PathBuf::from("sited"))
}

/// Runs `sited --daemonize`, which returns once the new daemon answers.
fn launch(paths: &Paths) -> Result<(), Failure> {
    let exe = sited_binary();
    let output = Command::new(&exe)
        .arg("--daemonize")
        .stdin(Stdio::null())
        .output()
        .map_err(|error| Failure::Unreachable {
            message: format!("cannot run {}: {error}", exe.display()),
            hint: Some("install sited next to sitectl or on your PATH".into()),
        })?;
    if output.status.success() {
        let said = String::from_utf8_lossy(&output.stdout);
        eprintln!("{}", said.trim());
        return Ok(());
    }
    let said = String::from_utf8_lossy(&output.stderr);
    let message = said
        .lines()
        .map(|line| line.strip_prefix("error: ").unwrap_or(line))
        .collect::<Vec<_>>()
        .join("\n");
    Err(Failure::Unreachable {
        message: if message.is_empty() {
            format!("the daemon did not start ({})", output.status)
        } else {
            message
        },
        hint: Some(format!("the daemon's log is {}", paths.log_file.display())),
    })
}

/// `sitectl daemon start`.
pub async fn start() -> Result<(), Failure> {
    let paths = Paths::from_env().map_err(Failure::paths)?;
    if let Some(daemon) = Daemon::connect(&paths).await? {
        println!(
            "sited {} is already running (pid {})",
            daemon.hello.version, daemon.hello.pid
        );
        return Ok(());
    }
    if let Err(failure) = launch(&paths) {
        let Some(daemon) = Daemon::started_by_another(&paths).await? else {
            return Err(failure);
        };
        println!(
            "sited {} is already running (pid {})",
            daemon.hello.version, daemon.hello.pid
        );
    }
    Ok(())
}

/// `sitectl daemon stop`: asks for a clean shutdown and waits until the daemon is gone.
pub async fn stop() -> Result<(), Failure> {
    let paths = Paths::from_env().map_err(Failure::paths)?;
    match stop_daemon(&paths).await? {
        Some(pid) => println!("sited stopped (pid {pid})"),
        None => println!("sited is not running"),
    }
    Ok(())
}

/// Stops the daemon answering on this home's socket, if one does, and waits until it has
/// let go of the lock. Returns its pid.
pub async fn stop_daemon(paths: &Paths) -> Result<Option<u32>, Failure> {
    let Some(daemon) = Daemon::connect(paths).await? else {
        return Ok(None);
    };
    let pid = daemon.hello.pid;
    // The daemon may close the connection before its answer is out: it is going away,
    // which is what was asked. Whether it really goes is checked below either way.
    let answer = daemon.client.shutdown(deadline(STOP_DEADLINE)).await;
    // The daemon removes its socket file (unless a service manager owns it: socket
    // activation), then unlinks its lock file just before it lets go of the lock. Once
    // the lock no longer names this daemon, a new one can start. (Waiting for the file to
    // vanish would not do: with socket activation the next client may already have
    // started a new daemon that wrote its own pid there.)
    let started = Instant::now();
    let held_by_it =
        || std::fs::read_to_string(&paths.lock).is_ok_and(|held| held.trim() == pid.to_string());
    while held_by_it() {
        if started.elapsed() > STOP_DEADLINE {
            let call = match &answer {
                Ok(()) => String::new(),
                Err(error) => format!(" (the shutdown call: {error})"),
            };
            return Err(Failure::Unreachable {
                message: format!(
                    "sited (pid {pid}) did not exit within {}s{call}",
                    STOP_DEADLINE.as_secs()
                ),
                hint: Some(format!(
                    "`kill {pid}`; its log is {}",
                    paths.log_file.display()
                )),
            });
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(Some(pid))
}

/// `sitectl daemon status`.
pub async fn status() -> Result<(), Failure> {
    let paths = Paths::from_env().map_err(Failure::paths)?;
    match Daemon::connect(&paths).await? {
        Some(daemon) => {
            let sites = daemon.ps().await?;
            println!(
                "sited {} running (pid {}), {} site(s)\n  socket: {}\n  log:    {}",
                daemon.hello.version,
                daemon.hello.pid,
                sites.len(),
                paths.socket.display(),
                paths.log_file.display()
            );
            Ok(())
        }
        None => Err(Failure::Unreachable {
            message: "sited is not running".into(),
            hint: Some("`sitectl daemon start` starts it; `sitectl up` does too".into()),
        }),
    }
}
