use std::fs;

use super::*;

fn site_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("index.md"), "# Home\n\nHello.").unwrap();
    dir
}

fn registry(store: Option<StateStore>) -> Arc<Registry> {
    Arc::new(Registry::new(RegistryConfig {
        token: CancellationToken::new(),
        tracker: TaskTracker::new(),
        watcher: Watcher::new().ok(),
        pool: crate::serve::Pool::default(),
        store,
        logs: LogHub::default(),
        hooks: TestHooks::default(),
        own_dirs: Vec::new(),
    }))
}

fn spec(root: &Path, port: Option<u16>) -> SiteSpec {
    SiteSpec {
        root: root.to_path_buf(),
        port,
        drafts: false,
        attach: false,
        host: None,
        with: None,
    }
}

#[tokio::test]
async fn up_is_idempotent_and_down_frees_the_port() {
    let registry = registry(None);
    let dir = site_dir();
    let first = registry.up(spec(dir.path(), Some(0))).await.unwrap().0;
    assert_eq!(first.state, sited_proto::SiteState::Serving);
    assert_eq!(first.pages, 2, "home and 404");
    let again = registry.up(spec(dir.path(), None)).await.unwrap().0;
    assert_eq!(again.port, first.port);
    assert_eq!(registry.ps().len(), 1);
    let stopped = registry.down(&Target::Port(first.port)).await.unwrap();
    assert_eq!(stopped[0].state, sited_proto::SiteState::Stopped);
    assert!(registry.ps().is_empty());
    std::net::TcpListener::bind(("127.0.0.1", first.port)).expect("port is free again");
}

#[tokio::test]
async fn failed_start_leaves_nothing_behind() {
    let registry = registry(None);
    let missing = registry
        .up(spec(Path::new("/definitely/not/here"), None))
        .await
        .map(|(info, _)| info);
    assert!(
        matches!(missing, Err(Error::RootMissing { .. })),
        "{missing:?}"
    );
    let holder = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let port = holder.local_addr().unwrap().port();
    let dir = site_dir();
    let taken = registry
        .up(spec(dir.path(), Some(port)))
        .await
        .map(|(info, _)| info);
    assert!(matches!(taken, Err(Error::PortInUse { .. })), "{taken:?}");
    assert!(registry.ps().is_empty());
}

#[tokio::test]
async fn restart_keeps_the_port_and_builds_anew() {
    let registry = registry(None);
    let dir = site_dir();
    let first = registry.up(spec(dir.path(), Some(0))).await.unwrap().0;
    fs::write(dir.path().join("more.md"), "# More\n").unwrap();
    let restarted = registry.restart(first.port).await.unwrap();
    assert_eq!(restarted.port, first.port);
    assert_eq!(restarted.state, sited_proto::SiteState::Serving);
    assert_eq!(restarted.pages, 3, "the new page is in the fresh build");
    assert!(restarted.started_at_ms >= first.started_at_ms);
    assert_eq!(registry.ps().len(), 1);
    let missing = registry.restart(1).await.unwrap_err();
    assert!(matches!(missing, Error::NoSuchSite { .. }), "{missing:?}");
}

#[tokio::test]
async fn restart_refuses_a_root_that_is_gone_and_keeps_the_site() {
    let registry = registry(None);
    let dir = site_dir();
    let up = registry.up(spec(dir.path(), Some(0))).await.unwrap().0;
    let root = dir.path().to_path_buf();
    drop(dir);
    let error = registry.restart(up.port).await.unwrap_err();
    assert!(matches!(error, Error::RootMissing { .. }), "{error:?}");
    assert_eq!(registry.ps().len(), 1, "{} is still listed", root.display());
}

#[tokio::test]
async fn attached_sites_are_not_restarted() {
    let registry = registry(None);
    let dir = site_dir();
    let (up, attachment) = registry
        .up(SiteSpec {
            attach: true,
            ..spec(dir.path(), Some(0))
        })
        .await
        .unwrap();
    let error = registry.restart(up.port).await.unwrap_err();
    assert_eq!(error, Error::SiteAttached { port: up.port });
    assert_eq!(attachment.expect("made attached").port(), up.port);
}

#[tokio::test]
async fn dropping_the_attachment_takes_the_site_down() {
    let registry = registry(None);
    let dir = site_dir();
    let (up, attachment) = registry
        .up(SiteSpec {
            attach: true,
            ..spec(dir.path(), Some(0))
        })
        .await
        .unwrap();
    // Only the call that created the site holds its life.
    let (again, none) = registry.up(spec(dir.path(), None)).await.unwrap();
    assert_eq!(again.port, up.port);
    assert!(none.is_none());
    drop(attachment);
    assert_eq!(
        registry.ps()[0].state,
        sited_proto::SiteState::Stopping,
        "listed as stopping from the moment the client went"
    );
    // The site and the registry's detaching both run on the tracker.
    let tasks = registry.config.tracker.clone();
    tasks.close();
    tasks.wait().await;
    assert!(registry.ps().is_empty());
    std::net::TcpListener::bind(("127.0.0.1", up.port)).expect("port is free again");
}

#[tokio::test]
async fn ps_shows_stopping_while_down_waits() {
    let registry = registry(None);
    let dir = site_dir();
    let (up, _) = registry.up(spec(dir.path(), Some(0))).await.unwrap();
    let target = Target::Port(up.port);
    let down = registry.down(&target);
    let mut down = std::pin::pin!(down);
    // One poll asks the site to stop; it cannot be gone before its task has run.
    assert!(futures::poll!(down.as_mut()).is_pending());
    let listed = registry.ps();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].state, sited_proto::SiteState::Stopping);
    let stopped = down.await.unwrap();
    assert_eq!(stopped[0].state, sited_proto::SiteState::Stopped);
    assert!(registry.ps().is_empty());
}

#[tokio::test]
async fn up_of_a_root_on_its_way_down_waits_and_starts_afresh() {
    let registry = registry(None);
    let dir = site_dir();
    let (first, _) = registry.up(spec(dir.path(), Some(0))).await.unwrap();
    let Some(Entry::Live(site)) = registry.entry(first.port) else {
        panic!("live");
    };
    site.begin_stop();
    let (second, _) = registry.up(spec(dir.path(), None)).await.unwrap();
    assert_eq!(second.state, sited_proto::SiteState::Serving);
    assert!(second.started_at_ms >= first.started_at_ms);
    assert_eq!(registry.ps().len(), 1);
    assert!(!registry.ps()[0].state.name().contains("stop"));
}

#[tokio::test]
async fn rebuild_reads_everything_again_and_waits_for_the_build() {
    let registry = registry(None);
    let dir = site_dir();
    let up = registry.up(spec(dir.path(), Some(0))).await.unwrap().0;
    let first = up.last_build.unwrap();
    // Written behind the watcher's back as far as the result goes: only a full
    // rebuild is sure to have it.
    fs::write(dir.path().join("more.md"), "# More\n").unwrap();
    let rebuilt = registry.rebuild(up.port).await.unwrap();
    let build = rebuilt.last_build.unwrap();
    assert_eq!(rebuilt.pages, 3, "{build:?}");
    assert_eq!(build.rendered, 3, "every page is rendered anew: {build:?}");
    assert!(build.finished_at_ms >= first.finished_at_ms);
    let missing = registry.rebuild(1).await.unwrap_err();
    assert!(matches!(missing, Error::NoSuchSite { .. }), "{missing:?}");
}

#[tokio::test]
async fn down_of_unknown_site_is_an_error() {
    let registry = registry(None);
    let error = registry.down(&Target::Port(1)).await.unwrap_err();
    assert_eq!(
        error,
        Error::NoSuchSite {
            target: Target::Port(1)
        }
    );
    assert!(registry.down(&Target::All).await.unwrap().is_empty());
}

#[tokio::test]
async fn detached_sites_are_remembered_and_attached_ones_are_not() {
    let state = tempfile::tempdir().unwrap();
    let store = StateStore::new(state.path().join("state.json"));
    let registry = registry(Some(store.clone()));
    let (a, b) = (site_dir(), site_dir());
    let kept = registry.up(spec(a.path(), Some(0))).await.unwrap().0;
    let (attached, _attachment) = registry
        .up(SiteSpec {
            attach: true,
            ..spec(b.path(), Some(0))
        })
        .await
        .unwrap();
    assert!(attached.attached);
    let remembered = store.load().sites;
    assert_eq!(remembered.len(), 1);
    assert_eq!(remembered[0].port, kept.port);
    assert_eq!(remembered[0].root, a.path().canonicalize().unwrap());

    // Shutdown stops sites without forgetting them.
    registry.stop_all().await;
    assert_eq!(store.load().sites.len(), 1);
}

#[tokio::test]
async fn restore_brings_sites_back_and_lists_the_ones_it_cannot() {
    let registry = registry(None);
    let dir = site_dir();
    let free = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let port = free.local_addr().unwrap().port();
    drop(free);
    let gone = PersistedSite {
        root: "/no/such/site".into(),
        port: 1,
        drafts: false,
        host: None,
        with: None,
    };
    let good = PersistedSite {
        root: dir.path().to_path_buf(),
        port,
        drafts: false,
        host: None,
        with: None,
    };
    registry.restore(&[good, gone]).await;
    let sites = registry.ps();
    assert_eq!(sites.len(), 2);
    let failed = sites.iter().find(|s| s.port == 1).unwrap();
    assert!(
        matches!(&failed.state, sited_proto::SiteState::Failed { reason } if reason.contains("could not be restored")),
        "{failed:?}"
    );
    let Some(Entry::Live(handle)) = registry.entry(port) else {
        panic!("the restored site is live");
    };
    assert_eq!(
        handle.settled().await.state,
        sited_proto::SiteState::Serving
    );
    // A failed placeholder can be taken down like any site.
    registry.down(&Target::Port(1)).await.unwrap();
}

/// S23 (issue 12.6, issue 16.3): one site's watch registration never stalls the others.
mod registration {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A site of `dirs` folders of `per_dir` Markdown files each.
    fn big_site(dirs: usize, per_dir: usize) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("index.md"), "# Big\n").unwrap();
        for d in 0..dirs {
            let sub = dir.path().join(format!("d{d}"));
            fs::create_dir(&sub).unwrap();
            for f in 0..per_dir {
                fs::write(sub.join(format!("f{f}.txt")), "x").unwrap();
            }
        }
        dir
    }

    /// The status line of a GET of `/` on `port`.
    async fn status_line(port: u16) -> String {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut reply = Vec::new();
        stream.read_to_end(&mut reply).await.unwrap();
        let reply = String::from_utf8_lossy(&reply);
        reply.lines().next().unwrap_or_default().to_string()
    }

    /// On a single-threaded runtime every task shares one thread: a registration walking
    /// its tree there would hold every other task until it is done. So the order proves
    /// it: another site answers while the big site is still registering (its state is
    /// `starting` until its watch is in place and its first build begins).
    #[tokio::test(flavor = "current_thread")]
    async fn s23_a_30000_file_site_registering_does_not_hold_another_sites_requests() {
        let registry = Arc::new(Registry::new(RegistryConfig {
            token: CancellationToken::new(),
            tracker: TaskTracker::new(),
            watcher: Some(Watcher::new().expect("a file watcher")),
            pool: crate::serve::Pool::default(),
            store: None,
            logs: LogHub::default(),
            hooks: TestHooks::default(),
            own_dirs: Vec::new(),
        }));
        let small = tempfile::tempdir().unwrap();
        fs::write(small.path().join("index.md"), "# Small\n").unwrap();
        let spec = |root: &Path| SiteSpec {
            root: root.to_path_buf(),
            port: Some(0),
            drafts: false,
            attach: false,
            host: None,
            with: None,
        };
        let (other, _) = registry.up(spec(small.path())).await.unwrap();
        let big = big_site(300, 100);
        let started = registry.start(spec(big.path())).await.unwrap();
        let answered = status_line(other.port).await;
        let big_state = started.site.info().state;
        assert_eq!(answered, "HTTP/1.1 200 OK");
        assert_eq!(
            big_state,
            sited_proto::SiteState::Starting,
            "the other site answered only once the big one had registered"
        );
        assert_eq!(
            started.site.settled().await.state,
            sited_proto::SiteState::Serving
        );
        registry.stop_all().await;
    }
}
