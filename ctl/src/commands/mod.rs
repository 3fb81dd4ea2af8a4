//! What each command does: one module per command, each a function the dispatcher in
//! main.rs calls with the parsed arguments. Commands talk to the daemon through
//! [`transport`](crate::transport) and show results through [`output`](crate::output);
//! neither of those knows about commands.

pub mod daemon;
pub mod down;
pub mod logs;
pub mod open;
mod progress;
pub mod ps;
pub mod rebuild;
pub mod restart;
pub mod up;

use std::path::PathBuf;

use sited_proto::{Paths, SiteInfo, SiteState, Target};

use crate::failure::{self, Failure};
use crate::output;
use crate::transport::{self, Daemon};

/// What `up` and `serve` share.
#[derive(Debug, clap::Args)]
pub struct SiteArgs {
    /// Site root: a folder with `content/` (and optional `site.toml`, `templates/`,
    /// `static/`), or simply a folder of Markdown files.
    #[arg(default_value = ".")]
    pub path: PathBuf,
    /// Port to serve on; fails if taken. Default: the first free port from 5173.
    #[arg(long, short)]
    pub port: Option<u16>,
    /// Include pages marked as drafts.
    #[arg(long)]
    pub drafts: bool,
    /// Open the site in the browser once it serves.
    #[arg(long)]
    pub open: bool,
    /// Address to listen on: an IP address (`0.0.0.0` for every interface) or a host
    /// name, which requests may then use in their Host header. Default: 127.0.0.1,
    /// this machine only. Anything else lets other machines read the site.
    #[arg(long, value_name = "ADDRESS")]
    pub host: Option<String>,
    /// Who builds the site: sited's own builder (`native`) or Hugo, Zola or mdBook, run
    /// by the daemon. Default: the site's `[build]` in site.toml; else the generator
    /// of a Hugo or Zola site with templates of its own, if installed; else native.
    #[arg(long, value_name = "BUILDER", value_parser = ["native", "hugo", "zola", "mdbook"])]
    pub with: Option<String>,
}

/// Which sites `down`, `restart` and `rebuild` act on.
#[derive(Debug, clap::Args)]
pub struct Sites {
    /// Ports or site root paths.
    #[arg(
        value_name = "PORT|PATH",
        required_unless_present = "all",
        conflicts_with = "all"
    )]
    pub targets: Vec<String>,
    /// Every site.
    #[arg(long)]
    pub all: bool,
}

/// Connects, starting the daemon first if none runs (and saying so).
pub async fn connect_or_start() -> Result<Daemon, Failure> {
    let paths = Paths::from_env().map_err(Failure::paths)?;
    if let Some(daemon) = Daemon::connect(&paths).await? {
        return Ok(daemon);
    }
    match transport::launch(&paths) {
        Ok(said) => output::print_note(&said),
        Err(failure) => {
            return match Daemon::started_by_another(&paths).await? {
                Some(daemon) => Ok(daemon),
                None => Err(failure),
            };
        }
    }
    Daemon::connect(&paths).await?.ok_or_else(|| {
        Failure::unreachable("the daemon started but its socket does not answer")
            .hint(format!("its log is {}", paths.log_file.display()))
    })
}

/// A site that came out of `up`, `restart` or `rebuild` failed.
fn fail_if_failed(info: &SiteInfo) -> Result<(), Failure> {
    match &info.state {
        SiteState::Failed { reason } => Err(Failure::site(info.port, reason)),
        _ => Ok(()),
    }
}

/// Prints a failure that does not stop the command, and keeps it (marked as said) for
/// the exit code. A closed output does stop it: `Err` then.
fn said(failure: Failure) -> Result<Failure, Failure> {
    if failure.kind == failure::Kind::OutputClosed {
        return Err(failure);
    }
    if !failure.said {
        output::print_failure(&failure);
    }
    Ok(Failure {
        said: true,
        ..failure
    })
}

/// Whether `--all` takes in attached sites.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Attached {
    Include,
    /// They live with their `sitectl serve`: restarting them is its business.
    LeaveOut,
}

/// Runs `action` on each site `sites` names, in port order for `--all`. A target that
/// names no site, or a site whose action fails, is reported and the others carry on;
/// the exit code is the last failure's. `attached` says what `--all` does with attached sites.
async fn for_each_site(
    client: &Daemon,
    sites: &Sites,
    attached: Attached,
    action: impl AsyncFn(&SiteInfo) -> Result<(), Failure>,
) -> Result<(), Failure> {
    let running = client.ps().await?;
    let mut chosen = Vec::new();
    let mut failure = None;
    if sites.all {
        if running.is_empty() {
            output::print_line("no sites are running")?;
        }
        for site in &running {
            if attached == Attached::LeaveOut && site.attached {
                output::print_line(&format!(
                    "left {} alone: it lives with the `sitectl serve` that brought it up",
                    site.url
                ))?;
            } else {
                chosen.push(site);
            }
        }
    } else {
        for target in &sites.targets {
            match find_site(&running, target) {
                Ok(site) if !chosen.iter().any(|s| s.port == site.port) => chosen.push(site),
                Ok(_) => {}
                Err(error) => failure = Some(said(error)?),
            }
        }
    }
    for site in chosen {
        if let Err(error) = action(site).await {
            failure = Some(said(error)?);
        }
    }
    failure.map_or(Ok(()), Err)
}

/// The site a `PORT|PATH` argument names.
fn find_site<'a>(sites: &'a [SiteInfo], target: &str) -> Result<&'a SiteInfo, Failure> {
    let wanted = transport::parse_target(target);
    let found = match &wanted {
        Target::Port(port) => sites.iter().find(|s| s.port == *port),
        Target::Root(root) => {
            let canonical = root.canonicalize().unwrap_or_else(|_| root.clone());
            sites
                .iter()
                .find(|s| s.root == canonical || s.root == *root)
        }
        Target::All => None,
    };
    found.ok_or_else(|| Failure::daemon(sited_proto::Error::NoSuchSite { target: wanted }))
}

/// The site whose folder holds the current directory (the innermost, if nested).
fn site_here(sites: &[SiteInfo]) -> Option<&SiteInfo> {
    let here = std::env::current_dir()
        .and_then(|dir| dir.canonicalize())
        .unwrap_or_default();
    sites
        .iter()
        .filter(|site| here.starts_with(&site.root))
        .max_by_key(|site| site.root.components().count())
}

/// `sitectl VERB` without a target: the site whose folder holds the current directory,
/// else the only site there is.
fn default_site<'a>(sites: &'a [SiteInfo], verb: &str) -> Result<&'a SiteInfo, Failure> {
    match (site_here(sites), sites) {
        (Some(site), _) => Ok(site),
        (None, [only]) => Ok(only),
        (None, []) => Err(Failure::refused("no sites are running")
            .hint("`sitectl up PATH` starts one; `sitectl up PATH --open` opens it too")),
        (None, _) => Err(Failure::usage(format!(
            "{} sites are running and you are in none of their folders: which one?",
            sites.len()
        ))
        .hint(format!(
            "`sitectl {verb} PORT`, e.g. `sitectl {verb} {}`; `sitectl ps` lists them",
            sites[0].port
        ))),
    }
}
