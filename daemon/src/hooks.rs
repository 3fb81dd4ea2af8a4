//! Test hooks: behaviour only tests ask for, handed to the daemon in its
//! [`DaemonConfig`](crate::daemon::DaemonConfig). Library code never reads the
//! environment for them; the `sited` binary reads it once at start-up (see main.rs for
//! the variable names) so the end-to-end tests can reach them in a real process.

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
}
