//! `sitectl logs`: a site's log, or the daemon's; `-f` follows it.

use std::time::Duration;

use sited_proto::{Error, LogQuery, Paths};

use super::{connect_or_start, default_site};
use crate::failure::Failure;
use crate::output;
use crate::transport::Daemon;

/// How long one `logs` call waits for a new line before the client asks again.
const LOG_WAIT: Duration = Duration::from_secs(20);

pub async fn run(
    target: Option<String>,
    daemon: bool,
    follow: bool,
    lines: usize,
) -> Result<(), Failure> {
    if !daemon && target.is_none() {
        // Like `open`: the site of the current folder, else the only one. No daemon means
        // no site: none is started to find that out.
        let paths = Paths::from_env().map_err(Failure::paths)?;
        let Some(client) = Daemon::connect(&paths).await? else {
            return Err(Failure::usage("no sites are running: whose log?")
                .hint("`sitectl logs --daemon` for the daemon's own log"));
        };
        let port = default_site(&client.ps().await?, "logs")?.port;
        return print(&client, Some(port), lines, follow).await;
    }
    let client = connect_or_start().await?;
    let port = match target {
        Some(target) if !daemon => Some(client.port_of(&target).await?),
        _ => None,
    };
    print(&client, port, lines, follow).await
}

/// Prints the last `lines` lines of a site's log (`None`: the daemon's), and with
/// `follow` every new one until Ctrl+C or the daemon's shutdown.
pub async fn print(
    client: &Daemon,
    port: Option<u16>,
    lines: usize,
    follow: bool,
) -> Result<(), Failure> {
    let recent = client
        .logs(LogQuery {
            port,
            after: None,
            limit: lines,
            wait_ms: 0,
        })
        .await?;
    let mut last = recent.last().map_or(0, |line| line.seq);
    output::print_log_lines(&recent)?;
    if !follow {
        return Ok(());
    }
    loop {
        let query = LogQuery {
            port,
            after: Some(last),
            limit: 10_000,
            wait_ms: LOG_WAIT.as_millis() as u64,
        };
        let lines = tokio::select! {
            lines = client.logs_or_refusal(query) => match lines? {
                Ok(lines) => lines,
                // The daemon is going away: so is what there is to follow.
                Err(Error::ShuttingDown) => {
                    output::print_note("the daemon is shutting down: no more lines will come");
                    return Ok(());
                }
                Err(error) => return Err(Failure::daemon(error)),
            },
            _ = tokio::signal::ctrl_c() => return Ok(()),
        };
        if let Some(line) = lines.last() {
            last = line.seq;
        }
        output::print_log_lines(&lines)?;
    }
}
