//! `sited`: the daemon binary. Parses arguments, sets up logging and hands over to the
//! library; everything interesting lives in `sited::*`.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use sited::daemon::{self, DaemonConfig, Exit};
use sited_proto::Paths;

#[derive(Debug, Parser)]
#[command(
    name = "sited",
    version,
    about = "The sited daemon: builds, serves and watches static sites.",
    long_about = "The sited daemon: builds, serves and watches static sites.\n\n\
        Without a subcommand it runs in the foreground (what systemd and launchd run), \
        logging to stderr. Most people never start it by hand: `sitectl` starts it when \
        needed. Set SITED_HOME to keep all its files (socket, lock, state, log) under one \
        directory.",
    after_help = "Examples:\n  sited                       run in the foreground\n  \
        sited --daemonize           start detached, return once it answers\n  \
        sited build ./blog          build once to ./blog/public"
)]
struct Cli {
    /// Start detached (new session, log to the state dir) and return once it answers.
    #[arg(long)]
    daemonize: bool,
    /// Exit cleanly when the parent process dies (Linux), for test harnesses.
    #[arg(long)]
    exit_with_parent: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Build a site once to a directory; no daemon needed.
    #[command(
        after_help = "Examples:\n  sited build ./blog\n  sited build ./blog --out /srv/www --drafts"
    )]
    Build {
        /// The site root (holds `content/`, or is itself a folder of Markdown).
        #[arg(default_value = ".")]
        path: PathBuf,
        /// Where to write the output [default: PATH/public]. Replaced whole, and only
        /// if the build has no errors.
        #[arg(long, short)]
        out: Option<PathBuf>,
        /// Include pages marked as drafts.
        #[arg(long)]
        drafts: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Build { path, out, drafts }) => build(&path, out, drafts),
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
            ExitCode::FAILURE
        }
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SITED_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

fn foreground(exit_with_parent: bool) -> anyhow::Result<ExitCode> {
    init_tracing();
    if exit_with_parent {
        daemon::exit_with_parent().context("cannot follow the parent process")?;
    }
    let paths = Paths::from_env()?;
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let exit = runtime.block_on(async {
        let prepared = daemon::prepare(DaemonConfig { paths })?;
        daemon::run(prepared, std::future::pending()).await
    })?;
    // Site tasks are done; do not wait on blocking threads (a build still running).
    runtime.shutdown_background();
    Ok(match exit {
        Exit::Clean => ExitCode::SUCCESS,
        Exit::Forced => ExitCode::FAILURE,
    })
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

fn build(path: &std::path::Path, out: Option<PathBuf>, drafts: bool) -> anyhow::Result<ExitCode> {
    init_tracing();
    if !path.is_dir() {
        bail!("site root {} is not a directory", path.display());
    }
    let output = sited::build::build(path, &sited::build::BuildOptions { drafts });
    let report = output.report.as_ref().expect("builds always report");
    let out = out.unwrap_or_else(|| path.join("public"));
    if !report.errors.is_empty() {
        for error in &report.errors {
            eprintln!("error: {error}");
        }
        eprintln!(
            "{} error(s); {} left as it was",
            report.errors.len(),
            out.display()
        );
        return Ok(ExitCode::FAILURE);
    }
    output
        .write_to(&out)
        .with_context(|| format!("cannot write the site to {}", out.display()))?;
    println!(
        "built {} pages and {} files in {} ms → {}",
        report.pages,
        report.files,
        report.duration_ms,
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}
