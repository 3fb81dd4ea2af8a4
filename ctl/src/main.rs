//! `sitectl`: the thin client of the sited daemon. Parse, call, print.
//!
//! Exit codes: 0 success, 1 the daemon answered with an error, 2 usage error,
//! 3 the daemon is not running or cannot be reached (or could not be started).

mod client;
mod output;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use client::Failure;

#[derive(Debug, Parser)]
#[command(
    name = "sitectl",
    version,
    about = "Drive the sited daemon: bring static sites up, list them, take them down.",
    long_about = "Drive the sited daemon: bring static sites up, list them, take them down.\n\n\
        sitectl starts the daemon when none is running. Every site lives in the daemon, \
        not in your terminal: closing the terminal leaves nothing behind, and \
        `sitectl down --all` frees every port.",
    after_help = "Examples:\n  sitectl up ./blog              build and serve ./blog (first free port from 5173)\n  \
        sitectl up ./docs --port 8080  serve on a chosen port\n  \
        sitectl ps                     what is being served\n  \
        sitectl down 5173              stop the site on port 5173\n  \
        sitectl down --all             stop every site\n\n\
        Exit codes: 0 ok, 1 error, 2 usage, 3 daemon not running or unreachable."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Build a site and serve it; prints its URL. The same root twice is the same site.
    #[command(
        after_help = "Examples:\n  sitectl up\n  sitectl up ./blog --port 8080\n  sitectl up ~/notes --drafts\n  \
            sitectl up ./blog --host 0.0.0.0   also reachable from other machines (careful)"
    )]
    Up {
        /// Site root: a folder with `content/` (and optional `site.toml`, `templates/`,
        /// `static/`), or simply a folder of Markdown files.
        #[arg(default_value = ".")]
        path: PathBuf,
        /// Port to serve on; fails if taken. Default: the first free port from 5173.
        #[arg(long, short)]
        port: Option<u16>,
        /// Include pages marked as drafts.
        #[arg(long)]
        drafts: bool,
        /// Address to listen on: an IP address (`0.0.0.0` for every interface) or a host
        /// name, which requests may then use in their Host header. Default: 127.0.0.1,
        /// this machine only. Anything else lets other machines read the site.
        #[arg(long, value_name = "ADDRESS")]
        host: Option<String>,
    },
    /// Stop sites by port or root path, or all of them.
    #[command(
        after_help = "Examples:\n  sitectl down 5173\n  sitectl down ./blog ./docs\n  sitectl down --all"
    )]
    Down {
        /// Ports or site root paths.
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        targets: Vec<String>,
        /// Stop every site.
        #[arg(long)]
        all: bool,
    },
    /// List the sites the daemon serves.
    #[command(after_help = "Examples:\n  sitectl ps\n  sitectl ps --json | jq '.[].url'")]
    Ps {
        /// Print JSON (an array of sites; see README for the schema).
        #[arg(long)]
        json: bool,
    },
    /// Start, stop or inspect the daemon itself.
    Daemon {
        #[command(subcommand)]
        action: DaemonAction,
    },
}

#[derive(Debug, Subcommand)]
enum DaemonAction {
    /// Start the daemon in the background (a no-op if it runs).
    Start,
    /// Stop the daemon and every site it serves.
    Stop,
    /// Stop the daemon, then start it again.
    Restart,
    /// Say whether the daemon runs, its pid, version and socket.
    Status,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            output::print_failure(&failure);
            ExitCode::from(failure.exit_code())
        }
    }
}

async fn run(command: Command) -> Result<(), Failure> {
    match command {
        Command::Up {
            path,
            port,
            drafts,
            host,
        } => {
            let client = client::Daemon::connect_or_start().await?;
            let root = std::path::absolute(&path)
                .map_err(|e| Failure::usage(format!("cannot resolve {}: {e}", path.display())))?;
            if let Some(host) = host.as_deref()
                && output::host_is_exposed(host)
            {
                output::warn_exposed(host);
            }
            let info = client.up(root, port, drafts, host).await?;
            output::print_up(&info);
            match &info.state {
                sited_proto::SiteState::Failed { reason } => Err(Failure::site(reason.clone())),
                _ => Ok(()),
            }
        }
        Command::Down { targets, all } => {
            let client = client::Daemon::connect_or_start().await?;
            let targets = if all {
                vec![sited_proto::Target::All]
            } else {
                targets.iter().map(|t| client::parse_target(t)).collect()
            };
            let mut failure = None;
            for target in targets {
                match client.down(target).await {
                    Ok(stopped) => output::print_down(&stopped),
                    Err(error) => {
                        output::print_failure(&error);
                        failure = Some(error);
                    }
                }
            }
            failure.map_or(Ok(()), Err)
        }
        Command::Ps { json } => {
            let client = client::Daemon::connect_or_start().await?;
            let sites = client.ps().await?;
            if json {
                output::print_ps_json(&sites);
            } else {
                output::print_ps_table(&sites);
            }
            Ok(())
        }
        Command::Daemon { action } => match action {
            DaemonAction::Start => client::start().await,
            DaemonAction::Stop => client::stop().await,
            DaemonAction::Restart => {
                client::stop().await?;
                client::start().await
            }
            DaemonAction::Status => client::status().await,
        },
    }
}
