//! One run of a generator as a supervised child: its own process group (so it and every
//! process it starts are signalled as one), killed with the daemon (Linux: a
//! parent-death signal; elsewhere the group is recorded in a pid file and reaped at the
//! next start, see [`super::reap`]), its output logged line by line, a time limit after
//! which the whole group is killed, and cancellation that does the same. Whatever way the
//! run ends, no process of its group is left when [`run`] returns.
//!
//! Blocking: call it from a thread that lives as long as the child. On Linux the
//! parent-death signal fires when the *thread* that spawned the child exits, so the
//! thread that spawns is the one that waits.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sited_builder::Cancel;

/// How often a waiting run looks at its cancel flag.
const TICK: Duration = Duration::from_millis(20);
/// How long a group asked to stop (SIGTERM) has before it is killed (SIGKILL).
pub const GRACE: Duration = Duration::from_millis(500);
/// Lines of output kept for the error report; all of them go to the log.
const TAIL_LINES: usize = 60;
/// How long the output is read after the group is gone: a process that left the group
/// (setsid) may hold the pipes open forever.
const DRAIN: Duration = Duration::from_secs(1);

/// What to run.
#[derive(Debug, Clone)]
pub struct Job {
    pub argv: Vec<String>,
    pub cwd: PathBuf,
    pub timeout: Duration,
    /// Where the group is recorded while it runs, for a daemon that dies without
    /// reaping it.
    pub pid_file: Option<PathBuf>,
    /// The daemon's binary, to run the generator under [`super::shim`]; `None` runs it
    /// directly (in-process tests, where there is no such binary).
    pub shim: Option<PathBuf>,
}

/// How a run ended.
#[derive(Debug)]
pub enum Ended {
    Exited(ExitStatus),
    /// Over its time limit: the group was killed.
    TimedOut,
    /// Called off: the group was killed.
    Cancelled,
    /// It never started.
    NotStarted(std::io::Error),
}

/// A run's end and the last lines it printed (stdout and stderr interleaved as read).
#[derive(Debug)]
pub struct Outcome {
    pub ended: Ended,
    pub tail: Vec<String>,
}

enum Event {
    Exited(std::io::Result<ExitStatus>),
}

/// Runs `job` to its end; see the module docs.
pub fn run(job: &Job, cancel: &Cancel) -> Outcome {
    let tail = Arc::new(Mutex::new(Tail::default()));
    let mut child = match spawn(job) {
        Ok(child) => child,
        Err(error) => {
            return Outcome {
                ended: Ended::NotStarted(error),
                tail: Vec::new(),
            };
        }
    };
    let pgid = child.id() as i32;
    if let Some(pid_file) = &job.pid_file {
        super::reap::record(pid_file, pgid, &job.argv[0]);
    }
    tracing::debug!(pgid, argv = ?job.argv, "generator started");
    let (done_tx, done_rx) = mpsc::channel();
    let readers: Vec<_> = [
        child
            .stdout
            .take()
            .map(|r| Box::new(r) as Box<dyn Read + Send>),
        child
            .stderr
            .take()
            .map(|r| Box::new(r) as Box<dyn Read + Send>),
    ]
    .into_iter()
    .flatten()
    .map(|pipe| read_lines(pipe, tail.clone(), done_tx.clone()))
    .collect();
    drop(done_tx);
    let (events, exits) = mpsc::channel();
    // The waiter reaps the child; this thread keeps living (the parent-death signal is
    // tied to it) and watches the clock and the cancel flag.
    std::thread::Builder::new()
        .name("generator-wait".into())
        .spawn(move || {
            let _ = events.send(Event::Exited(child.wait()));
        })
        .expect("cannot start a thread");
    let deadline = Instant::now() + job.timeout;
    let ended = loop {
        match exits.recv_timeout(TICK) {
            Ok(Event::Exited(status)) => break exited(status),
            Err(mpsc::RecvTimeoutError::Disconnected) => break exited(Err(lost())),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if cancel.is_cancelled() {
                    stop_group(pgid, &exits);
                    break Ended::Cancelled;
                }
                if Instant::now() >= deadline {
                    tracing::warn!(
                        "{} ran past its limit of {}s: killing it",
                        job.argv[0],
                        job.timeout.as_secs_f32()
                    );
                    stop_group(pgid, &exits);
                    break Ended::TimedOut;
                }
            }
        }
    };
    // The child is reaped; anything it left behind in its group goes with it, and is
    // gone before the run counts as over.
    if super::reap::signal_group(pgid, libc::SIGKILL) {
        let gone = Instant::now() + DRAIN;
        while super::reap::group_has_live(pgid) && Instant::now() < gone {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    if let Some(pid_file) = &job.pid_file {
        let _ = std::fs::remove_file(pid_file);
    }
    let drain_until = Instant::now() + DRAIN;
    for _ in &readers {
        let left = drain_until.saturating_duration_since(Instant::now());
        if done_rx.recv_timeout(left).is_err() {
            tracing::warn!("a process that left the generator's group holds its output open");
            break;
        }
    }
    let tail = tail.lock().unwrap_or_else(|e| e.into_inner()).take();
    Outcome { ended, tail }
}

fn lost() -> std::io::Error {
    std::io::Error::other("the generator's waiter thread was lost")
}

fn exited(status: std::io::Result<ExitStatus>) -> Ended {
    match status {
        Ok(status) => Ended::Exited(status),
        Err(error) => Ended::NotStarted(error),
    }
}

fn spawn(job: &Job) -> std::io::Result<std::process::Child> {
    let Some((program, args)) = job.argv.split_first() else {
        return Err(std::io::Error::other("empty command"));
    };
    let mut command = match &job.shim {
        Some(shim) => {
            let mut command = Command::new(shim);
            command.arg(super::shim::ARG).arg(program);
            command
        }
        None => Command::new(program),
    };
    command
        .args(args)
        .current_dir(&job.cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    supervised(&mut command, job.shim.is_some());
    command.spawn()
}

/// Makes `command` a supervised child: the leader of a process group of its own and, on
/// Linux, signalled when the thread spawning it ends (the daemon's death). With
/// `shim`, the command is [`super::shim`], which turns that signal (SIGTERM) into its
/// whole group's end; the signals it handles stay blocked until its handlers are in
/// place, so a death in that moment is not lost. A generator run directly gets SIGKILL.
pub fn supervised(command: &mut Command, shim: bool) {
    std::os::unix::process::CommandExt::process_group(command, 0);
    let parent = std::process::id() as libc::pid_t;
    #[cfg(target_os = "linux")]
    let death_signal = if shim { libc::SIGTERM } else { libc::SIGKILL };
    // SAFETY: prctl, sigprocmask, getppid and _exit are async-signal-safe and touch no
    // memory of the parent's.
    #[allow(unsafe_code)]
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(command, move || {
            if shim {
                let mut set: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut set);
                for signal in super::shim::SIGNALS {
                    libc::sigaddset(&mut set, signal);
                }
                libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
            }
            #[cfg(target_os = "linux")]
            if libc::prctl(libc::PR_SET_PDEATHSIG, death_signal) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            // The daemon died before the signal was asked for: it will never come.
            if libc::getppid() != parent {
                libc::_exit(1);
            }
            Ok(())
        });
    }
}

/// SIGTERM to the group, then SIGKILL once the grace is over, and waits for the child
/// to be reaped.
fn stop_group(pgid: i32, exits: &mpsc::Receiver<Event>) {
    super::reap::signal_group(pgid, libc::SIGTERM);
    if exits.recv_timeout(GRACE).is_ok() {
        return;
    }
    super::reap::signal_group(pgid, libc::SIGKILL);
    let _ = exits.recv();
}

/// Reads `pipe` line by line into the site's log and the tail; tells `done` at the end.
fn read_lines(
    pipe: Box<dyn Read + Send>,
    tail: Arc<Mutex<Tail>>,
    done: mpsc::Sender<()>,
) -> std::thread::JoinHandle<()> {
    let span = tracing::Span::current();
    std::thread::Builder::new()
        .name("generator-output".into())
        .spawn(move || {
            let _entered = span.enter();
            let mut reader = BufReader::new(pipe);
            let mut line = Vec::new();
            while matches!(reader.read_until(b'\n', &mut line), Ok(n) if n > 0) {
                let text = String::from_utf8_lossy(&line);
                let text = text.trim_end();
                tracing::info!(target: "sited::generator", "{text}");
                tail.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(text.to_string());
                line.clear();
            }
            let _ = done.send(());
        })
        .expect("cannot start a thread")
}

#[derive(Default)]
struct Tail {
    lines: std::collections::VecDeque<String>,
}

impl Tail {
    fn push(&mut self, line: String) {
        if self.lines.len() == TAIL_LINES {
            self.lines.pop_front();
        }
        self.lines.push_back(line);
    }

    fn take(&mut self) -> Vec<String> {
        self.lines.drain(..).collect()
    }
}

/// Whether `path` names a program that can be run: a path to an executable file, or a
/// name found on `PATH`.
pub fn installed(program: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let runnable = |path: &Path| {
        path.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.contains('/') {
        return runnable(Path::new(program));
    }
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| runnable(&dir.join(program))))
}
