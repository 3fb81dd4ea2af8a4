//! `sitectl open`: a site in the browser.

use super::{connect_or_start, default_site, find_site};
use crate::failure::Failure;
use crate::{browser, output};

pub async fn run(target: Option<String>) -> Result<(), Failure> {
    let client = connect_or_start().await?;
    let sites = client.ps().await?;
    let site = match target {
        Some(target) => find_site(&sites, &target)?,
        None => default_site(&sites, "open")?,
    };
    browser::open(&site.url)?;
    output::print_line(&format!("opened {}", site.url))?;
    Ok(())
}
