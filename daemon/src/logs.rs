//! Per-site logs: a tracing layer copies every event logged inside a site's span (the
//! `site` span with its `port` field) into that site's ring buffer, and every other event
//! into the daemon's own. `sitectl logs` and `sitectl up --attach` read them over RPC,
//! following new lines by asking for the lines after the last one they saw.

use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sited_proto::{LogLine, LogQuery};
use tokio::sync::watch;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

/// What the daemon logs unless `SITED_LOG` says otherwise: its own news, and of the
/// libraries it uses only their warnings. notify, for one, reports at info level what is
/// its own business (`unable to remove watch descriptor` for a folder already gone);
/// what matters of watching, sited says itself.
pub const DEFAULT_FILTER: &str = "info,notify=warn";

/// Lines kept per log; older ones are dropped.
const CAPACITY: usize = 1000;

/// The logs of every site and of the daemon. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct LogHub {
    inner: Arc<Mutex<Logs>>,
}

#[derive(Debug, Default)]
struct Logs {
    sites: HashMap<u16, Ring>,
    daemon: Ring,
}

#[derive(Debug)]
struct Ring {
    lines: VecDeque<LogLine>,
    /// The last `seq` written; followers wait for it to change.
    last: watch::Sender<u64>,
}

impl Default for Ring {
    fn default() -> Ring {
        Ring {
            lines: VecDeque::new(),
            last: watch::channel(0).0,
        }
    }
}

impl Ring {
    fn push(&mut self, level: &str, message: String) {
        let seq = *self.last.borrow() + 1;
        if self.lines.len() == CAPACITY {
            self.lines.pop_front();
        }
        self.lines.push_back(LogLine {
            seq,
            at_ms: crate::clock::now_ms(),
            level: level.to_string(),
            message,
        });
        self.last.send_replace(seq);
    }

    fn query(&self, after: Option<u64>, limit: usize) -> Vec<LogLine> {
        let fresh = self
            .lines
            .iter()
            .filter(|line| after.is_none_or(|after| line.seq > after));
        let mut lines: Vec<LogLine> = fresh.cloned().collect();
        let excess = lines.len().saturating_sub(limit);
        lines.drain(..excess);
        lines
    }
}

impl LogHub {
    fn with<T>(&self, f: impl FnOnce(&mut Logs) -> T) -> T {
        f(&mut self.inner.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Starts a fresh log for a site that comes up on `port` (a port is reused by later
    /// sites; their logs must not mix).
    pub fn reset(&self, port: u16) {
        self.with(|logs| logs.sites.insert(port, Ring::default()));
    }

    fn push(&self, port: Option<u16>, level: &str, message: String) {
        self.with(|logs| match port {
            Some(port) => logs.sites.entry(port).or_default().push(level, message),
            None => logs.daemon.push(level, message),
        });
    }

    /// Answers a [`LogQuery`]; `None` if there is no log for that port.
    pub async fn query(&self, query: &LogQuery) -> Option<Vec<LogLine>> {
        let (lines, mut last) = self.with(|logs| {
            let ring = match query.port {
                Some(port) => logs.sites.get(&port)?,
                None => &logs.daemon,
            };
            Some((ring.query(query.after, query.limit), ring.last.subscribe()))
        })?;
        if !lines.is_empty() || query.after.is_none() || query.wait_ms == 0 {
            return Some(lines);
        }
        let after = query.after.unwrap_or(0);
        let wait = Duration::from_millis(query.wait_ms);
        let _ = tokio::time::timeout(wait, last.wait_for(|&seq| seq > after)).await;
        self.with(|logs| {
            let ring = match query.port {
                Some(port) => logs.sites.get(&port)?,
                None => &logs.daemon,
            };
            Some(ring.query(query.after, query.limit))
        })
    }

    /// The tracing layer that fills this hub.
    pub fn layer(&self) -> LogLayer {
        LogLayer { hub: self.clone() }
    }
}

/// Copies events into the [`LogHub`].
#[derive(Debug)]
pub struct LogLayer {
    hub: LogHub,
}

/// Stored in a `site` span's extensions: the port its events belong to.
struct SitePort(u16);

impl<S> Layer<S> for LogLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if attrs.metadata().name() != "site" {
            return;
        }
        let mut visitor = PortVisitor(None);
        attrs.record(&mut visitor);
        if let (Some(port), Some(span)) = (visitor.0, ctx.span(id)) {
            span.extensions_mut().insert(SitePort(port));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let port = ctx.event_scope(event).and_then(|scope| {
            scope
                .from_root()
                .find_map(|span| span.extensions().get::<SitePort>().map(|p| p.0))
        });
        let mut message = MessageVisitor::default();
        event.record(&mut message);
        self.hub
            .push(port, event.metadata().level().as_str(), message.finish());
    }
}

struct PortVisitor(Option<u16>);

impl Visit for PortVisitor {
    fn record_u64(&mut self, field: &Field, value: u64) {
        if field.name() == "port" {
            self.0 = u16::try_from(value).ok();
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        if field.name() == "port" {
            self.0 = u16::try_from(value).ok();
        }
    }

    fn record_debug(&mut self, _: &Field, _: &dyn std::fmt::Debug) {}
}

/// `message key=value key=value`, like the terminal formatter without colours.
#[derive(Default)]
struct MessageVisitor {
    message: String,
    fields: String,
}

impl MessageVisitor {
    fn finish(mut self) -> String {
        if !self.fields.is_empty() {
            if !self.message.is_empty() {
                self.message.push(' ');
            }
            self.message.push_str(self.fields.trim_start());
        }
        self.message
    }
}

impl Visit for MessageVisitor {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.fields, " {}={value}", field.name());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.fields, " {}={value:?}", field.name());
        }
    }
}

#[cfg(test)]
mod tests {
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    #[tokio::test]
    async fn the_default_filter_keeps_library_chatter_out() {
        let hub = LogHub::default();
        let filter = tracing_subscriber::EnvFilter::new(DEFAULT_FILTER);
        let subscriber = tracing_subscriber::registry()
            .with(filter)
            .with(hub.layer());
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(target: "notify::inotify", "unable to remove watch descriptor");
            tracing::warn!(target: "notify::inotify", "the watch queue overflowed");
            tracing::info!(target: "sited::site", "built: 1 page in 1 ms");
        });
        let lines = hub
            .query(&LogQuery {
                port: None,
                after: None,
                limit: 10,
                wait_ms: 0,
            })
            .await
            .unwrap();
        let messages: Vec<&str> = lines.iter().map(|l| l.message.as_str()).collect();
        assert_eq!(
            messages,
            ["the watch queue overflowed", "built: 1 page in 1 ms"]
        );
    }

    #[tokio::test]
    async fn events_in_a_site_span_go_to_that_sites_log() {
        let hub = LogHub::default();
        let subscriber = tracing_subscriber::registry().with(hub.layer());
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("site", port = 5173u16, root = "/x");
            span.in_scope(|| tracing::warn!(pages = 3, "built"));
            tracing::info!("daemon says hi");
        });
        let site = hub
            .query(&LogQuery {
                port: Some(5173),
                after: None,
                limit: 10,
                wait_ms: 0,
            })
            .await
            .unwrap();
        assert_eq!(site.len(), 1);
        assert_eq!(site[0].level, "WARN");
        assert_eq!(site[0].message, "built pages=3");
        let daemon = hub
            .query(&LogQuery {
                port: None,
                after: None,
                limit: 10,
                wait_ms: 0,
            })
            .await
            .unwrap();
        assert_eq!(daemon.len(), 1);
        assert_eq!(daemon[0].message, "daemon says hi");
        assert!(
            hub.query(&LogQuery {
                port: Some(1),
                after: None,
                limit: 10,
                wait_ms: 0
            })
            .await
            .is_none()
        );
    }

    #[tokio::test]
    async fn following_waits_for_the_next_line() {
        let hub = LogHub::default();
        hub.reset(80);
        hub.push(Some(80), "INFO", "one".into());
        let follower = {
            let hub = hub.clone();
            tokio::spawn(async move {
                hub.query(&LogQuery {
                    port: Some(80),
                    after: Some(1),
                    limit: 10,
                    wait_ms: 10_000,
                })
                .await
                .unwrap()
            })
        };
        tokio::task::yield_now().await;
        hub.push(Some(80), "INFO", "two".into());
        let lines = follower.await.unwrap();
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].message, "two");
        assert_eq!(lines[0].seq, 2);
    }

    #[test]
    fn the_ring_keeps_the_most_recent_lines() {
        let mut ring = Ring::default();
        for n in 0..CAPACITY + 5 {
            ring.push("INFO", n.to_string());
        }
        let lines = ring.query(None, 3);
        let messages: Vec<_> = lines.iter().map(|l| l.message.as_str()).collect();
        let last = CAPACITY + 4;
        assert_eq!(
            messages,
            [
                (last - 2).to_string(),
                (last - 1).to_string(),
                last.to_string()
            ]
        );
        assert_eq!(ring.lines.len(), CAPACITY);
    }
}
