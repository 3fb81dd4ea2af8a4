//! `sitectl rebuild`: build sites again from scratch.

use sited_proto::SiteState;

use super::{Attached, Sites, connect_or_start, fail_if_failed, for_each_site, progress};
use crate::failure::Failure;
use crate::output;

pub async fn run(sites: Sites) -> Result<(), Failure> {
    let client = connect_or_start().await?;
    for_each_site(&client, &sites, Attached::Include, async |site| {
        if let SiteState::Failed { reason } = &site.state {
            return Err(Failure::site(site.port, reason));
        }
        let port = site.port;
        let call = client.rebuild(port);
        let waiting_for = format!("waiting for the rebuild of port {port}");
        let info = progress::waiting(&client, &waiting_for, call, |s| s.port == port).await??;
        output::print_site_result("rebuilt", &info)?;
        fail_if_failed(&info)
    })
    .await
}
