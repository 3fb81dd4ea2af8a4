//! The control plane in-process: the real [`Server`] behind tarpc's in-memory channel
//! transport, one test per RPC and its errors, cancellation by the client's deadline and
//! a client that vanishes mid-call. Waits for the clock (long-polls, deadlines) run on
//! tokio's paused clock; tests that build a site use the real one, since a build runs on
//! rayon threads the paused clock cannot see.

use std::path::Path;
use std::time::{Duration, Instant};

use sited_proto::{SiteState, SitedClient};
use tarpc::client::RpcError;
use tarpc::context;

use super::*;
use crate::hooks::TestHooks;
use crate::logs::LogHub;
use crate::registry::RegistryConfig;

/// A daemon's control plane with one client connected over an in-memory channel.
struct Rig {
    client: SitedClient,
    registry: Arc<Registry>,
    /// The daemon's root token: cancelled by the `shutdown` call.
    root: CancellationToken,
    /// Stops the connection, as the daemon does once its sites are stopped.
    stop: CancellationToken,
    tracker: TaskTracker,
}

fn rig() -> Rig {
    let root = CancellationToken::new();
    let tracker = TaskTracker::new();
    let registry = Arc::new(Registry::new(RegistryConfig {
        token: root.child_token(),
        tracker: tracker.clone(),
        watcher: None,
        pool: crate::serve::Pool::default(),
        store: None,
        logs: LogHub::default(),
        hooks: TestHooks::default(),
        own_dirs: Vec::new(),
    }));
    let (client_side, server_side) = tarpc::transport::channel::unbounded();
    let stop = CancellationToken::new();
    let server = Server {
        registry: registry.clone(),
        shutdown: root.clone(),
        attached: Arc::default(),
        closed: CancellationToken::new(),
    };
    tracker.spawn(serve_connection(
        server_side,
        server,
        CancellationToken::new(),
        stop.clone(),
        tracker.clone(),
    ));
    let client = SitedClient::new(tarpc::client::Config::default(), client_side).spawn();
    Rig {
        client,
        registry,
        root,
        stop,
        tracker,
    }
}

/// A follower's long-poll on the daemon's own log, for lines after the first.
fn follow_daemon_log() -> LogQuery {
    LogQuery {
        port: None,
        after: Some(0),
        limit: 10,
        wait_ms: 30_000,
    }
}

/// A call context whose deadline is `after` from now.
fn within(after: Duration) -> context::Context {
    let mut ctx = context::current();
    ctx.deadline = Instant::now() + after;
    ctx
}

/// Enough for any build of the tiny sites here on a loaded machine; a deadline, never a
/// budget the test asserts.
const BUILD: Duration = Duration::from_secs(60);

fn site_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("index.md"), "# Home\n").unwrap();
    dir
}

fn spec(root: &Path) -> SiteSpec {
    SiteSpec {
        root: root.to_path_buf(),
        port: Some(0),
        drafts: false,
        attach: false,
        host: None,
        with: None,
    }
}

/// Polls `condition` until it holds or `deadline` passes.
async fn eventually(deadline: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let until = tokio::time::Instant::now() + deadline;
    while tokio::time::Instant::now() < until {
        if condition() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    condition()
}

#[tokio::test(start_paused = true)]
async fn hello_names_this_daemon() {
    let rig = rig();
    let hello = rig
        .client
        .hello(context::current(), PROTOCOL_VERSION + 1)
        .await
        .unwrap();
    assert_eq!(hello.protocol, PROTOCOL_VERSION);
    assert_eq!(hello.version, VERSION);
    assert_eq!(hello.pid, std::process::id());
}

#[tokio::test]
async fn up_ps_down_round_trip() {
    let rig = rig();
    let dir = site_dir();
    let up = rig
        .client
        .up(within(BUILD), spec(dir.path()))
        .await
        .unwrap();
    let info = up.unwrap();
    assert_eq!(info.state, SiteState::Serving);
    let ps = rig.client.ps(within(BUILD)).await.unwrap();
    assert_eq!(ps.len(), 1);
    assert_eq!(ps[0].port, info.port);
    let down = rig
        .client
        .down(within(BUILD), Target::Port(info.port))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(down[0].state, SiteState::Stopped);
    assert!(rig.client.ps(within(BUILD)).await.unwrap().is_empty());
}

#[tokio::test(start_paused = true)]
async fn up_refusals_cross_the_wire_as_errors() {
    let rig = rig();
    let missing = rig
        .client
        .up(within(BUILD), spec(Path::new("/definitely/not/here")))
        .await
        .unwrap();
    assert!(
        matches!(missing, Err(Error::RootMissing { .. })),
        "{missing:?}"
    );
    let relative = rig
        .client
        .up(within(BUILD), spec(Path::new("relative/site")))
        .await
        .unwrap();
    assert!(
        matches!(relative, Err(Error::RootNotAbsolute { .. })),
        "{relative:?}"
    );
    assert!(rig.registry.ps().is_empty());
}

#[tokio::test(start_paused = true)]
async fn down_restart_rebuild_of_no_site_say_so() {
    let rig = rig();
    let no_site = Error::NoSuchSite {
        target: Target::Port(1),
    };
    let down = rig.client.down(within(BUILD), Target::Port(1)).await;
    assert_eq!(down.unwrap(), Err(no_site.clone()));
    let restart = rig.client.restart(within(BUILD), 1).await;
    assert_eq!(restart.unwrap(), Err(no_site.clone()));
    let rebuild = rig.client.rebuild(within(BUILD), 1).await;
    assert_eq!(rebuild.unwrap(), Err(no_site));
}

#[tokio::test]
async fn restart_and_rebuild_answer_once_the_build_is_done() {
    let rig = rig();
    let dir = site_dir();
    let up = rig
        .client
        .up(within(BUILD), spec(dir.path()))
        .await
        .unwrap()
        .unwrap();
    std::fs::write(dir.path().join("more.md"), "# More\n").unwrap();
    let rebuilt = rig
        .client
        .rebuild(within(BUILD), up.port)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rebuilt.pages, up.pages + 1, "the new page is in the build");
    let restarted = rig
        .client
        .restart(within(BUILD), up.port)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(restarted.port, up.port);
    assert_eq!(restarted.state, SiteState::Serving);
    let attached_dir = site_dir();
    let attached = rig
        .client
        .up(
            within(BUILD),
            SiteSpec {
                attach: true,
                ..spec(attached_dir.path())
            },
        )
        .await
        .unwrap()
        .unwrap();
    let refused = rig.client.restart(within(BUILD), attached.port).await;
    assert_eq!(
        refused.unwrap(),
        Err(Error::SiteAttached {
            port: attached.port
        })
    );
}

#[tokio::test(start_paused = true)]
async fn logs_of_an_unknown_site_is_no_such_site() {
    let rig = rig();
    let query = LogQuery {
        port: Some(1),
        after: None,
        limit: 10,
        wait_ms: 0,
    };
    let lines = rig.client.logs(within(BUILD), query).await.unwrap();
    assert_eq!(
        lines,
        Err(Error::NoSuchSite {
            target: Target::Port(1)
        })
    );
}

/// A follower's long-poll waits (here on the paused clock) for its full wait, then
/// answers with nothing new.
#[tokio::test(start_paused = true)]
async fn logs_long_poll_waits_its_time_then_answers_empty() {
    let rig = rig();
    let query = LogQuery {
        port: None,
        after: Some(0),
        limit: 10,
        wait_ms: 5_000,
    };
    let started = tokio::time::Instant::now();
    let lines = rig.client.logs(within(BUILD), query).await.unwrap();
    assert_eq!(lines, Ok(Vec::new()));
    assert!(started.elapsed() >= Duration::from_secs(5));
}

/// Issue 16.2: a long-poll ends at once when the daemon shuts down, saying so.
#[tokio::test(start_paused = true)]
async fn shutdown_ends_a_log_long_poll() {
    let rig = rig();
    let query = follow_daemon_log();
    let follower = rig.client.clone();
    let follow = tokio::spawn(async move { follower.logs(within(BUILD), query).await });
    tokio::task::yield_now().await;
    rig.client.shutdown(within(BUILD)).await.unwrap();
    assert!(rig.root.is_cancelled(), "shutdown cancels the daemon");
    let started = tokio::time::Instant::now();
    let lines = follow.await.unwrap().unwrap();
    assert_eq!(lines, Err(Error::ShuttingDown));
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the long-poll ended with the shutdown, not at its own end"
    );
}

/// A follower that asks once the shutdown has begun is told so, even with lines to
/// give: given them, it would ask again, and that call could find the connection
/// closed (`sitectl logs -f` then failed instead of saying the daemon is going).
#[tokio::test]
async fn a_log_query_during_the_shutdown_is_told_so_even_with_lines_waiting() {
    use tracing_subscriber::layer::SubscriberExt;

    let rig = rig();
    let subscriber = tracing_subscriber::registry().with(rig.registry.logs().layer());
    tracing::subscriber::with_default(subscriber, || {
        tracing::info!("a line to give");
    });
    let query = follow_daemon_log();
    let lines = rig.client.logs(within(BUILD), query.clone()).await.unwrap();
    assert!(matches!(&lines, Ok(lines) if lines.len() == 1), "{lines:?}");
    rig.client.shutdown(within(BUILD)).await.unwrap();
    let lines = rig.client.logs(within(BUILD), query).await.unwrap();
    assert_eq!(lines, Err(Error::ShuttingDown));
}

/// The daemon stops its connections right after its sites: an answer made as it stops
/// (a follower told of the shutdown) still reaches the client, and a call made just
/// then is answered, not cut off (`sitectl logs -f` failed so, now and then).
#[tokio::test]
async fn calls_answered_as_the_daemon_stops_reach_the_client() {
    let rig = rig();
    let query = follow_daemon_log();
    let follower = rig.client.clone();
    let waiting = query.clone();
    let follow = tokio::spawn(async move { follower.logs(within(BUILD), waiting).await });
    tokio::task::yield_now().await;
    // As the daemon stops: its root, then (its sites stopped) its connections.
    rig.root.cancel();
    rig.stop.cancel();
    let told = follow.await.unwrap();
    assert!(matches!(told, Ok(Err(Error::ShuttingDown))), "{told:?}");
    let told = rig.client.logs(within(BUILD), query).await;
    assert!(matches!(told, Ok(Err(Error::ShuttingDown))), "{told:?}");
}

/// A call whose deadline passes fails on the client with `DeadlineExceeded`, and the
/// daemon drops the work (its request task ends).
#[tokio::test(start_paused = true)]
async fn a_call_past_its_deadline_is_cancelled() {
    let rig = rig();
    let query = follow_daemon_log();
    let result = rig.client.logs(within(Duration::from_secs(1)), query).await;
    assert!(
        matches!(result, Err(RpcError::DeadlineExceeded)),
        "{result:?}"
    );
    // Only the connection's own task is left: the request was dropped at its deadline.
    assert!(
        eventually(Duration::from_secs(5), || rig.tracker.len() == 1).await,
        "{} tasks left",
        rig.tracker.len()
    );
}

/// A client that vanishes while a call is in flight takes its attached site down, and
/// only that one.
#[tokio::test]
async fn a_client_vanishing_mid_call_takes_its_attached_site_down() {
    let rig = rig();
    let (kept_dir, attached_dir) = (site_dir(), site_dir());
    let kept = rig
        .client
        .up(within(BUILD), spec(kept_dir.path()))
        .await
        .unwrap()
        .unwrap();
    let attached = rig
        .client
        .up(
            within(BUILD),
            SiteSpec {
                attach: true,
                ..spec(attached_dir.path())
            },
        )
        .await
        .unwrap()
        .unwrap();
    assert!(attached.attached);
    let query = LogQuery {
        port: Some(attached.port),
        after: Some(u64::MAX),
        limit: 10,
        wait_ms: 30_000,
    };
    let client = rig.client;
    let call = tokio::spawn(async move { client.logs(within(BUILD), query).await });
    tokio::task::yield_now().await;
    // The client process dies: its call and its connection with it.
    call.abort();
    let registry = rig.registry.clone();
    assert!(
        eventually(BUILD, || registry
            .ps()
            .iter()
            .all(|s| s.port != attached.port))
        .await,
        "{:?}",
        registry.ps()
    );
    let left = rig.registry.ps();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].port, kept.port);
    assert!(std::net::TcpListener::bind(("127.0.0.1", attached.port)).is_ok());
}

/// A server for raw streams, as the socket's accept loop makes one.
fn raw_server(budget: guard::Budget) -> (impl Fn() -> tokio::net::UnixStream, TaskTracker) {
    let rig = rig();
    let server = Server {
        registry: rig.registry.clone(),
        shutdown: rig.root.clone(),
        attached: Arc::default(),
        closed: CancellationToken::new(),
    };
    let tracker = rig.tracker.clone();
    let spawner = tracker.clone();
    let connect = move || {
        let (client, daemon_side) = tokio::net::UnixStream::pair().unwrap();
        spawner.spawn(serve_stream(
            daemon_side,
            server.clone(),
            budget.clone(),
            CancellationToken::new(),
            spawner.clone(),
        ));
        client
    };
    (connect, tracker)
}

/// Issue 12.13: a connection that sends nothing is closed after the idle timeout.
#[tokio::test(start_paused = true)]
async fn an_idle_connection_is_closed() {
    use tokio::io::AsyncReadExt;
    let (connect, _tracker) = raw_server(guard::Budget::new(guard::UNFINISHED_BUDGET));
    let mut client = connect();
    let started = tokio::time::Instant::now();
    let mut byte = [0u8; 1];
    let read = client.read(&mut byte).await.unwrap();
    assert_eq!(read, 0, "the daemon closed the connection");
    assert!(started.elapsed() >= guard::IDLE_TIMEOUT);
}

/// Issue 12.13: unfinished frames across connections are bounded: the connection whose
/// bytes would exceed the budget is closed; the others are not.
#[tokio::test]
async fn unfinished_frames_across_connections_are_bounded() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    const LIMIT: usize = 1024 * 1024;
    let budget = guard::Budget::new(LIMIT);
    let (connect, _tracker) = raw_server(budget.clone());
    // Each announces a 3 MiB frame and sends 600 KiB of it.
    async fn half_frame(client: &mut tokio::net::UnixStream) -> std::io::Result<()> {
        let mut bytes = (3u32 * 1024 * 1024).to_be_bytes().to_vec();
        bytes.resize(4 + 600 * 1024, b'x');
        client.write_all(&bytes).await
    }
    let mut first = connect();
    half_frame(&mut first).await.unwrap();
    assert!(
        eventually(BUILD, || budget.used() == 4 + 600 * 1024).await,
        "{}",
        budget.used()
    );
    let mut second = connect();
    let _ = half_frame(&mut second).await;
    let mut byte = [0u8; 1];
    let closed = tokio::time::timeout(BUILD, second.read(&mut byte)).await;
    assert!(
        matches!(closed, Ok(Ok(0)) | Ok(Err(_))),
        "the connection over the budget was closed: {closed:?}"
    );
    assert!(
        eventually(BUILD, || budget.used() == 4 + 600 * 1024).await,
        "the closed connection's bytes are given back: {}",
        budget.used()
    );
    // The first is still served: its frame may still come.
    let still = tokio::time::timeout(Duration::from_millis(50), first.read(&mut byte)).await;
    assert!(
        still.is_err(),
        "the first connection is still open: {still:?}"
    );
}
