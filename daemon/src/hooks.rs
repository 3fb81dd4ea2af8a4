//! Test hooks: behaviour only tests ask for, handed to the daemon in its
//! [`DaemonConfig`](crate::daemon::DaemonConfig). Library code never reads the
//! environment for them; the `sited` binary reads it once at start-up (see main.rs for
//! the variable names) so the end-to-end tests can reach them in a real process.

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// Everything off by default: a daemon built with `TestHooks::default()` behaves as in
/// production.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TestHooks {
    /// A GET of [`crate::serve::TEST_PANIC_PATH`] panics inside the request handler, to
    /// prove that a handler panic is that request's 500 and nothing more.
    pub panic_request: bool,
    /// Header-read and keep-alive idle timeout instead of
    /// [`crate::serve::Limits::header_read_timeout`]'s. The end-to-end test of S21 makes
    /// it far longer than its deadline, so that a request which got in only because a
    /// hostile idle connection timed out fails the test instead of passing slowly.
    pub idle_timeout: Option<Duration>,
    /// Templates get a `sited_test_panic(message)` function that panics, to prove that a
    /// renderer panic is one page's error and nothing more.
    pub panic_function: bool,
    /// Pretend the kernel allows only this many watched directories, to exercise the
    /// polling fallback (S18) without exhausting the real per-user limit for everyone.
    pub watch_limit: Option<usize>,
    /// Where the scan for a free port starts when `up` names none, instead of
    /// [`sited_proto::DEFAULT_PORT`]: an end-to-end test starts it at a port the OS gave
    /// it and still holds, so the test needs no fixed range of ports to be free.
    pub first_port: Option<u16>,
    /// Holds every site's first build (in-process tests only): its render stage waits
    /// until a request has asked for a URL, and the build does not end until the test
    /// releases it, so a test can prove a request answered while the build still runs.
    pub hold_first_build: Option<Hold>,
}

/// See [`TestHooks::hold_first_build`]. Clones are the same hold.
#[derive(Debug, Clone, Default)]
pub struct Hold(Arc<(Mutex<HoldState>, Condvar)>);

#[derive(Debug, Default)]
struct HoldState {
    asked: bool,
    released: bool,
}

impl PartialEq for Hold {
    fn eq(&self, other: &Hold) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for Hold {}

impl Hold {
    /// Lets every held build end (and any still waiting for a request go on).
    pub fn release(&self) {
        self.update(|state| state.released = true);
    }

    /// A request asked the build for a URL.
    pub fn asked(&self) {
        self.update(|state| state.asked = true);
    }

    fn update(&self, change: impl FnOnce(&mut HoldState)) {
        let (state, changed) = &*self.0;
        change(&mut state.lock().unwrap_or_else(|p| p.into_inner()));
        changed.notify_all();
    }

    /// Blocks the build until a request asked for a URL (or the hold is released).
    pub fn wait_asked(&self) {
        self.wait_until(|state| state.asked || state.released);
    }

    /// Blocks the build until the test releases it.
    pub fn wait_released(&self) {
        self.wait_until(|state| state.released);
    }

    fn wait_until(&self, done: impl Fn(&HoldState) -> bool) {
        let (state, changed) = &*self.0;
        let mut state = state.lock().unwrap_or_else(|p| p.into_inner());
        while !done(&state) {
            state = changed.wait(state).unwrap_or_else(|p| p.into_inner());
        }
    }
}
