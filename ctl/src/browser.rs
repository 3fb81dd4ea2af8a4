//! Opening a site's URL in a browser with the system's opener: `xdg-open` on Linux (and
//! other Unixes), `open` on macOS. Where there is none (a server, a container, an SSH
//! session) the failure says so and carries the URL, so it can be opened by hand.

use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::failure::Failure;

/// The program that opens URLs here.
pub const OPENER: &str = if cfg!(target_os = "macos") {
    "open"
} else {
    "xdg-open"
};

/// `xdg-open` normally hands the URL to the desktop and exits at once; in its fallback
/// mode it runs the browser itself and only returns when the browser closes. Past this
/// long it is taken to be doing just that, and left to it.
const OPENER_WAIT: Duration = Duration::from_secs(5);

/// Opens `url` with [`OPENER`].
pub fn open(url: &str) -> Result<(), Failure> {
    let cannot = || {
        Failure::refused(format!("cannot open {url} in a browser")).hint(format!(
            "open {url} in a browser yourself; from another machine, forward the port \
             first (`ssh -L {port}:127.0.0.1:{port} HOST`)",
            port = port_of(url)
        ))
    };
    let mut child = Command::new(OPENER)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|error| match error.kind() {
            std::io::ErrorKind::NotFound => {
                cannot().because(format!("there is no `{OPENER}` on this system's PATH"))
            }
            _ => cannot().because(format!("cannot run `{OPENER}`: {error}")),
        })?;
    let started = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(status)) => return Err(cannot().because(exited(status))),
            Ok(None) if started.elapsed() > OPENER_WAIT => return Ok(()),
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(error) => return Err(cannot().because(format!("`{OPENER}`: {error}"))),
        }
    }
}

/// What the opener's exit status means (xdg-open documents its codes).
fn exited(status: ExitStatus) -> String {
    let meaning = match (OPENER, status.code()) {
        ("xdg-open", Some(3)) => ": it found no browser or desktop to hand the URL to",
        ("xdg-open", Some(4)) => ": the browser it chose failed",
        _ => "",
    };
    let how = match status.code() {
        Some(code) => format!("exit status {code}"),
        None => status.to_string(),
    };
    format!("`{OPENER}` failed ({how}){meaning}")
}

fn port_of(url: &str) -> &str {
    url.rsplit(':')
        .next()
        .map_or("PORT", |rest| rest.trim_end_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_port_is_read_from_the_url() {
        assert_eq!(port_of("http://127.0.0.1:5173/"), "5173");
    }
}
