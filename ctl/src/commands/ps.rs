//! `sitectl ps`: every site the daemon serves.

use sited_proto::Paths;

use super::connect_or_start;
use crate::failure::Failure;
use crate::output;
use crate::transport::Daemon;

/// Lists the sites. With no daemon running and none remembered there are none, and no
/// daemon is started to say so; remembered sites are brought back (a daemon started, as
/// any call does) so that they are listed as they are.
pub async fn run(json: bool) -> Result<(), Failure> {
    let paths = Paths::from_env().map_err(Failure::paths)?;
    let connected = match Daemon::connect(&paths).await? {
        Some(client) => Some(client),
        None if remembers_sites(&paths) => Some(connect_or_start().await?),
        None => None,
    };
    let sites = match connected {
        Some(client) => client.ps().await?,
        None => {
            if !json {
                output::print_note("sited is not running: no sites");
                return Ok(());
            }
            Vec::new()
        }
    };
    if json {
        output::print_ps_json(&sites)?;
    } else {
        output::print_ps_table(&sites)?;
    }
    Ok(())
}

/// Whether a daemon started now might bring sites back: its state file (or that file's
/// backup) is there and does not say plainly that there are none. Read loosely (a file
/// that cannot be parsed counts, since the daemon may recover from it): only whether a
/// `sites` array is empty is looked at here.
fn remembers_sites(paths: &Paths) -> bool {
    let mut backup = paths.state_file.clone().into_os_string();
    backup.push(".bak");
    [paths.state_file.clone(), backup.into()]
        .iter()
        .any(|file| {
            let Ok(bytes) = std::fs::read(file) else {
                return false;
            };
            serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .and_then(|state| state.get("sites")?.as_array().map(Vec::is_empty))
                != Some(true)
        })
}
