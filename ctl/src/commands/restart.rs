//! `sitectl restart`: take sites down and up again on their ports, with a fresh build.

use super::{Attached, Sites, connect_or_start, fail_if_failed, for_each_site, progress};
use crate::failure::Failure;
use crate::output;

pub async fn run(sites: Sites) -> Result<(), Failure> {
    let client = connect_or_start().await?;
    for_each_site(&client, &sites, Attached::LeaveOut, async |site| {
        let port = site.port;
        let call = client.restart(port);
        let waiting_for = format!("waiting for port {port} to restart");
        let info = progress::waiting(&client, &waiting_for, call, |s| s.port == port).await??;
        output::print_site_result("restarted", &info)?;
        fail_if_failed(&info)
    })
    .await
}
