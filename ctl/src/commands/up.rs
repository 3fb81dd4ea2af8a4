//! `sitectl up` and `sitectl serve` (`up --attach`).

use sited_proto::{SiteInfo, Target};

use super::{SiteArgs, connect_or_start, fail_if_failed, progress};
use crate::failure::Failure;
use crate::transport::Daemon;
use crate::{browser, output};

pub async fn run(site: SiteArgs, attach: bool) -> Result<(), Failure> {
    let client = connect_or_start().await?;
    let root = std::path::absolute(&site.path).map_err(|error| {
        Failure::usage(format!("cannot resolve {}", site.path.display())).because(error)
    })?;
    if let Some(host) = site.host.as_deref()
        && output::host_is_exposed(host)
    {
        output::warn_exposed(host);
    }
    let spec = sited_proto::SiteSpec {
        root,
        port: site.port,
        drafts: site.drafts,
        attach,
        host: site.host,
        with: site.with,
    };
    let canonical = spec
        .root
        .canonicalize()
        .unwrap_or_else(|_| spec.root.clone());
    let waiting_for = format!("waiting for the first build of {}", canonical.display());
    let call = client.up(spec);
    let info = progress::waiting(&client, &waiting_for, call, |s| s.root == canonical).await??;
    output::print_site_result("serving", &info)?;
    fail_if_failed(&info)?;
    if site.open
        && let Err(failure) = browser::open(&info.url)
    {
        output::print_warning(&failure);
    }
    if !attach {
        return Ok(());
    }
    if !info.attached {
        output::print_note(&format!(
            "note: {} was already being served by the daemon; not attaching to it (`sitectl down {}` stops it)",
            info.root.display(),
            info.port
        ));
        return Ok(());
    }
    output::print_note("attached: the site stops when this command ends (Ctrl+C)");
    serve_attached(&client, &info).await
}

/// Follows an attached site's log until Ctrl+C, then takes it down. Any other end of
/// this process closes the connection, and the daemon takes the site down itself.
async fn serve_attached(client: &Daemon, site: &SiteInfo) -> Result<(), Failure> {
    super::logs::print(client, Some(site.port), 50, true).await?;
    let stopped = client.down(Target::Port(site.port)).await?;
    output::print_down(&stopped)?;
    Ok(())
}
