//! `sitectl down`: take sites down.

use sited_proto::Target;

use super::{Sites, connect_or_start, said};
use crate::failure::Failure;
use crate::{output, transport};

pub async fn run(sites: Sites) -> Result<(), Failure> {
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
