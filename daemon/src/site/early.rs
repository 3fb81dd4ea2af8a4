//! Serving from the start: a site answers requests while its first build runs.
//!
//! The site binds, starts its server and then builds (it used to build first, leaving
//! connections in the backlog until the whole site was made). A request the published
//! output cannot answer yet asks the build for its URL ([`sited_builder::Wanted`]): the
//! builder renders wanted pages before the rest and hands each over as soon as it is made
//! (see `sited_builder::wanted` for what can come early and why the bytes are the ones the
//! whole build serves). The request is answered from that one resource, or from the
//! whole output once it is published; a URL the site does not have is a 404 only then,
//! when the build knows. A request waits at most [`WAIT`]; a first build longer than that
//! answers it with a 503 and `Retry-After`, never with a 404 it does not know yet.
//!
//! Only the first build: [`Early::finish`] closes the wanted set and from then on every
//! request is answered from the published output (rebuilds keep serving the last good
//! one while they run, as before). A site that fails its first build or goes down during
//! it stops its server; waiting requests are answered from what is published.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sited_builder::{Stage, Wanted};
use tokio::sync::{Notify, watch};

use crate::hooks::Hold;
use crate::serve::Output;

/// How long a request waits for the first build to make its URL.
pub const WAIT: Duration = Duration::from_secs(30);

/// What serving and the first build share.
#[derive(Debug, Clone)]
pub struct Early {
    wanted: Wanted,
    shared: Arc<Shared>,
    output: watch::Sender<Arc<Output>>,
    hold: Option<Hold>,
}

#[derive(Debug, Default)]
struct Shared {
    /// Told when a resource is published and when the build is over.
    changed: Notify,
    /// The first build is over: its output (or the lack of one) is published.
    done: AtomicBool,
}

impl crate::serve::FirstBuild for Early {
    fn answer<'a>(&'a self, path: &'a str) -> futures::future::BoxFuture<'a, Option<Arc<Output>>> {
        Box::pin(Early::answer(self, path))
    }
}

impl Early {
    /// For a site that publishes its output on `output`; `hold` is the test hook
    /// ([`crate::hooks::TestHooks::hold_first_build`]).
    ///
    /// Each resource the build hands over is published at once, added to what is
    /// published (a few resources while the first build runs, so copying the map is
    /// cheap): requests find it there, and so does live reload, whose event stream tells
    /// a page opened early that its URL serves what it shows (an unpublished URL would
    /// tell it to reload, again and again until the build ends).
    pub fn new(output: watch::Sender<Arc<Output>>, hold: Option<Hold>) -> Early {
        let shared = Arc::new(Shared::default());
        let ready = {
            let (shared, output) = (shared.clone(), output.clone());
            move |url: &str, made: &sited_builder::Resource| {
                let resource = crate::serve::Resource::from(made);
                output.send_modify(|published| {
                    Arc::make_mut(published)
                        .resources
                        .insert(url.to_string(), resource);
                });
                shared.changed.notify_waiters();
            }
        };
        let wanted = match &hold {
            Some(hold) => {
                let hold = hold.clone();
                Wanted::with_stage_hook(ready, move |stage| match stage {
                    Stage::Render => hold.wait_asked(),
                    Stage::Rendered => hold.wait_released(),
                })
            }
            None => Wanted::new(ready),
        };
        Early {
            wanted,
            shared,
            output,
            hold,
        }
    }

    /// The set the builder renders first.
    pub fn wanted(&self) -> &Wanted {
        &self.wanted
    }

    /// The first build is over and its output (if any) published: every request waiting
    /// is answered from it, and later ones are answered as usual.
    pub fn finish(&self) {
        self.wanted.close();
        self.shared.done.store(true, Ordering::Release);
        self.shared.changed.notify_waiters();
    }

    /// How to answer a request for `path` (decoded) that the output it was given did
    /// not have: from what is published now, once the first build is over (the output
    /// the request was given may be older than the end of the build); else waits for the
    /// build to publish the URL (or `path/`, which redirects) or to end. `None`: the
    /// build did not make the URL in time.
    pub async fn answer(&self, path: &str) -> Option<Arc<Output>> {
        if self.shared.done.load(Ordering::Acquire) {
            return Some(self.output.borrow().clone());
        }
        let slash = (!path.ends_with('/')).then(|| format!("{path}/"));
        let deadline = tokio::time::sleep(WAIT);
        tokio::pin!(deadline);
        loop {
            let changed = self.shared.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let published = self.output.borrow().clone();
            let has = |url: &str| published.get(url).is_some();
            if self.shared.done.load(Ordering::Acquire)
                || has(path)
                || slash.as_deref().is_some_and(has)
            {
                return Some(published);
            }
            self.wanted.want(path);
            if let Some(slash) = &slash {
                self.wanted.want(slash);
            }
            if let Some(hold) = &self.hold {
                hold.asked();
            }
            tokio::select! {
                () = &mut changed => {}
                () = &mut deadline => return None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::sync::Arc;
    use std::time::Duration;

    use sited_proto::{SiteSpec, SiteState};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_util::sync::CancellationToken;
    use tokio_util::task::TaskTracker;

    use crate::hooks::{Hold, TestHooks};
    use crate::logs::LogHub;
    use crate::registry::{Registry, RegistryConfig};

    /// The whole reply to a GET of `path` on `port` (the test fails rather than hangs).
    async fn get(port: u16, path: &str) -> String {
        let ask = async {
            let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .unwrap();
            let request =
                format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
            stream.write_all(request.as_bytes()).await.unwrap();
            let mut reply = Vec::new();
            stream.read_to_end(&mut reply).await.unwrap();
            String::from_utf8_lossy(&reply).into_owned()
        };
        tokio::time::timeout(Duration::from_secs(60), ask)
            .await
            .unwrap_or_else(|_| panic!("GET {path}: no answer"))
    }

    /// The first event of the live-reload stream of the page at `path`.
    async fn first_event(port: u16, path: &str) -> serde_json::Value {
        let ask = async {
            let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .unwrap();
            let request = format!("GET /__sited/events{path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
            stream.write_all(request.as_bytes()).await.unwrap();
            let mut reply = Vec::new();
            let mut buf = [0u8; 4096];
            loop {
                let n = stream.read(&mut buf).await.unwrap();
                assert!(n > 0, "the stream ended");
                reply.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&reply);
                if let Some(data) = text.split("data: ").nth(1)
                    && let Some((json, _)) = data.split_once("\n\n")
                {
                    return serde_json::from_str(json).unwrap();
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(60), ask)
            .await
            .expect("a live-reload event")
    }

    fn header<'r>(reply: &'r str, name: &str) -> Option<&'r str> {
        reply.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name).then(|| value.trim())
        })
    }

    /// The site's first build is held (its render stage waits for a request, and the
    /// build cannot end until the test lets it): a page, a file and a redirect are
    /// answered meanwhile, the page with the bytes the whole build serves and a
    /// live-reload stream that agrees; a URL the site does not have is answered once the
    /// build knows, with a 404.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_request_during_the_first_build_is_answered_before_it_ends() {
        let hold = Hold::default();
        let registry = Arc::new(Registry::new(RegistryConfig {
            token: CancellationToken::new(),
            tracker: TaskTracker::new(),
            watcher: None,
            pool: crate::serve::Pool::default(),
            store: None,
            logs: LogHub::default(),
            hooks: TestHooks {
                hold_first_build: Some(hold.clone()),
                ..TestHooks::default()
            },
            own_dirs: Vec::new(),
        }));
        let dir = tempfile::tempdir().unwrap();
        for name in ["a", "b", "c", "d", "e"] {
            let text = format!("# Page {name}\n\nText of {name}.\n");
            fs::write(dir.path().join(format!("{name}.md")), text).unwrap();
        }
        fs::create_dir(dir.path().join("static")).unwrap();
        fs::write(dir.path().join("static/app.css"), "body{}").unwrap();
        let spec = SiteSpec {
            root: dir.path().to_path_buf(),
            port: Some(0),
            drafts: false,
            attach: false,
            host: None,
            with: None,
        };
        let started = registry.start(spec).await.unwrap();
        let port = started.site.config.port;

        let early = get(port, "/c/").await;
        assert!(early.starts_with("HTTP/1.1 200 OK"), "{early}");
        assert!(early.contains("Text of c."), "{early}");
        // Live reload tells the page it shows what its URL serves (not to reload).
        let event = first_event(port, "/c/").await;
        let etag = header(&early, "etag").unwrap().trim_matches('"');
        assert_eq!(event["page"], etag, "{event}");
        let css = get(port, "/app.css").await;
        assert!(
            css.starts_with("HTTP/1.1 200 OK") && css.ends_with("body{}"),
            "{css}"
        );
        let redirect = get(port, "/d").await;
        assert!(redirect.starts_with("HTTP/1.1 301"), "{redirect}");
        assert_eq!(header(&redirect, "location"), Some("/d/"));
        assert_eq!(
            started.site.info().state,
            SiteState::Building,
            "answered while the first build is held"
        );
        let missing = tokio::spawn(get(port, "/nope/"));

        hold.release();
        assert_eq!(started.site.settled().await.state, SiteState::Serving);
        let missing = missing.await.unwrap();
        assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");
        let built = get(port, "/c/").await;
        assert_eq!(
            header(&built, "etag"),
            header(&early, "etag"),
            "the bytes the whole build serves"
        );
        let body = |reply: &str| reply.split_once("\r\n\r\n").unwrap().1.to_string();
        assert_eq!(body(&built), body(&early));
        registry.stop_all().await;
    }
}
