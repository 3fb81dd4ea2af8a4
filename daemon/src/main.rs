//! `sited`: the daemon binary. Parses arguments, sets up logging and hands over to the
//! library; everything interesting lives in `sited::*`.
//!
//! Exit codes, chosen for the service managers that restart the daemon on failure
//! (systemd `Restart=on-failure`, launchd `KeepAlive { SuccessfulExit = false }`):
//!
//! | code | meaning | supervisor |
//! | --- | --- | --- |
//! | 0 | stopped cleanly: a signal, `sitectl daemon stop`, the parent's death | not restarted |
//! | 1 | failed: an error that a new start may not hit (I/O, binding the socket, the runtime), or a shutdown cut short (second signal, deadline); a panic exits 101 and a fatal signal kills it, which supervisors treat alike | restarted |
//! | 2 | usage error (from clap) | — |
//! | 3 | blocked: start-up can never succeed as things stand — another sited already owns this home (SCENARIOS S17: non-zero, naming its pid), a service manager owns its socket, or the paths are unusable (socket path too long, runtime dir not ours) | systemd: not restarted (`RestartPreventExitStatus=3` in the unit) |
//!
//! launchd cannot exempt an exit code from `KeepAlive`, so the LaunchAgent passes
//! `--exit-zero-if-running`, which turns 3 into 0: launchd then leaves the job alone
//! instead of restarting it every `ThrottleInterval` while another daemon runs. systemd
//! must not get that flag: a `Type=notify` service that exits 0 before `READY=1` is a
//! protocol failure there, which `Restart=on-failure` restarts.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use sited::daemon::{self, DaemonConfig, DaemonError, Exit};
use sited::hooks::TestHooks;
use sited::notify::Notifier;
use sited_builder::write::out_dir::CheckError;
use sited_builder::{Options, Progress, ToDisk, WriteError};
use sited_proto::{BuildProgress, Paths, PathsError, escape_controls};

/// glibc's malloc for the daemon, mimalloc for `sited build`: see `sited::allocator`.
#[global_allocator]
static ALLOCATOR: sited::allocator::Allocator = sited::allocator::Allocator;

/// Start-up can never succeed as things stand (see the table above).
const EXIT_BLOCKED: u8 = 3;

#[derive(Debug, Parser)]
#[command(
    name = "sited",
    version,
    about = "The sited daemon: builds, serves and watches static sites.",
    long_about = "The sited daemon: builds, serves and watches static sites.\n\n\
        Without a subcommand it runs in the foreground (what systemd and launchd run), \
        logging to stderr. Most people never start it by hand: `sitectl` starts it when \
        needed. Set SITED_HOME to keep all its files (socket, lock, state, log) under one \
        directory.\n\n\
        Under systemd it supports Type=notify (READY=1 once its socket answers, \
        STOPPING=1 on shutdown) and socket activation (LISTEN_FDS): \
        `sitectl service install` sets both up.",
    after_help = "Examples:\n  sited                       run in the foreground\n  \
        sited --daemonize           start detached, return once it answers\n  \
        sited build ./blog          build once to ./blog/public\n\n\
        Exit codes: 0 stopped cleanly, 1 failure (a supervisor should restart), \
        2 usage, 3 start-up can never succeed as things stand, e.g. sited already runs \
        (0 with --exit-zero-if-running)."
)]
struct Cli {
    /// Start detached (new session, log to the state dir) and return once it answers.
    #[arg(long)]
    daemonize: bool,
    /// Exit cleanly when the parent process dies (Linux), for test harnesses.
    #[arg(long)]
    exit_with_parent: bool,
    /// Exit 0 instead of 3 when start-up can never succeed (sited already runs): for
    /// launchd's KeepAlive, which restarts every non-zero exit.
    #[arg(long)]
    exit_zero_if_running: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Build a site once to a directory; no daemon needed.
    #[command(
        after_help = "Examples:\n  sited build ./blog\n  sited build ./blog --out /srv/www --drafts\n  sited build ./book --strict"
    )]
    Build {
        /// The site root (holds `content/`, or is itself a folder of Markdown).
        #[arg(default_value = ".")]
        path: PathBuf,
        /// Where to write the output [default: PATH/public], only if the build has no
        /// errors. Must be missing, empty or an earlier output of `sited build`: anything
        /// else is refused untouched. An earlier output is rewritten in place: only the
        /// files that changed, and files sited did not write are kept.
        #[arg(long, short)]
        out: Option<PathBuf>,
        /// Write the whole output beside OUT and swap it in by one rename, so OUT holds
        /// the previous build or the new one, never a mix (refused if OUT holds files
        /// sited did not write, which the swap would remove).
        #[arg(long)]
        atomic: bool,
        /// Build even when nothing changed since the build that wrote OUT. Without it,
        /// such a build is found out first (every file of the site, sited itself and
        /// these options, against what that build recorded in OUT) and nothing is
        /// rebuilt or written.
        #[arg(long)]
        force: bool,
        /// Include pages marked as drafts.
        #[arg(long)]
        drafts: bool,
        /// Treat every warning (a link that leads nowhere, a feature sited cannot
        /// support) as an error: nothing is written and the exit status is 1. For CI.
        #[arg(long)]
        strict: bool,
    },
}

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    if args
        .next()
        .is_some_and(|first| first == sited::generator::shim::ARG)
    {
        return sited::generator::shim::main(args.collect());
    }
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Build {
            path,
            out,
            atomic,
            force,
            drafts,
            strict,
        }) => {
            // Before any other thread exists.
            sited::allocator::for_builds();
            let how = ToDisk {
                atomic,
                force,
                exits: true,
            };
            build(&path, out, how, drafts, strict)
        }
        None if cli.daemonize => daemonize(),
        None => foreground(cli.exit_with_parent),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error}");
            for cause in error.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            if !is_blocked(&error) {
                ExitCode::FAILURE
            } else if cli.exit_zero_if_running {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(EXIT_BLOCKED)
            }
        }
    }
}

/// Whether `error` means start-up can never succeed as things stand.
fn is_blocked(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<DaemonError>()
            .is_some_and(DaemonError::is_blocked)
            || cause
                .downcast_ref::<PathsError>()
                .is_some_and(PathsError::is_permanent)
            // A unit that passes the wrong sockets fails the same way every time.
            || cause.is::<sited::activation::ActivationError>()
    })
}

/// Logs to stderr (colours only on a terminal) and, for the daemon, into the per-site
/// buffers `sitectl logs` reads.
fn init_tracing(hub: Option<&sited::logs::LogHub>) {
    use tracing_subscriber::prelude::*;
    let filter = tracing_subscriber::EnvFilter::try_from_env("SITED_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(sited::logs::DEFAULT_FILTER));
    let terminal = std::io::stderr().is_terminal();
    // Into a file (the daemon's log) no control character is written raw: whatever a
    // message quotes (a file name) cannot drive the terminal of whoever reads the log.
    // On a terminal the colours are escape codes: messages are escaped where made.
    let stderr = tracing_subscriber::fmt::layer()
        .with_writer(move || Escaping {
            inner: std::io::stderr(),
            raw: terminal,
        })
        .with_ansi(terminal);
    tracing_subscriber::registry()
        .with(filter)
        .with(stderr)
        .with(hub.map(sited::logs::LogHub::layer))
        .init();
}

/// A writer that escapes control characters but newlines and tabs (`\x1b` for ESC),
/// unless `raw`.
struct Escaping<W> {
    inner: W,
    raw: bool,
}

impl<W: Write> Write for Escaping<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let plain = |b: &u8| !(b.is_ascii_control() && *b != b'\n' && *b != b'\t');
        if self.raw || buf.iter().all(plain) {
            return self.inner.write(buf);
        }
        let mut escaped = Vec::with_capacity(buf.len() + 16);
        for byte in buf {
            if plain(byte) {
                escaped.push(*byte);
            } else {
                escaped.extend_from_slice(format!("\\x{byte:02x}").as_bytes());
            }
        }
        self.inner.write_all(&escaped)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn foreground(exit_with_parent: bool) -> anyhow::Result<ExitCode> {
    sited::allocator::tune();
    let logs = sited::logs::LogHub::default();
    init_tracing(Some(&logs));
    if exit_with_parent {
        daemon::exit_with_parent().context("cannot follow the parent process")?;
    }
    let paths = Paths::from_env()?;
    // Before the runtime exists: fd 3 must be claimed before anything could open it.
    let inherited = sited::activation::take_from_env()?;
    if let Some(activated) = &inherited {
        tracing::info!(name = ?activated.name, "socket-activated by the service manager");
    }
    let config = DaemonConfig {
        inherited_socket: inherited.map(|activated| activated.listener),
        notifier: Notifier::from_env(),
        logs,
        hooks: test_hooks_from_env(),
        ..DaemonConfig::new(paths)
    };
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let exit = runtime.block_on(async {
        let stops = forward_signals().context("cannot install signal handlers")?;
        let prepared = daemon::prepare(config)?;
        anyhow::Ok(daemon::run(prepared, stops).await?)
    })?;
    // Site tasks are done; do not wait on blocking threads (a build still running).
    runtime.shutdown_background();
    Ok(match exit {
        Exit::Clean => ExitCode::SUCCESS,
        Exit::Forced => ExitCode::FAILURE,
    })
}

/// Test hooks (see [`TestHooks`]), read once here so that no library code reads the
/// environment: the end-to-end tests set these on the daemon they start.
fn test_hooks_from_env() -> TestHooks {
    let var = |name| std::env::var(name).ok();
    TestHooks {
        panic_request: var("SITED_TEST_PANIC_REQUEST").is_some_and(|v| v == "1"),
        idle_timeout: var("SITED_TEST_IDLE_TIMEOUT_SECS")
            .and_then(|v| v.parse().ok())
            .map(Duration::from_secs),
        panic_function: var("SITED_TEST_PANIC_FUNCTION").is_some(),
        watch_limit: var("SITED_TEST_INOTIFY_WATCH_LIMIT").and_then(|v| v.parse().ok()),
        first_port: var("SITED_TEST_FIRST_PORT").and_then(|v| v.parse().ok()),
        // In-process tests only: a real process has no test to release it.
        hold_first_build: None,
    }
}

/// Installs the handlers of the four signals that mean "stop" (Ctrl+C, service
/// managers, closed terminals, Ctrl+\) and forwards each one to the daemon by name.
fn forward_signals() -> std::io::Result<daemon::Stops> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut int = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;
    let mut hup = signal(SignalKind::hangup())?;
    let mut quit = signal(SignalKind::quit())?;
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tokio::spawn(async move {
        loop {
            let name = tokio::select! {
                _ = int.recv() => "SIGINT",
                _ = term.recv() => "SIGTERM",
                _ = hup.recv() => "SIGHUP",
                _ = quit.recv() => "SIGQUIT",
            };
            if tx.send(name).await.is_err() {
                break;
            }
        }
    });
    Ok(rx)
}

fn daemonize() -> anyhow::Result<ExitCode> {
    let paths = Paths::from_env()?;
    let exe = std::env::current_exe().context("cannot find the sited binary")?;
    let hello = sited::launcher::launch(&exe, &[], &paths)?;
    println!(
        "sited {} started (pid {}), log: {}",
        hello.version,
        hello.pid,
        paths.log_file.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn build(
    path: &std::path::Path,
    out: Option<PathBuf>,
    how: ToDisk,
    drafts: bool,
    strict: bool,
) -> anyhow::Result<ExitCode> {
    init_tracing(None);
    if !path.is_dir() {
        bail!("site root {} is not a directory", path.display());
    }
    let out = out.unwrap_or_else(|| path.join("public"));
    // Pages are written to disk as they are rendered, and on a busy disk each file and
    // folder created waits on the journal: more threads than cores keep the cores busy
    // while some wait.
    // Whoever sets `RAYON_NUM_THREADS` keeps it.
    let threads = match std::env::var_os("RAYON_NUM_THREADS") {
        Some(_) => 0,
        None => std::thread::available_parallelism().map_or(2, |n| n.get()) * 4,
    };
    let _ = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global();
    let progress = Arc::new(Progress::default());
    let options = Options {
        drafts,
        strict,
        progress: Some(progress.clone()),
        ..Options::default()
    };
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let built = showing_progress(&progress, || {
        sited_builder::build_to_with(path, options, &out, home.as_deref(), how)
    });
    let built = match built {
        Ok(built) => built,
        Err(WriteError::Check(CheckError::Refused(refusal))) => {
            // Refused before anything was touched: say why and what to do.
            eprintln!("error: {refusal}");
            eprintln!("  hint: {}", refusal.hint());
            return Ok(ExitCode::FAILURE);
        }
        Err(WriteError::Check(CheckError::Io(error)) | WriteError::Io(error)) => {
            return Err(anyhow::Error::new(error)
                .context(format!("cannot write the site to {}", out.display())));
        }
        Err(WriteError::Failed(failure)) => bail!("{failure}"),
    };
    let report = &built.report;
    // File names are the user's: escaped, so that none can drive the terminal.
    let shown = |item: &dyn std::fmt::Display| escape_controls(&item.to_string()).into_owned();
    for warning in report.warnings() {
        eprintln!("warning: {}", shown(warning));
    }
    if report.has_errors() {
        for error in report.errors() {
            eprintln!("error: {}", shown(error));
        }
        eprintln!(
            "{} error(s); {} left as it was",
            report.errors().count(),
            out.display()
        );
        return Ok(ExitCode::FAILURE);
    }
    let warnings = match report.warnings().count() {
        0 => String::new(),
        1 => ", 1 warning".to_string(),
        n => format!(", {n} warnings"),
    };
    let done = if report.up_to_date {
        "up to date (nothing changed since the last build):"
    } else {
        "built"
    };
    // Pages whose context is unchanged since the build that wrote the output are kept
    // as they are, not rendered.
    let kept = match report.kept {
        0 => String::new(),
        n => format!(" ({n} unchanged)"),
    };
    println!(
        "{done} {} pages{kept} and {} files in {} ms{warnings} → {}",
        report.pages,
        report.files,
        report.duration.as_millis(),
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// A build that has not finished after this long shows its progress (on a terminal).
const PROGRESS_AFTER: Duration = Duration::from_secs(1);
/// How often the progress line is redrawn.
const PROGRESS_EVERY: Duration = Duration::from_millis(100);

/// Runs `work` (a build counting into `progress`); if it takes longer than
/// [`PROGRESS_AFTER`] and stderr is a terminal, shows one line of progress meanwhile,
/// redrawn in place and blanked at the end.
fn showing_progress<T>(progress: &Progress, work: impl FnOnce() -> T) -> T {
    if !std::io::stderr().is_terminal() {
        return work();
    }
    let (finished, done) = mpsc::channel::<()>();
    std::thread::scope(|scope| {
        scope.spawn(move || {
            if done.recv_timeout(PROGRESS_AFTER) != Err(RecvTimeoutError::Timeout) {
                return;
            }
            let mut stderr = std::io::stderr();
            let mut width: usize = 0;
            let mut last = String::new();
            loop {
                let text = match progress.get() {
                    Some(count) => {
                        let progress = BuildProgress {
                            done: count.done,
                            total: count.total,
                        };
                        format!("building: {progress}")
                    }
                    None => "building: reading the site…".to_string(),
                };
                if last != text {
                    let blank = " ".repeat(width.saturating_sub(text.chars().count()));
                    let _ = write!(stderr, "\r{text}{blank}");
                    let _ = stderr.flush();
                    width = text.chars().count();
                    last = text;
                }
                if done.recv_timeout(PROGRESS_EVERY) != Err(RecvTimeoutError::Timeout) {
                    break;
                }
            }
            let _ = write!(stderr, "\r{}\r", " ".repeat(width));
            let _ = stderr.flush();
        });
        let result = work();
        drop(finished);
        result
    })
}
