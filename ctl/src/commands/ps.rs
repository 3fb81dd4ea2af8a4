//! `sitectl ps`: every site the daemon serves.

use super::connect_or_start;
use crate::failure::Failure;
use crate::output;

pub async fn run(json: bool) -> Result<(), Failure> {
    let client = connect_or_start().await?;
    let sites = client.ps().await?;
    if json {
        output::print_ps_json(&sites)?;
    } else {
        output::print_ps_table(&sites)?;
    }
    Ok(())
}
