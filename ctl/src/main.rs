//! `sitectl`: the thin client of the sited daemon. Parse, call, print.
//!
//! Exit codes: 0 success, 1 the daemon answered with an error, 2 usage error,
//! 3 the daemon is not running or cannot be reached (or could not be started).

mod client;
mod output;
mod service;

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
        sitectl down --all             stop every site\n  \
        sitectl service install        start the daemon at login (systemd/launchd)\n\n\
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
        #[command(flatten)]
        site: SiteArgs,
        /// Stay in the foreground, print the site's log, and take the site down when this
        /// command ends (Ctrl+C, closed terminal, killed): the `hugo server` habit, with
        /// no orphan. Such a site is not brought back after a daemon restart.
        #[arg(long)]
        attach: bool,
    },
    /// `up --attach`: serve a site for as long as this command runs, printing its log.
    #[command(after_help = "Examples:\n  sitectl serve\n  sitectl serve ./blog --port 8080")]
    Serve {
        #[command(flatten)]
        site: SiteArgs,
    },
    /// Print a site's recent log lines, or the daemon's; `-f` follows new ones.
    #[command(
        after_help = "Examples:\n  sitectl logs 5173\n  sitectl logs ./blog -f\n  sitectl logs --daemon -n 200"
    )]
    Logs {
        /// The site's port or root path.
        #[arg(required_unless_present = "daemon", conflicts_with = "daemon")]
        target: Option<String>,
        /// The daemon's own log instead of a site's.
        #[arg(long)]
        daemon: bool,
        /// Keep printing new lines as they come (Ctrl+C to stop).
        #[arg(long, short)]
        follow: bool,
        /// How many recent lines to print first.
        #[arg(long, short = 'n', default_value_t = 50)]
        lines: usize,
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
    /// Autostart at login: install the systemd user unit or the launchd agent.
    #[command(
        long_about = "Autostart at login: install the systemd user unit (Linux) or the \
            launchd agent (macOS) that runs the sited next to this sitectl, and enable it.\n\n\
            Where no service manager runs (containers, CI), `install` still writes the \
            files and prints the command that finishes the job; it then exits 1.",
        after_help = "Examples:\n  sitectl service install\n  sitectl service status\n  \
            sitectl service uninstall\n\n\
            Files: ~/.config/systemd/user/sited.{service,socket} (Linux), \
            ~/Library/LaunchAgents/dev.sited.sited.plist (macOS); SITED_SERVICE_DIR=DIR \
            writes them to DIR instead (packaging, tests)."
    )]
    Service {
        #[command(subcommand)]
        action: ServiceAction,
        /// Directory for the unit files instead of the service manager's own.
        #[arg(long, env = "SITED_SERVICE_DIR", hide = true, global = true)]
        unit_dir: Option<PathBuf>,
        /// Which service manager to write for [default: this platform's].
        #[arg(long, value_enum, hide = true, global = true)]
        manager: Option<service::Manager>,
    },
}

#[derive(Debug, Subcommand)]
enum ServiceAction {
    /// Write the unit (or agent) for this machine's sited, enable and start it.
    /// Idempotent; run it again after moving the binaries.
    Install,
    /// Stop and disable autostart, and remove the files.
    Uninstall,
    /// Say whether autostart is on and whether it runs the sited next to this sitectl
    /// (exit 0 only if both).
    Status,
}

/// What `up` and `serve` share.
#[derive(Debug, clap::Args)]
struct SiteArgs {
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

async fn up(site: SiteArgs, attach: bool) -> Result<(), Failure> {
    let client = client::Daemon::connect_or_start().await?;
    let root = std::path::absolute(&site.path)
        .map_err(|e| Failure::usage(format!("cannot resolve {}: {e}", site.path.display())))?;
    if let Some(host) = site.host.as_deref()
        && output::host_is_exposed(host)
    {
        output::warn_exposed(host);
    }
    let spec = sited_proto::SiteSpec {
        root,
        port: site.port,
        drafts: site.drafts,
        attach,
        host: site.host,
    };
    let info = client.up(spec).await?;
    output::print_up(&info);
    if let sited_proto::SiteState::Failed { reason } = &info.state {
        return Err(Failure::site(reason.clone()));
    }
    if !attach {
        return Ok(());
    }
    if !info.attached {
        eprintln!(
            "note: {} was already being served by the daemon; not attaching to it (`sitectl down {}` stops it)",
            info.root.display(),
            info.port
        );
        return Ok(());
    }
    eprintln!("attached: the site stops when this command ends (Ctrl+C)");
    client.serve_attached(&info).await
}

async fn run(command: Command) -> Result<(), Failure> {
    match command {
        Command::Up { site, attach } => up(site, attach).await,
        Command::Serve { site } => up(site, true).await,
        Command::Logs {
            target,
            daemon,
            follow,
            lines,
        } => {
            let client = client::Daemon::connect_or_start().await?;
            let port = match (daemon, target) {
                (true, _) | (false, None) => None,
                (false, Some(target)) => Some(client.port_of(&target).await?),
            };
            client.print_logs(port, lines, follow).await
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
        Command::Service {
            action,
            unit_dir,
            manager,
        } => {
            let options = service::Options {
                manager: manager.unwrap_or_else(service::Manager::native),
                dir: unit_dir,
            };
            match action {
                ServiceAction::Install => service::install(&options).await,
                ServiceAction::Uninstall => service::uninstall(&options),
                ServiceAction::Status => service::status(&options),
            }
        }
    }
}
