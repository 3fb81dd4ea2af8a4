//! `sitectl down`: take sites down.

use sited_proto::Target;

use sited_proto::Paths;

use super::{connect_or_start, said};
use crate::failure::Failure;
use crate::transport::Daemon;
use crate::{output, transport};

/// Which sites `down` takes down: like `restart`'s, but none named means the site of the
/// current folder.
#[derive(Debug, clap::Args)]
pub struct Targets {
    /// Ports or site root paths [default: the site whose folder you are in].
    #[arg(value_name = "PORT|PATH", conflicts_with = "all")]
    pub targets: Vec<String>,
    /// Every site.
    #[arg(long)]
    pub all: bool,
}

pub async fn run(sites: Targets) -> Result<(), Failure> {
    if !sites.all && sites.targets.is_empty() {
        return down_here().await;
    }
    let client = connect_or_start().await?;
    let targets = if sites.all {
        vec![Target::All]
    } else {
        sites
            .targets
            .iter()
            .map(|t| transport::parse_target(t))
            .collect()
    };
    let mut failure = None;
    for target in targets {
        match client.down(target).await {
            Ok(stopped) => output::print_down(&stopped)?,
            Err(error) => failure = Some(said(error)?),
        }
    }
    failure.map_or(Ok(()), Err)
}

/// `down` with no argument: the site whose folder holds the current directory. Never
/// starts a daemon (there would be nothing to take down), and never guesses another site.
async fn down_here() -> Result<(), Failure> {
    let paths = Paths::from_env().map_err(Failure::paths)?;
    let Some(client) = Daemon::connect(&paths).await? else {
        return Err(Failure::usage("no sites are running: nothing to take down"));
    };
    let sites = client.ps().await?;
    let Some(site) = super::site_here(&sites) else {
        return Err(Failure::usage(
            "you are in none of the sites' folders: which site should go down?",
        )
        .hint("`sitectl down PORT|PATH`, or `sitectl down --all`; `sitectl ps` lists them"));
    };
    let stopped = client.down(Target::Port(site.port)).await?;
    output::print_down(&stopped)?;
    Ok(())
}
