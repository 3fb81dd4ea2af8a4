//! `sitectl ps`: every site the daemon serves.

use sited_proto::Paths;

use crate::failure::Failure;
use crate::output;
use crate::transport::Daemon;

/// Lists the sites; with no daemon running there are none, and none is started to say so.
pub async fn run(json: bool) -> Result<(), Failure> {
    let paths = Paths::from_env().map_err(Failure::paths)?;
    let sites = match Daemon::connect(&paths).await? {
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
