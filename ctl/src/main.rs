//! `sitectl`: the thin client of the sited daemon. Parse, call, print.
//!
//! Exit codes: 0 success, 1 the daemon refused or a site failed, 2 usage error, 3 the
//! daemon is not running, cannot be reached or started, or speaks another protocol.

mod browser;
mod commands;
mod failure;
mod output;
mod service;
mod transport;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

use commands::{SiteArgs, Sites};
use failure::Failure;

#[derive(Debug, Parser)]
#[command(
    name = "sitectl",
    version,
    about = "Drive the sited daemon: bring static sites up, list them, take them down.",
    long_about = "Drive the sited daemon: bring static sites up, list them, take them down.\n\n\
        sitectl starts the daemon when none is running. Every site lives in the daemon, \
        not in your terminal: closing the terminal leaves nothing behind, and \
        `sitectl down --all` frees every port. A site is named by its port or its root \
        folder.",
    after_help = "Examples:\n  \
        sitectl up ./blog              build and serve ./blog (first free port from 5173)\n  \
        sitectl up ./docs --port 8080  serve on a chosen port\n  \
        sitectl serve                  serve . until Ctrl+C, printing its log\n  \
        sitectl ps                     what is being served\n  \
        sitectl open 5173              open a site in the browser\n  \
        sitectl logs ./blog -f         follow a site's log\n  \
        sitectl rebuild --all          build every site again from scratch\n  \
        sitectl down --all             stop every site\n  \
        sitectl service install        start the daemon at login (systemd/launchd)\n\n\
        Output is coloured on a terminal unless NO_COLOR is set.\n\
        Exit codes: 0 ok, 1 the daemon refused or a site failed, 2 usage error, 3 the \
        daemon is not running, cannot be reached or started, or is another version."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Build a site and serve it; prints its URL. The same root twice is the same site.
    #[command(
        long_about = "Build a site and serve it; prints its URL.\n\n\
            The site keeps being served after this command returns, rebuilt and reloaded \
            in the browser whenever a file changes, and comes back after a daemon restart \
            until `sitectl down`. The same root twice is the same site. Build errors are \
            printed as warnings with file:line:col; the rest of the site is served.",
        after_help = "Examples:\n  sitectl up\n  sitectl up ./blog --port 8080\n  \
            sitectl up ~/notes --drafts --open\n  sitectl up ./blog --attach"
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
    #[command(after_help = "Examples:\n  sitectl serve\n  sitectl serve ./blog --port 8080 --open")]
    Serve {
        #[command(flatten)]
        site: SiteArgs,
    },
    /// Stop sites by port or root path, or all of them; returns once their ports are free.
    #[command(
        visible_alias = "stop",
        long_about = "Stop sites by port or root path, or all of them; returns once their \
            ports are free. Without an argument: the site whose folder you are in.",
        after_help = "Examples:\n  sitectl down 5173\n  sitectl down ./blog ./docs\n  sitectl down --all\n  cd blog && sitectl down"
    )]
    Down {
        #[command(flatten)]
        sites: commands::down::Targets,
    },
    /// Take sites down and up again: same root, same port, fresh build.
    #[command(
        long_about = "Take sites down and up again: same root, same port, same options, \
            a fresh build. Returns once they serve again. The site's log carries on. \
            Sites brought up with `--attach` / `sitectl serve` are left alone: restart \
            that command instead.",
        after_help = "Examples:\n  sitectl restart 5173\n  sitectl restart ./blog\n  sitectl restart --all"
    )]
    Restart {
        #[command(flatten)]
        sites: Sites,
    },
    /// Build sites again from scratch now, and print how it went.
    #[command(
        long_about = "Build sites again from scratch now (every file read and rendered \
            anew, as if the site had just come up) and print how it went; returns once \
            the builds are done. Saved files are rebuilt on their own: this is for \
            changes the watcher cannot see, or to be sure.",
        after_help = "Examples:\n  sitectl rebuild 5173\n  sitectl rebuild ./blog\n  sitectl rebuild --all"
    )]
    Rebuild {
        #[command(flatten)]
        sites: Sites,
    },
    /// Open a site in the browser.
    #[command(
        long_about = "Open a site in the browser, with the system's opener (xdg-open on \
            Linux, open on macOS). Without PORT|PATH: the site whose folder you are in, \
            else the only site there is. Where no browser can be opened, says so with the \
            URL and exits 1.",
        after_help = "Examples:\n  sitectl open\n  sitectl open 5173\n  sitectl open ./blog"
    )]
    Open {
        /// The site's port or root path.
        #[arg(value_name = "PORT|PATH")]
        target: Option<String>,
    },
    /// List the sites the daemon serves.
    #[command(
        long_about = "List the sites the daemon serves: port, state, URL, pages, how long \
            the last build took, uptime and root, with the site's build errors, warnings \
            and failure reason below its row.",
        visible_aliases = ["ls", "list"],
        after_help = "Examples:\n  sitectl ps\n  sitectl ps --json | jq '.[].url'"
    )]
    Ps {
        /// Print JSON (an array of sites; see README for the schema).
        #[arg(long)]
        json: bool,
    },
    /// Print a site's recent log lines, or the daemon's; `-f` follows new ones.
    #[command(
        after_help = "Examples:\n  sitectl logs 5173\n  sitectl logs ./blog -f\n  sitectl logs --daemon -n 200\n  cd blog && sitectl logs -f"
    )]
    Logs {
        /// The site's port or root path [default: the site whose folder you are in, or
        /// the only site].
        #[arg(value_name = "PORT|PATH", conflicts_with = "daemon")]
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
    /// Start, stop or inspect the daemon itself.
    #[command(
        after_help = "Examples:\n  sitectl daemon status\n  sitectl daemon restart\n  sitectl daemon stop"
    )]
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
    /// Print a shell completion script (bash, zsh or fish).
    #[command(
        long_about = "Print a shell completion script for sitectl to stdout. Save it where \
            your shell looks for completions (see the examples), then open a new shell.",
        after_help = "Examples:\n  \
            sitectl completions bash > ~/.local/share/bash-completion/completions/sitectl\n  \
            sitectl completions zsh > ~/.zfunc/_sitectl    # with fpath+=(~/.zfunc) before compinit\n  \
            sitectl completions fish > ~/.config/fish/completions/sitectl.fish"
    )]
    Completions {
        /// The shell to complete for.
        #[arg(value_enum)]
        shell: Shell,
    },
}

#[derive(Debug, Subcommand)]
enum ServiceAction {
    /// Write the unit (or agent) for this machine's sited, enable and start it.
    /// Idempotent; run it again after moving the binaries.
    #[command(after_help = "Example:\n  sitectl service install")]
    Install,
    /// Stop and disable autostart, and remove the files.
    #[command(after_help = "Example:\n  sitectl service uninstall")]
    Uninstall,
    /// Say whether autostart is on and whether it runs the sited next to this sitectl
    /// (exit 0 only if both).
    #[command(after_help = "Example:\n  sitectl service status && echo autostart is fine")]
    Status,
}

#[derive(Debug, Subcommand)]
enum DaemonAction {
    /// Start the daemon in the background (a no-op if it runs).
    #[command(after_help = "Example:\n  sitectl daemon start")]
    Start,
    /// Stop the daemon and every site it serves (remembered sites come back with it).
    #[command(after_help = "Example:\n  sitectl daemon stop")]
    Stop,
    /// Stop the daemon, then start it again: also replaces a daemon of another version.
    #[command(after_help = "Example:\n  sitectl daemon restart")]
    Restart,
    /// Say whether the daemon runs, its pid, version and socket (exit 3 if it does not).
    #[command(after_help = "Example:\n  sitectl daemon status")]
    Status,
}

/// Shells `completions` writes for.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Shell {
    Bash,
    Zsh,
    Fish,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            output::print_failure(
                &Failure::refused("cannot start the async runtime").because(error),
            );
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            if !failure.said {
                output::print_failure(&failure);
            }
            ExitCode::from(failure.exit_code())
        }
    }
}

async fn run(command: Command) -> Result<(), Failure> {
    match command {
        Command::Up { site, attach } => commands::up::run(site, attach).await,
        Command::Serve { site } => commands::up::run(site, true).await,
        Command::Down { sites } => commands::down::run(sites).await,
        Command::Restart { sites } => commands::restart::run(sites).await,
        Command::Rebuild { sites } => commands::rebuild::run(sites).await,
        Command::Open { target } => commands::open::run(target).await,
        Command::Ps { json } => commands::ps::run(json).await,
        Command::Logs {
            target,
            daemon,
            follow,
            lines,
        } => commands::logs::run(target, daemon, follow, lines).await,
        Command::Daemon { action } => match action {
            DaemonAction::Start => commands::daemon::start().await,
            DaemonAction::Stop => commands::daemon::stop().await,
            DaemonAction::Restart => {
                commands::daemon::stop().await?;
                commands::daemon::start().await
            }
            DaemonAction::Status => commands::daemon::status().await,
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
        Command::Completions { shell } => {
            let shell = match shell {
                Shell::Bash => clap_complete::Shell::Bash,
                Shell::Zsh => clap_complete::Shell::Zsh,
                Shell::Fish => clap_complete::Shell::Fish,
            };
            // Into memory first: clap_complete panics on a write error (`| head`).
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "sitectl", &mut script);
            std::io::Write::write_all(&mut std::io::stdout(), &script)?;
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_command_has_examples() {
        fn check(command: &clap::Command, path: &str) {
            for sub in command.get_subcommands() {
                let path = format!("{path} {}", sub.get_name());
                if sub.get_name() == "help" {
                    continue;
                }
                let after = sub
                    .get_after_help()
                    .map(ToString::to_string)
                    .unwrap_or_default();
                assert!(after.contains("Example"), "`{path} --help` has no examples");
                check(sub, &path);
            }
        }
        check(&Cli::command(), "sitectl");
    }
}
