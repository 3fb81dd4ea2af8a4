//! The contract between `sited` and `sitectl`: the tarpc service, its wire types, the
//! framing both sides use on the Unix socket, and where that socket lives.
//!
//! Nothing here knows how sites are built or served; this crate must stay small enough
//! that the client does not drag in the daemon's dependencies.

pub mod paths;
pub mod transport;
mod types;
pub mod wire_path;

/// `text` with every control character (a terminal escape, a bell, a newline inside a
/// file name) written as a Rust escape (`\u{1b}`), so that a file name shown to a
/// human can neither drive the terminal nor fake a line of output (S22).
pub fn escape_controls(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut escaped = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() {
            escaped.extend(c.escape_default());
        } else {
            escaped.push(c);
        }
    }
    std::borrow::Cow::Owned(escaped)
}

pub use paths::{Paths, PathsError};
pub use types::*;

/// Bumped whenever a change to [`Sited`] or the wire types would confuse the other side.
/// The client refuses to talk to a daemon that answers `hello` with another number.
///
/// `hello` and `shutdown` (and [`Hello`]) never change: they are how a client of any
/// version finds out what it is talking to and stops a daemon of another version
/// (`sitectl daemon restart`).
///
/// 2: `restart`, `rebuild`; `SiteInfo::progress`; `Error::SiteAttached`.
/// 3: `SiteInfo::address`; `Error::UpWithOtherOptions`; paths that are not UTF-8 travel
/// as `{"bytes": [...]}` ([`wire_path`]).
pub const PROTOCOL_VERSION: u32 = 3;

/// The version of this build of sited, shown by `sitectl daemon status`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The control plane of the daemon. Every method is one `sitectl` verb.
#[tarpc::service]
pub trait Sited {
    /// Handshake: the client sends its protocol version, the daemon answers with its own
    /// identity. Called first on every connection.
    async fn hello(client_protocol: u32) -> Hello;
    /// Bring a site up, or return the one already serving that root (idempotent).
    async fn up(spec: SiteSpec) -> Result<SiteInfo, Error>;
    /// Take sites down; returns what was stopped, each in state `Stopped`.
    async fn down(target: Target) -> Result<Vec<SiteInfo>, Error>;
    /// Every site the daemon owns, ordered by port.
    async fn ps() -> Vec<SiteInfo>;
    /// Recent log lines of a site or of the daemon, or the lines after a point (waiting
    /// a little for new ones: call it in a loop to follow a log).
    async fn logs(query: LogQuery) -> Result<Vec<LogLine>, Error>;
    /// Stop every site and exit the daemon cleanly.
    async fn shutdown();
    /// Take the site on `port` down and bring it up again from the same spec, on the same
    /// port, with a fresh build; returns once that build is done. Its log is kept.
    async fn restart(port: u16) -> Result<SiteInfo, Error>;
    /// Build the site on `port` again from scratch (every file read and rendered anew)
    /// and return once that build is done.
    async fn rebuild(port: u16) -> Result<SiteInfo, Error>;
}
