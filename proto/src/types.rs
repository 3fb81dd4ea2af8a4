//! Wire types: what crosses the socket. Plain data with serde, no behaviour beyond display.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// What the daemon says about itself in the handshake.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// `CARGO_PKG_VERSION` of the daemon binary.
    pub version: String,
    /// The daemon's [`crate::PROTOCOL_VERSION`].
    pub protocol: u32,
    /// The daemon's process id, for `daemon status` and error messages.
    pub pid: u32,
}

/// A request to bring a site up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteSpec {
    /// Absolute path of the site root; the client resolves it, since the daemon's working
    /// directory is not the user's.
    #[serde(with = "crate::wire_path")]
    pub root: PathBuf,
    /// A fixed port, or `None` for the first free one from [`DEFAULT_PORT`] upward.
    pub port: Option<u16>,
    /// Build pages marked `draft = true` too.
    #[serde(default)]
    pub drafts: bool,
    /// Tie the site's life to this client connection (`sitectl up --attach`): when the
    /// connection closes, for any reason, the site goes down. Attached sites are not
    /// remembered across daemon restarts. Only applies to a site this call creates.
    #[serde(default)]
    pub attach: bool,
    /// Address to serve on: an IP literal or a host name, `None` for 127.0.0.1. A name
    /// is also accepted in the `Host` header of requests.
    #[serde(default)]
    pub host: Option<String>,
    /// Who builds it (`sitectl up --with`): `native`, `hugo`, `zola` or `mdbook`; `None`
    /// lets the site decide (its `[build]`, or what it was written for).
    #[serde(default)]
    pub with: Option<String>,
}

/// The first port tried when `up` is given none (the one Vite users already know).
pub const DEFAULT_PORT: u16 = 5173;

/// Which sites `down` applies to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Target {
    Port(u16),
    Root(#[serde(with = "crate::wire_path")] PathBuf),
    All,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Port(port) => write!(f, "port {port}"),
            Target::Root(root) => write!(f, "{}", root.display()),
            Target::All => f.write_str("all sites"),
        }
    }
}

/// Where a site is in its life. See `daemon/src/site/state.rs` for the legal moves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum SiteState {
    /// Registered, port bound, first build not begun.
    Starting,
    /// The first build is running; nothing is served yet.
    Building,
    /// Serving the last build; new requests see it.
    Serving,
    /// Serving the last good build while a new one runs.
    Rebuilding,
    /// Shutting down: no new connections, draining the open ones.
    Stopping,
    /// Gone: nothing held any more.
    Stopped,
    /// Cannot serve; the reason says why (root deleted, listener died, ...).
    Failed { reason: String },
}

impl SiteState {
    /// The short name shown in `ps`.
    pub fn name(&self) -> &'static str {
        match self {
            SiteState::Starting => "starting",
            SiteState::Building => "building",
            SiteState::Serving => "serving",
            SiteState::Rebuilding => "rebuilding",
            SiteState::Stopping => "stopping",
            SiteState::Stopped => "stopped",
            SiteState::Failed { .. } => "failed",
        }
    }
}

impl fmt::Display for SiteState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SiteState::Failed { reason } => write!(f, "failed: {reason}"),
            other => f.write_str(other.name()),
        }
    }
}

/// One problem found while building, pointing at the file and place that caused it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildError {
    /// The file at fault, relative to the site root when it is inside it.
    #[serde(with = "crate::wire_path")]
    pub file: PathBuf,
    /// 1-based line, when known.
    pub line: Option<u32>,
    /// 1-based column, when known.
    pub column: Option<u32>,
    pub message: String,
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        write!(f, ": {}", self.message)
    }
}

/// The outcome of one build of a site.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildReport {
    /// HTML pages produced (content pages, section and tag listings, home, 404).
    pub pages: usize,
    /// Files served as they are (static files, images next to content).
    pub files: usize,
    /// Pages whose HTML this build rendered; the others were unchanged and reused.
    #[serde(default)]
    pub rendered: usize,
    /// Wall time of the build, in milliseconds.
    pub duration_ms: u64,
    /// When the build finished, milliseconds since the Unix epoch.
    pub finished_at_ms: u64,
    /// Every error found; an empty list means a clean build.
    pub errors: Vec<BuildError>,
    /// What the build found that does not stop it (a link that leads nowhere, a feature
    /// it cannot support). Absent from older daemons.
    #[serde(default)]
    pub warnings: Vec<BuildError>,
}

/// How far a running build is: pages rendered out of the pages it renders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildProgress {
    pub done: usize,
    pub total: usize,
}

impl fmt::Display for BuildProgress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let percent = (self.done * 100).checked_div(self.total).unwrap_or(0);
        write!(f, "{}/{} pages ({percent}%)", self.done, self.total)
    }
}

/// Everything `ps` shows about one site.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteInfo {
    pub port: u16,
    /// Where a browser reaches it, e.g. `http://127.0.0.1:5173/`.
    pub url: String,
    /// The address the site listens on, as bound: `127.0.0.1:5173`, or `0.0.0.0:5173`
    /// for every interface (whose `url` still names this machine). Empty from a daemon
    /// too old to say.
    #[serde(default)]
    pub address: String,
    #[serde(with = "crate::wire_path")]
    pub root: PathBuf,
    pub state: SiteState,
    /// Pages in the build being served (0 before the first build finishes).
    pub pages: usize,
    /// The most recent finished build, good or not.
    pub last_build: Option<BuildReport>,
    /// When the site was brought up, milliseconds since the Unix epoch.
    pub started_at_ms: u64,
    pub drafts: bool,
    /// Things the user should know that do not stop the site (e.g. watching fell back
    /// to polling).
    #[serde(default)]
    pub warnings: Vec<String>,
    /// Lives only as long as the client connection that brought it up.
    #[serde(default)]
    pub attached: bool,
    /// While the site builds (`building`, `rebuilding`): how far the build is, once it
    /// knows how many pages it renders.
    #[serde(default)]
    pub progress: Option<BuildProgress>,
    /// Who builds it: `native` (sited's builder) or the program (`hugo`, `zola`,
    /// `mdbook`, a `[build] command`'s); empty until the site has chosen.
    #[serde(default)]
    pub builder: String,
}

/// One line of a site's (or the daemon's) log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    /// Increases by one per line of the same log; ask for lines after it to follow.
    pub seq: u64,
    /// Milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// `ERROR`, `WARN`, `INFO`, `DEBUG` or `TRACE`.
    pub level: String,
    pub message: String,
}

/// Which log lines to return.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogQuery {
    /// A site's port, or `None` for the daemon's own log.
    pub port: Option<u16>,
    /// Only lines after this `seq`; `None` for the most recent `limit` lines.
    pub after: Option<u64>,
    /// At most this many lines (the most recent ones).
    pub limit: usize,
    /// With `after`: if there is nothing new yet, wait up to this long for a line.
    pub wait_ms: u64,
}

/// Owner of a TCP port, as far as the operating system tells.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortOwner {
    pub pid: u32,
    /// The command line, or just the program name, when readable.
    pub command: String,
}

/// Everything that can go wrong in a call, as data the client can explain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum Error {
    #[error("port {port} is already in use{}", owner_suffix(owner))]
    PortInUse { port: u16, owner: Option<PortOwner> },
    #[error("port {port} is already serving {}", root.display())]
    PortTakenBySite {
        port: u16,
        #[serde(with = "crate::wire_path")]
        root: PathBuf,
    },
    #[error("no free port from {from} to {to}")]
    NoFreePort { from: u16, to: u16 },
    #[error("cannot listen on port {port}: {message}")]
    Bind { port: u16, message: String },
    #[error("cannot serve on host {host}: {message}")]
    BadHost { host: String, message: String },
    #[error("site root {} does not exist", path.display())]
    RootMissing {
        #[serde(with = "crate::wire_path")]
        path: PathBuf,
    },
    #[error("site root {} is not a directory", path.display())]
    RootNotDirectory {
        #[serde(with = "crate::wire_path")]
        path: PathBuf,
    },
    #[error("site root {} cannot be read: {message}", path.display())]
    RootUnreadable {
        #[serde(with = "crate::wire_path")]
        path: PathBuf,
        message: String,
    },
    #[error("site root must be an absolute path, got {}", path.display())]
    RootNotAbsolute {
        #[serde(with = "crate::wire_path")]
        path: PathBuf,
    },
    #[error("no site matches {target}")]
    NoSuchSite { target: Target },
    #[error("the daemon is shutting down")]
    ShuttingDown,
    #[error("the site failed: {reason}")]
    SiteFailed { reason: String },
    /// `up` of a root that is already up, with options it was not brought up with
    /// (S29): refused rather than answered with the old ones.
    #[error("{} is already up on port {port} with other options: {differences}", root.display())]
    UpWithOtherOptions {
        port: u16,
        #[serde(with = "crate::wire_path")]
        root: PathBuf,
        /// What differs, e.g. `--port 8080 asked, serving on 5173`.
        differences: String,
    },
    #[error("the site on port {port} is attached to the `sitectl serve` that brought it up")]
    SiteAttached { port: u16 },
    #[error("internal error: {0}")]
    Internal(String),
}

fn owner_suffix(owner: &Option<PortOwner>) -> String {
    match owner {
        Some(owner) => format!(" by pid {} ({})", owner.pid, owner.command),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_error_display_points_at_file_line_col() {
        let error = BuildError {
            file: "content/post.md".into(),
            line: Some(3),
            column: Some(7),
            message: "expected `=`".into(),
        };
        assert_eq!(error.to_string(), "content/post.md:3:7: expected `=`");
        let no_col = BuildError {
            column: None,
            ..error
        };
        assert_eq!(no_col.to_string(), "content/post.md:3: expected `=`");
    }

    #[test]
    fn site_state_json_is_tagged() {
        let json = serde_json::to_value(SiteState::Failed {
            reason: "gone".into(),
        })
        .unwrap();
        assert_eq!(
            json,
            serde_json::json!({"state": "failed", "reason": "gone"})
        );
        let json = serde_json::to_value(SiteState::Serving).unwrap();
        assert_eq!(json, serde_json::json!({"state": "serving"}));
    }

    #[test]
    fn progress_reads_as_pages_and_percent() {
        let progress = BuildProgress {
            done: 250,
            total: 1000,
        };
        assert_eq!(progress.to_string(), "250/1000 pages (25%)");
        let empty = BuildProgress { done: 0, total: 0 };
        assert_eq!(empty.to_string(), "0/0 pages (0%)");
    }

    #[test]
    fn port_in_use_names_the_owner() {
        let error = Error::PortInUse {
            port: 8080,
            owner: Some(PortOwner {
                pid: 42,
                command: "python3 -m http.server".into(),
            }),
        };
        assert_eq!(
            error.to_string(),
            "port 8080 is already in use by pid 42 (python3 -m http.server)"
        );
    }
}
