//! Waiting for a build: its progress on the terminal, and the daemon's pulse.

use std::time::Duration;

use sited_proto::SiteInfo;

use crate::failure::Failure;
use crate::output::ProgressLine;
use crate::transport::Daemon;

/// How often a client waiting for a build checks that the daemon still answers. A build
/// may take minutes, so the call's own deadline is long; a daemon that stops answering
/// (frozen, SIGSTOP) is found out by this, within its interval plus a ping's deadline.
const PULSE_EVERY: Duration = Duration::from_secs(2);

/// A build that has not finished after this long shows its progress (on a terminal).
const PROGRESS_AFTER: Duration = Duration::from_secs(1);
/// How often the progress line is brought up to date.
const PROGRESS_EVERY: Duration = Duration::from_millis(100);

/// Runs `call` (one that waits for a build of what `waiting_for` names) while checking
/// that the daemon still answers; shows the build's progress on a terminal. Fails,
/// naming the daemon's pid, as soon as the daemon stops answering.
pub async fn waiting<T>(
    daemon: &Daemon,
    waiting_for: &str,
    call: impl Future<Output = T>,
    site: impl Fn(&SiteInfo) -> bool,
) -> Result<T, Failure> {
    tokio::select! {
        answer = showing(daemon, call, site) => Ok(answer),
        failure = pulse(daemon, waiting_for) => Err(failure),
    }
}

/// Resolves only when the daemon fails to answer a ping.
async fn pulse(daemon: &Daemon, waiting_for: &str) -> Failure {
    let mut ticks = tokio::time::interval(PULSE_EVERY);
    ticks.tick().await;
    loop {
        ticks.tick().await;
        if let Err(failure) = daemon.ping(waiting_for).await {
            return failure;
        }
    }
}

/// Runs `call` (one that waits for a build); if it takes longer than a second and
/// stderr is a terminal, shows the build's progress meanwhile. The progress comes from
/// `ps`, asked on the same connection while the call is out.
async fn showing<T>(
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
