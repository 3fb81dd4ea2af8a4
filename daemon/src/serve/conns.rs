//! The open connections of one site: what each is doing, and which one gives way when
//! there are too many (SCENARIOS S21). Three kinds of place:
//!
//! - **pages**: up to `max_connections`. A newcomer beyond that displaces the connection
//!   that has been quiet the longest (connected and silent, trickling a head, or idle on
//!   keep-alive): a quiet connection costs its client nothing to lose, a browser simply
//!   opens another. So idle and slow clients, however many, can never keep a new
//!   request out.
//! - **the reserve**: when every page connection is busy answering a request, up to
//!   `reserve_connections` more are let in; past that, newcomers wait in the kernel's
//!   backlog until a connection ends (busy ones are bounded by the write-stall timeout).
//!   The reserve also shelters new connections: one quiet for less than
//!   `displace_after` (a tenth of a second, time enough to send a request) is displaced
//!   only once the reserve is full, so connections busy with back-to-back requests are
//!   not thrashed, and a newcomer is never kept out by a wall of fresh ones.
//! - **event streams** (live reload), counted apart: a connection becomes one when its
//!   request turns out to be the event stream, leaving its page place. Past
//!   `max_event_streams`, the oldest stream is closed (or the new one, if even the oldest
//!   is younger than `displace_after`); a real browser reconnects by itself (the stream
//!   asks for a 500 ms retry).
//!
//! A connection reports its activity with one atomic store per change, no lock; the
//! table is locked only when a connection opens, closes or becomes a stream.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use rustc_hash::FxHashMap;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::Limits;

/// One site's open connections.
#[derive(Debug)]
pub struct Conns {
    table: Mutex<Table>,
    /// Quiet times are counted from here.
    epoch: Instant,
    max_pages: usize,
    /// Quiet for less than this (in stamp units, nanoseconds), a connection stays.
    displace_after: u64,
    reserve: usize,
    max_streams: usize,
    /// Woken whenever a connection closes.
    closed: Notify,
    /// The site's token; each connection's is a child of it.
    token: CancellationToken,
}

#[derive(Debug, Default)]
struct Table {
    open: FxHashMap<u64, Entry>,
    next_id: u64,
    /// Connections in each kind of place (displaced ones are in none).
    pages: usize,
    streams: usize,
}

#[derive(Debug)]
struct Entry {
    slot: Arc<Slot>,
    place: Place,
    /// When it became an event stream (a stamp), if it did.
    stream_since: u64,
}

/// Where a connection is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    Page,
    Stream,
    /// Told to close to make room; no longer counted, still open until it has closed.
    Displaced,
}

/// One connection's end of the table.
#[derive(Debug)]
pub struct Slot {
    /// 0 while busy answering a request; otherwise 1 + the nanoseconds since the
    /// table's epoch at which it last went quiet.
    quiet_since: AtomicU64,
    epoch: Instant,
    /// Cancelled to close this connection: displaced, or the site stops.
    token: CancellationToken,
}

impl Slot {
    /// A request arrived.
    pub fn busy(&self) {
        self.quiet_since.store(0, Ordering::Relaxed);
    }

    /// The response has been handed over; the connection waits for the next request.
    pub fn quiet(&self) {
        self.quiet_since.store(stamp(self.epoch), Ordering::Relaxed);
    }

    /// Cancelled when this connection must close.
    pub fn token(&self) -> &CancellationToken {
        &self.token
    }

    fn quiet_stamp(&self) -> Option<u64> {
        match self.quiet_since.load(Ordering::Relaxed) {
            0 => None,
            since => Some(since),
        }
    }
}

fn stamp(epoch: Instant) -> u64 {
    u64::try_from(epoch.elapsed().as_nanos())
        .unwrap_or(u64::MAX - 1)
        .saturating_add(1)
}

/// A connection's place in the table, given up when dropped.
#[derive(Debug)]
pub struct Admitted {
    conns: Arc<Conns>,
    id: u64,
    slot: Arc<Slot>,
}

impl Admitted {
    pub fn slot(&self) -> &Arc<Slot> {
        &self.slot
    }

    /// The request on this connection is the event stream: count it as one from now on.
    pub fn become_stream(&self) {
        self.conns.become_stream(self.id);
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut table = self.conns.lock();
        if let Some(entry) = table.open.remove(&self.id) {
            match entry.place {
                Place::Page => table.pages -= 1,
                Place::Stream => table.streams -= 1,
                Place::Displaced => {}
            }
        }
        drop(table);
        self.conns.closed.notify_waiters();
    }
}

/// How many of each kind are open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub pages: usize,
    pub streams: usize,
    /// Told to close, not closed yet.
    pub displaced: usize,
}

impl Conns {
    pub fn new(limits: &Limits, token: CancellationToken) -> Arc<Conns> {
        Arc::new(Conns {
            table: Mutex::new(Table::default()),
            epoch: Instant::now(),
            max_pages: limits.max_connections.max(1),
            displace_after: u64::try_from(limits.displace_after.as_nanos()).unwrap_or(u64::MAX),
            reserve: limits.reserve_connections,
            max_streams: limits.max_event_streams,
            closed: Notify::new(),
            token,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Table> {
        // Nothing panics while holding it; a poisoned table is still consistent.
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A place for a new connection, displacing the longest-quiet one if the page
    /// places are full; `None` if every page connection is busy and the reserve is used
    /// too.
    pub fn admit(self: &Arc<Self>) -> Option<Admitted> {
        let mut table = self.lock();
        if table.pages >= self.max_pages {
            let quietest = table
                .open
                .iter()
                .filter(|(_, entry)| entry.place == Place::Page)
                .filter_map(|(id, entry)| Some((entry.slot.quiet_stamp()?, *id)))
                .min();
            let room_in_reserve = table.pages < self.max_pages + self.reserve;
            let displace = match quietest {
                Some((since, id))
                    if stamp(self.epoch).saturating_sub(since) >= self.displace_after
                        || !room_in_reserve =>
                {
                    Some(id)
                }
                _ if room_in_reserve => None,
                _ => return None,
            };
            if let Some(id) = displace {
                let entry = table.open.get_mut(&id).expect("just found");
                entry.place = Place::Displaced;
                entry.slot.token.cancel();
                table.pages -= 1;
                tracing::debug!("too many connections: closing the one quiet the longest");
            }
        }
        let id = table.next_id;
        table.next_id += 1;
        let slot = Arc::new(Slot {
            quiet_since: AtomicU64::new(stamp(self.epoch)),
            epoch: self.epoch,
            token: self.token.child_token(),
        });
        table.open.insert(
            id,
            Entry {
                slot: slot.clone(),
                place: Place::Page,
                stream_since: 0,
            },
        );
        table.pages += 1;
        Some(Admitted {
            conns: self.clone(),
            id,
            slot,
        })
    }

    fn become_stream(&self, id: u64) {
        let mut table = self.lock();
        let Some(entry) = table.open.get_mut(&id) else {
            return;
        };
        if entry.place != Place::Page {
            return;
        }
        let now = stamp(self.epoch);
        entry.place = Place::Stream;
        entry.stream_since = now;
        table.pages -= 1;
        table.streams += 1;
        if table.streams > self.max_streams {
            let (since, oldest) = table
                .open
                .iter()
                .filter(|(_, entry)| entry.place == Place::Stream)
                .map(|(id, entry)| (entry.stream_since, *id))
                .min()
                .expect("at least this one");
            // Streams that are all new mean reconnects in a loop: the newcomer gives way
            // instead, which bounds the churn (a browser retries after 500 ms).
            let loser = if now.saturating_sub(since) >= self.displace_after {
                oldest
            } else {
                id
            };
            let entry = table.open.get_mut(&loser).expect("just found");
            entry.place = Place::Displaced;
            entry.slot.token.cancel();
            table.streams -= 1;
            tracing::debug!("too many live-reload streams: closing the oldest");
        }
    }

    pub fn counts(&self) -> Counts {
        let table = self.lock();
        Counts {
            pages: table.pages,
            streams: table.streams,
            displaced: table.open.len() - table.pages - table.streams,
        }
    }

    /// [`Conns::admit`], waiting for a connection to close while there is no room.
    pub async fn admit_when_room(self: &Arc<Self>) -> Admitted {
        loop {
            let notified = self.closed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(admitted) = self.admit() {
                return admitted;
            }
            notified.await;
        }
    }

    /// Resolves once no connection is open.
    pub async fn drained(&self) {
        loop {
            let notified = self.closed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.lock().open.is_empty() {
                return;
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn conns(pages: usize, reserve: usize, streams: usize) -> Arc<Conns> {
        let limits = Limits {
            max_connections: pages,
            displace_after: Duration::ZERO,
            reserve_connections: reserve,
            max_event_streams: streams,
            ..Limits::default()
        };
        Conns::new(&limits, CancellationToken::new())
    }

    #[test]
    fn a_newcomer_displaces_the_connection_quiet_the_longest() {
        let conns = conns(3, 1, 4);
        let a = conns.admit().unwrap();
        let b = conns.admit().unwrap();
        let c = conns.admit().unwrap();
        // a is busy; b went quiet before c did.
        a.slot().busy();
        b.slot().quiet();
        c.slot().busy();
        c.slot().quiet();
        let d = conns.admit().unwrap();
        assert!(b.slot().token().is_cancelled(), "b was quiet the longest");
        assert!(!a.slot().token().is_cancelled() && !c.slot().token().is_cancelled());
        assert_eq!(
            conns.counts(),
            Counts {
                pages: 3,
                streams: 0,
                displaced: 1
            }
        );
        drop(b);
        assert_eq!(conns.counts().displaced, 0);
        // Next in line: c (d is newer).
        let _e = conns.admit().unwrap();
        assert!(c.slot().token().is_cancelled());
        assert!(!d.slot().token().is_cancelled());
    }

    #[test]
    fn busy_connections_are_never_displaced_and_the_reserve_then_runs_out() {
        let conns = conns(2, 1, 4);
        let held: Vec<_> = (0..2).map(|_| conns.admit().unwrap()).collect();
        for admitted in &held {
            admitted.slot().busy();
        }
        let reserve = conns.admit().expect("the reserve lets one more in");
        reserve.slot().busy();
        assert!(conns.admit().is_none(), "every place is busy");
        assert!(held.iter().all(|a| !a.slot().token().is_cancelled()));
        // A busy one going quiet makes room again, by displacement.
        held[0].slot().quiet();
        let _next = conns.admit().expect("displaces the quiet one");
        assert!(held[0].slot().token().is_cancelled());
    }

    #[test]
    fn streams_are_counted_apart_and_the_oldest_gives_way() {
        let conns = conns(2, 0, 2);
        let streams: Vec<_> = (0..3)
            .map(|_| {
                let admitted = conns.admit().unwrap();
                admitted.slot().busy();
                admitted.become_stream();
                admitted
            })
            .collect();
        assert!(
            streams[0].slot().token().is_cancelled(),
            "the oldest stream"
        );
        assert!(!streams[1].slot().token().is_cancelled());
        assert!(!streams[2].slot().token().is_cancelled());
        assert_eq!(
            conns.counts(),
            Counts {
                pages: 0,
                streams: 2,
                displaced: 1
            }
        );
        // Page places are all still free.
        let pages: Vec<_> = (0..2).map(|_| conns.admit().unwrap()).collect();
        assert!(pages.iter().all(|a| !a.slot().token().is_cancelled()));
    }

    #[test]
    fn a_connection_quiet_for_less_than_the_grace_is_displaced_only_past_the_reserve() {
        let limits = Limits {
            max_connections: 1,
            reserve_connections: 1,
            displace_after: Duration::from_secs(3600),
            ..Limits::default()
        };
        let conns = Conns::new(&limits, CancellationToken::new());
        let fresh = conns.admit().unwrap();
        let reserve = conns
            .admit()
            .expect("the reserve, not the fresh one's place");
        assert!(!fresh.slot().token().is_cancelled());
        // With the reserve full, the quiet one longest goes all the same.
        let _third = conns.admit().expect("displaces a fresh one");
        assert!(fresh.slot().token().is_cancelled());
        assert!(!reserve.slot().token().is_cancelled());
    }

    #[tokio::test]
    async fn drained_waits_for_the_last_connection() {
        let conns = conns(4, 0, 4);
        let a = conns.admit().unwrap();
        let waiter = tokio::spawn({
            let conns = conns.clone();
            async move { conns.drained().await }
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        drop(a);
        tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
            .await
            .expect("drained once the last connection closed")
            .unwrap();
    }

    #[test]
    fn the_site_token_closes_every_connection() {
        let token = CancellationToken::new();
        let conns = Conns::new(&Limits::default(), token.clone());
        let a = conns.admit().unwrap();
        token.cancel();
        assert!(a.slot().token().is_cancelled());
    }
}
