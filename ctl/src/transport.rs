//! Talking to the daemon, and nothing else: connect, the version handshake, starting it,
//! and one method per RPC with a deadline chosen for what it does. Nothing here prints:
//! what the user sees is `output`'s, what a command does is `commands`'.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sited_proto::{
    Error, Hello, LogLine, LogQuery, PROTOCOL_VERSION, Paths, SiteInfo, SiteSpec, SitedClient,
    Target,
};
use tarpc::client::RpcError;
use tarpc::context;

use crate::failure::Failure;

impl Failure {
    fn rpc(error: RpcError) -> Failure {
        let failure = match &error {
            RpcError::DeadlineExceeded => Failure::unreachable("the daemon did not answer in time"),
            _ => Failure::unreachable("lost the daemon mid-call").because_of(&error),
        };
        failure.hint("`sitectl daemon status` tells whether it still runs; its log has details")
    }

    pub fn paths(error: sited_proto::PathsError) -> Failure {
        use sited_proto::PathsError;
        let hint = match &error {
            PathsError::NoHome => "set HOME, or SITED_HOME to a directory for sited's files",
            PathsError::SocketPathTooLong { .. } => "set SITED_HOME to a shorter directory",
            PathsError::CreateDir { .. } => "check that its parent directory is yours and writable",
            PathsError::NotOwner { .. } => "set SITED_HOME to a directory of your own",
        };
        Failure::unreachable("cannot use sited's directories")
            .because_of(&error)
            .hint(hint)
    }
}

/// How long each call may take.
const HELLO_DEADLINE: Duration = Duration::from_secs(5);
/// A ping (a `hello`) while waiting for a long call: the daemon answers it at once,
/// whatever it is building.
const PING_DEADLINE: Duration = Duration::from_secs(5);
const QUICK_DEADLINE: Duration = Duration::from_secs(30);
/// `up`, `restart` and `rebuild` wait for a build of the site, which for a big site
/// takes a while.
const BUILD_DEADLINE: Duration = Duration::from_secs(600);
/// How long a client whose launch lost the race waits for the winner to answer.
const RACE_DEADLINE: Duration = Duration::from_secs(2);
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
    /// Connects to a running daemon; `Ok(None)` if none runs. Refuses a daemon that
    /// speaks another protocol version.
    pub async fn connect(paths: &Paths) -> Result<Option<Daemon>, Failure> {
        let Some(daemon) = Daemon::connect_any(paths).await? else {
            return Ok(None);
        };
        let hello = &daemon.hello;
        if hello.protocol != PROTOCOL_VERSION {
            let side = if hello.protocol < PROTOCOL_VERSION {
                "older"
            } else {
                "newer"
            };
            return Err(Failure::unreachable(format!(
                "the running daemon (sited {}, pid {}) is {side} than this sitectl {}",
                hello.version,
                hello.pid,
                sited_proto::VERSION,
            ))
            .because(format!(
                "it speaks protocol {}, this sitectl speaks {PROTOCOL_VERSION}",
                hello.protocol
            ))
            .hint(
                "`sitectl daemon restart` replaces it with the sited next to this sitectl \
                 (remembered sites come back on their ports)",
            ));
        }
        Ok(Some(daemon))
    }

    /// Connects and says hello, whatever protocol the daemon speaks: `hello` and
    /// `shutdown` work across versions, which is all stopping a daemon needs.
    pub async fn connect_any(paths: &Paths) -> Result<Option<Daemon>, Failure> {
        let started = Instant::now();
        let client = match connect_socket(paths, started).await {
            // No daemon held the lock when the socket was tried, but one may have taken
            // it since (several clients starting one at once): it binds its socket a
            // moment after, so it gets what is left of the grace.
            Err(error) if is_absent(&error) && lock_holder(paths).is_some() => {
                connect_socket(paths, started).await
            }
            other => other,
        };
        let client = match client {
            Ok(client) => client,
            Err(error) if is_absent(&error) => {
                return match lock_holder(paths) {
                    None => Ok(None),
                    Some(pid) => Err(Failure::unreachable(format!(
                        "sited (pid {pid}) runs but does not answer on {}",
                        paths.socket.display()
                    ))
                    .because(error)
                    .hint(format!(
                        "it makes a deleted socket again within a second; `sitectl daemon \
                         stop` (or `kill {pid}`) stops it; its log is {}",
                        paths.log_file.display()
                    ))),
                };
            }
            Err(error) => {
                return Err(Failure::unreachable(format!(
                    "cannot connect to the daemon at {}",
                    paths.socket.display()
                ))
                .because(error)
                .hint("`sitectl daemon status` tells whether it runs"));
            }
        };
        let hello = client
            .hello(deadline(HELLO_DEADLINE), PROTOCOL_VERSION)
            .await
            .map_err(|error| match (error, lock_holder(paths)) {
                (RpcError::DeadlineExceeded, Some(pid)) => Failure::unreachable(format!(
                    "sited (pid {pid}) did not answer the handshake within {}s",
                    HELLO_DEADLINE.as_secs()
                ))
                .hint(frozen_hint(pid)),
                (error, _) => Failure::rpc(error),
            })?;
        Ok(Some(Daemon { client, hello }))
    }

    /// After a failed launch: the daemon another client started meanwhile, if any.
    /// Clients that find no daemon at the same moment (several `sitectl up` at once) all
    /// launch one; the first takes the lock and the others' exit "already running".
    /// What they wanted, a running daemon, is there: the winner, which took the lock just
    /// before binding its socket, so it answers at once or within a moment.
    pub async fn started_by_another(paths: &Paths) -> Result<Option<Daemon>, Failure> {
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

    /// Brings a site up; returns once its first build is done.
    pub async fn up(&self, spec: SiteSpec) -> Result<SiteInfo, Failure> {
        let answer = self.client.up(deadline(BUILD_DEADLINE), spec).await;
        answer.map_err(Failure::rpc)?.map_err(Failure::daemon)
    }

    pub async fn down(&self, target: Target) -> Result<Vec<SiteInfo>, Failure> {
        self.client
            .down(deadline(QUICK_DEADLINE), target)
            .await
            .map_err(|error| self.failure(error, "`down`", QUICK_DEADLINE))?
            .map_err(Failure::daemon)
    }

    /// Takes the site on `port` down and up again; returns once it has built.
    pub async fn restart(&self, port: u16) -> Result<SiteInfo, Failure> {
        let answer = self.client.restart(deadline(BUILD_DEADLINE), port).await;
        answer.map_err(Failure::rpc)?.map_err(Failure::daemon)
    }

    /// Builds the site on `port` from scratch; returns once the build is done.
    pub async fn rebuild(&self, port: u16) -> Result<SiteInfo, Failure> {
        let answer = self.client.rebuild(deadline(BUILD_DEADLINE), port).await;
        answer.map_err(Failure::rpc)?.map_err(Failure::daemon)
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
                    .ok_or_else(|| {
                        Failure::daemon(Error::NoSuchSite {
                            target: Target::Root(root),
                        })
                    })
            }
            Target::All => unreachable!("parse_target never says all"),
        }
    }

    pub async fn logs(&self, query: LogQuery) -> Result<Vec<LogLine>, Failure> {
        self.logs_or_refusal(query).await?.map_err(Failure::daemon)
    }

    /// A `logs` call, with the daemon's refusal apart from a failure to call.
    pub async fn logs_or_refusal(
        &self,
        query: LogQuery,
    ) -> Result<Result<Vec<LogLine>, Error>, Failure> {
        let wait = Duration::from_millis(query.wait_ms) + QUICK_DEADLINE;
        self.client
            .logs(deadline(wait), query)
            .await
            .map_err(Failure::rpc)
    }

    pub async fn ps(&self) -> Result<Vec<SiteInfo>, Failure> {
        self.client
            .ps(deadline(QUICK_DEADLINE))
            .await
            .map_err(|error| self.failure(error, "`ps`", QUICK_DEADLINE))
    }

    /// Checks that the daemon still answers, while `waiting_for` (what a long call
    /// waits for, said if it does not).
    pub async fn ping(&self, waiting_for: &str) -> Result<(), Failure> {
        match self
            .client
            .hello(deadline(PING_DEADLINE), PROTOCOL_VERSION)
            .await
        {
            Ok(_) => Ok(()),
            Err(RpcError::DeadlineExceeded) => {
                let pid = self.hello.pid;
                Err(Failure::unreachable(format!(
                    "sited (pid {pid}) stopped answering while {waiting_for}"
                ))
                .because(format!(
                    "no answer to a ping within {}s",
                    PING_DEADLINE.as_secs()
                ))
                .hint(frozen_hint(pid)))
            }
            Err(error) => Err(Failure::rpc(error)),
        }
    }

    /// A failed call, naming the daemon and, past the deadline, the call it did not
    /// answer.
    fn failure(&self, error: RpcError, call: &str, limit: Duration) -> Failure {
        let pid = self.hello.pid;
        match error {
            RpcError::DeadlineExceeded => Failure::unreachable(format!(
                "sited (pid {pid}) did not answer {call} within {}s",
                limit.as_secs()
            ))
            .hint(frozen_hint(pid)),
            error => Failure::rpc(error),
        }
    }
}

/// What to do about a daemon that does not answer.
fn frozen_hint(pid: u32) -> String {
    format!(
        "it may be stopped (`kill -CONT {pid}` resumes it) or stuck (`kill {pid}`, then any \
         command starts a new one); its log may say more"
    )
}

/// How long a client waits for the socket of a daemon that runs (it holds the lock) but
/// has no socket file: one that is starting, or one whose socket was deleted, which it
/// makes again within a second (S28).
const SOCKET_GRACE: Duration = Duration::from_secs(5);

/// Connects to the socket; while it is missing or refused but a daemon holds the lock,
/// tries again until [`SOCKET_GRACE`] after `started`.
async fn connect_socket(paths: &Paths, started: Instant) -> std::io::Result<SitedClient> {
    loop {
        match sited_proto::transport::connect(&paths.socket).await {
            Err(error)
                if is_absent(&error)
                    && started.elapsed() < SOCKET_GRACE
                    && lock_holder(paths).is_some() =>
            {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            other => return other,
        }
    }
}

/// Whether connecting failed because nobody listens on the socket (yet): no file, or a
/// file nobody accepts on.
fn is_absent(error: &std::io::Error) -> bool {
    matches!(
        error.kind(),
        std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
    )
}

/// The pid of the daemon that holds this home's lock, if one does: the lock, not the
/// socket, says whether a daemon runs (the socket file can be deleted under it).
pub fn lock_holder(paths: &Paths) -> Option<u32> {
    let file = std::fs::File::open(&paths.lock).ok()?;
    match file.try_lock_shared() {
        Err(std::fs::TryLockError::WouldBlock) => std::fs::read_to_string(&paths.lock)
            .ok()?
            .trim()
            .parse()
            .ok(),
        _ => None,
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

/// Runs `sited --daemonize`, which returns once the new daemon answers; returns what it
/// said (its version, pid and log).
pub fn launch(paths: &Paths) -> Result<String, Failure> {
    let exe = sited_binary();
    let output = Command::new(&exe)
        .arg("--daemonize")
        .stdin(Stdio::null())
        .output()
        .map_err(|error| {
            Failure::unreachable("cannot start the daemon")
                .because(format!("cannot run {}: {error}", exe.display()))
                .hint("install sited next to sitectl, or on your PATH")
        })?;
    if output.status.success() {
        return Ok(String::from_utf8_lossy(&output.stdout).trim().to_string());
    }
    // sited says `error: …` and `  caused by: …` lines: they become the causes.
    let said = String::from_utf8_lossy(&output.stderr);
    let mut failure = Failure::unreachable("the daemon did not start");
    for line in said.lines().map(str::trim).filter(|line| !line.is_empty()) {
        let line = line.strip_prefix("error: ").unwrap_or(line);
        failure = failure.because(line.strip_prefix("caused by: ").unwrap_or(line));
    }
    if failure.causes.is_empty() {
        failure = failure.because(format!("sited --daemonize: {}", output.status));
    }
    Err(failure.hint(format!("the daemon's log is {}", paths.log_file.display())))
}

/// Stops the daemon answering on this home's socket, if one does, and waits until it has
/// let go of the lock. Returns its pid.
pub async fn stop_daemon(paths: &Paths) -> Result<Option<u32>, Failure> {
    let (pid, answer) = match Daemon::connect_any(paths).await {
        Ok(None) => return Ok(None),
        Ok(Some(daemon)) => {
            // The daemon may close the connection before its answer is out: it is going
            // away, which is what was asked. Whether it really goes is checked below.
            let answer = daemon.client.shutdown(deadline(STOP_DEADLINE)).await;
            (daemon.hello.pid, answer.map_err(|error| error.to_string()))
        }
        // It runs (it holds the lock) but cannot be called: SIGTERM takes the same
        // clean way out as the `shutdown` call.
        Err(failure) => {
            let Some(pid) = lock_holder(paths) else {
                return Err(failure);
            };
            let killed = Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
            (pid, killed.map(drop).map_err(|error| error.to_string()))
        }
    };
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
            let failure = Failure::unreachable(format!(
                "sited (pid {pid}) did not exit within {}s",
                STOP_DEADLINE.as_secs()
            ));
            let failure = match &answer {
                Ok(()) => failure,
                Err(error) => failure.because(format!("the shutdown call: {error}")),
            };
            return Err(failure.hint(format!(
                "`kill {pid}`; its log is {}",
                paths.log_file.display()
            )));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(Some(pid))
}
