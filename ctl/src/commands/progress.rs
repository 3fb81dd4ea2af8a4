//! A build's progress while a call waits for it.

use std::time::Duration;

use sited_proto::SiteInfo;

use crate::output::ProgressLine;
use crate::transport::Daemon;

/// A build that has not finished after this long shows its progress (on a terminal).
const PROGRESS_AFTER: Duration = Duration::from_secs(1);
/// How often the progress line is brought up to date.
const PROGRESS_EVERY: Duration = Duration::from_millis(100);

/// Runs `call` (one that waits for a build); if it takes longer than a second and
/// stderr is a terminal, shows the build's progress meanwhile. The progress comes from
/// `ps`, asked on the same connection while the call is out.
pub async fn showing<T>(
    daemon: &Daemon,
    call: impl Future<Output = T>,
    site: impl Fn(&SiteInfo) -> bool,
) -> T {
    use std::io::IsTerminal;
    let mut call = std::pin::pin!(call);
    if !std::io::stderr().is_terminal() {
        return call.await;
    }
    tokio::select! {
        answer = &mut call => return answer,
        () = tokio::time::sleep(PROGRESS_AFTER) => {}
    }
    let mut line = ProgressLine::default();
    let mut ticks = tokio::time::interval(PROGRESS_EVERY);
    let answer = loop {
        tokio::select! {
            answer = &mut call => break answer,
            _ = ticks.tick() => {
                let sites = daemon.ps().await;
                if let Some(info) = sites.ok().and_then(|s| s.into_iter().find(|s| site(s))) {
                    line.show(&info);
                }
            }
        }
    };
    line.clear();
    answer
}
