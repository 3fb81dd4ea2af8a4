//! Talking to the daemon: connect (starting it when asked), the version handshake, and
//! one method per RPC with a deadline chosen for what it does.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sited_proto::{Error, Hello, PROTOCOL_VERSION, Paths, SiteInfo, SiteSpec, SitedClient, Target};
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
}

impl Failure {
    pub fn usage(message: String) -> Failure {
        Failure::Usage(message)
    }

    pub fn site(reason: String) -> Failure {
        Failure::Site(reason)
    }

    pub fn exit_code(&self) -> u8 {
        match self {
            Failure::Usage(_) => 2,
            Failure::Unreachable { .. } => 3,
            Failure::Daemon(_) | Failure::Site(_) => 1,
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
        launch(&paths)?;
        Daemon::connect(&paths)
            .await?
            .ok_or_else(|| Failure::Unreachable {
                message: "the daemon started but its socket does not answer".into(),
                hint: Some(format!("see {}", paths.log_file.display())),
            })
    }

    pub async fn up(
        &self,
        root: PathBuf,
        port: Option<u16>,
        drafts: bool,
        host: Option<String>,
    ) -> Result<SiteInfo, Failure> {
        let spec = SiteSpec {
            root,
            port,
            drafts,
            host,
        };
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
    launch(&paths)
}

/// `sitectl daemon stop`: asks for a clean shutdown and waits until the daemon is gone.
pub async fn stop() -> Result<(), Failure> {
    let paths = Paths::from_env().map_err(Failure::paths)?;
    let Some(daemon) = Daemon::connect(&paths).await? else {
        println!("sited is not running");
        return Ok(());
    };
    let pid = daemon.hello.pid;
    daemon
        .client
        .shutdown(deadline(STOP_DEADLINE))
        .await
        .map_err(Failure::rpc)?;
    // The daemon unlinks its lock file just before it lets go of the lock; once the
    // file is gone a new daemon can start.
    let started = Instant::now();
    while paths.lock.exists() || paths.socket.exists() {
        if started.elapsed() > STOP_DEADLINE {
            return Err(Failure::Unreachable {
                message: format!(
                    "sited (pid {pid}) did not exit within {}s",
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
    println!("sited stopped (pid {pid})");
    Ok(())
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
