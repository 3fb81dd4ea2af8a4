//! `sited --daemonize`: start the daemon detached and return only once it answers.
//!
//! Instead of forking a process that already has threads (the `daemonize` crate's way,
//! which also reports success before the child has even taken the lock), this re-runs
//! the `sited` binary in a new session with its output going to the log file, then polls
//! the socket until the new daemon says hello, or the child exits and its own error is
//! read back from the log.

use std::fs::{self, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sited_proto::{Hello, PROTOCOL_VERSION, Paths, PathsError};

/// How long a starting daemon gets to answer.
const READY_DEADLINE: Duration = Duration::from_secs(15);
const POLL_INTERVAL: Duration = Duration::from_millis(10);

#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error(transparent)]
    Paths(#[from] PathsError),
    #[error("cannot open the log file {}: {source}", path.display())]
    Log { path: PathBuf, source: io::Error },
    #[error("cannot start {}: {source}", exe.display())]
    Spawn { exe: PathBuf, source: io::Error },
    #[error("{}", exited_message(.message, .log))]
    Exited { message: String, log: PathBuf },
    #[error("the daemon did not answer within {}s; see {}", .waited.as_secs(), .log.display())]
    Timeout { waited: Duration, log: PathBuf },
}

fn exited_message(message: &str, log: &Path) -> String {
    if message.is_empty() {
        format!("the daemon exited during start-up; see {}", log.display())
    } else {
        message.to_string()
    }
}

/// Starts `exe` (a `sited` binary) detached with `args`, and waits until it answers.
pub fn launch(exe: &Path, args: &[&str], paths: &Paths) -> Result<Hello, LaunchError> {
    paths.ensure_dirs()?;
    let log_error = |source| LaunchError::Log {
        path: paths.log_file.clone(),
        source,
    };
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(&paths.log_file)
        .map_err(log_error)?;
    let start_of_run = log.metadata().map_err(log_error)?.len();
    let mut command = Command::new(exe);
    command
        .args(args)
        // The detached daemon is nobody's service: if whoever ran us is supervised, its
        // manager's notify socket and passed fds are not for the child.
        .env_remove(crate::notify::NOTIFY_SOCKET_ENV)
        .env_remove("LISTEN_FDS")
        .env_remove("LISTEN_PID")
        .env_remove("LISTEN_FDNAMES")
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(log_error)?)
        .stderr(log);
    // SAFETY: setsid is async-signal-safe and touches no memory of the parent.
    // A new session means no controlling terminal: closing the user's terminal sends
    // the daemon no SIGHUP.
    #[allow(unsafe_code)]
    unsafe {
        command.pre_exec(|| {
            if libc::setsid() == -1 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = command.spawn().map_err(|source| LaunchError::Spawn {
        exe: exe.to_path_buf(),
        source,
    })?;
    let child_pid = child.id();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime can always be built");
    let started = Instant::now();
    loop {
        if let Ok(Some(_status)) = child.try_wait() {
            return Err(LaunchError::Exited {
                message: error_lines(&paths.log_file, start_of_run),
                log: paths.log_file.clone(),
            });
        }
        if let Some(hello) = runtime.block_on(hello(&paths.socket)) {
            // Another daemon may answer first (the child will then exit, saying so).
            if hello.pid == child_pid {
                return Ok(hello);
            }
        }
        if started.elapsed() > READY_DEADLINE {
            return Err(LaunchError::Timeout {
                waited: READY_DEADLINE,
                log: paths.log_file.clone(),
            });
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

/// One handshake with whatever daemon listens on `socket`.
pub async fn hello(socket: &Path) -> Option<Hello> {
    let client = sited_proto::transport::connect(socket).await.ok()?;
    let mut context = tarpc::context::current();
    context.deadline = Instant::now() + Duration::from_secs(1);
    client.hello(context, PROTOCOL_VERSION).await.ok()
}

/// The `error:` lines the child wrote since `offset`, or its last lines.
fn error_lines(log: &Path, offset: u64) -> String {
    let mut text = String::new();
    if let Ok(mut file) = fs::File::open(log) {
        let _ = file.seek(SeekFrom::Start(offset));
        let _ = file.read_to_string(&mut text);
    }
    let errors: Vec<&str> = text
        .lines()
        .filter_map(|line| line.strip_prefix("error: "))
        .collect();
    if !errors.is_empty() {
        return errors.join("\n");
    }
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(5)..].join("\n")
}
