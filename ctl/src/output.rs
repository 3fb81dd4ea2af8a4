//! Everything `sitectl` prints: results on stdout, problems on stderr as `error: …` with
//! a hint where one helps.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use sited_proto::{BuildError, Error, SiteInfo, SiteState};

use crate::client::Failure;

pub fn print_up(info: &SiteInfo) {
    let build = info
        .last_build
        .as_ref()
        .map(|b| format!(" ({} pages in {} ms)", b.pages, b.duration_ms))
        .unwrap_or_default();
    println!("serving {} at {}{build}", info.root.display(), info.url);
    if let Some(build) = &info.last_build
        && !build.errors.is_empty()
    {
        eprintln!(
            "warning: the build has {} error(s); the rest of the site is served:",
            build.errors.len()
        );
        for error in &build.errors {
            eprintln!("  {error}");
        }
    }
}

/// `HH:MM:SS LEVEL message`, times in UTC.
pub fn print_log_lines(lines: &[sited_proto::LogLine]) {
    for line in lines {
        let secs = line.at_ms / 1000 % 86_400;
        println!(
            "{:02}:{:02}:{:02} {:<5} {}",
            secs / 3600,
            secs % 3600 / 60,
            secs % 60,
            line.level,
            line.message
        );
    }
}

/// Whether `--host` may let other machines in: anything but a loopback address or
/// `localhost`. A name counts, since it may resolve to any address.
pub fn host_is_exposed(host: &str) -> bool {
    let literal = host
        .trim()
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host.trim());
    match literal.parse::<std::net::IpAddr>() {
        Ok(ip) => !ip.to_canonical().is_loopback(),
        Err(_) => !literal.eq_ignore_ascii_case("localhost"),
    }
}

pub fn warn_exposed(host: &str) {
    eprintln!(
        "warning: serving on {host}, which other machines may reach: anyone on your network \
         can read the site (requests must still name this host or an address of it)"
    );
}

pub fn print_down(stopped: &[SiteInfo]) {
    if stopped.is_empty() {
        println!("no sites were running");
    }
    for site in stopped {
        println!("stopped {} ({})", site.url, site.root.display());
    }
}

/// The `ps --json` schema: one object per site. Fields are only ever added.
#[derive(Debug, Serialize)]
pub struct PsRow<'a> {
    pub port: u16,
    pub url: &'a str,
    pub root: &'a std::path::Path,
    /// starting | building | serving | rebuilding | stopping | stopped | failed
    pub state: &'static str,
    /// Why the site failed; null otherwise.
    pub reason: Option<&'a str>,
    pub pages: usize,
    /// Files served as they are (static, images), in the last build.
    pub files: Option<usize>,
    /// Wall time of the last build.
    pub build_ms: Option<u64>,
    /// When the last build finished, ms since the Unix epoch.
    pub built_at_ms: Option<u64>,
    pub errors: &'a [BuildError],
    pub started_at_ms: u64,
    pub drafts: bool,
    /// Things worth knowing that do not stop the site (e.g. watching by polling).
    pub warnings: &'a [String],
    /// Lives only as long as the `sitectl up --attach` that brought it up.
    pub attached: bool,
}

impl<'a> PsRow<'a> {
    pub fn new(info: &'a SiteInfo) -> PsRow<'a> {
        let build = info.last_build.as_ref();
        PsRow {
            port: info.port,
            url: &info.url,
            root: &info.root,
            state: info.state.name(),
            reason: match &info.state {
                SiteState::Failed { reason } => Some(reason),
                _ => None,
            },
            pages: info.pages,
            files: build.map(|b| b.files),
            build_ms: build.map(|b| b.duration_ms),
            built_at_ms: build.map(|b| b.finished_at_ms),
            errors: build.map_or(&[], |b| &b.errors),
            started_at_ms: info.started_at_ms,
            drafts: info.drafts,
            warnings: &info.warnings,
            attached: info.attached,
        }
    }
}

pub fn print_ps_json(sites: &[SiteInfo]) {
    let rows: Vec<PsRow<'_>> = sites.iter().map(PsRow::new).collect();
    println!(
        "{}",
        serde_json::to_string_pretty(&rows).expect("rows serialize")
    );
}

pub fn print_ps_table(sites: &[SiteInfo]) {
    if sites.is_empty() {
        println!("no sites; `sitectl up PATH` starts one");
        return;
    }
    let now = now_ms();
    let header = [
        "PORT",
        "STATE",
        "URL",
        "PAGES",
        "LAST BUILD",
        "UPTIME",
        "ROOT",
    ];
    let rows: Vec<[String; 7]> = sites
        .iter()
        .map(|site| {
            let build = match &site.last_build {
                Some(b) if b.errors.is_empty() => format!("{} ms", b.duration_ms),
                Some(b) => format!("{} ms, {} err", b.duration_ms, b.errors.len()),
                None => "-".into(),
            };
            [
                site.port.to_string(),
                site.state.name().to_string(),
                site.url.clone(),
                site.pages.to_string(),
                build,
                duration(now.saturating_sub(site.started_at_ms)),
                site.root.display().to_string(),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let mut out = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<width$}  ", width = widths[i]));
            }
        }
        out
    };
    println!("{}", line(&header.map(String::from)));
    for (row, site) in rows.iter().zip(sites) {
        println!("{}", line(row));
        if let SiteState::Failed { reason } = &site.state {
            println!("      failed: {reason}");
        }
        for warning in &site.warnings {
            println!("      warning: {warning}");
        }
        if let Some(build) = &site.last_build {
            for error in &build.errors {
                println!("      error: {error}");
            }
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// `42s`, `3m05s`, `2h07m`, `3d04h`.
pub fn duration(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        3600..86400 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d{:02}h", s / 86400, s % 86400 / 3600),
    }
}

pub fn print_failure(failure: &Failure) {
    let (message, hint) = failure_text(failure);
    eprintln!("error: {message}");
    if let Some(hint) = hint {
        eprintln!("hint: {hint}");
    }
}

/// A failure that does not stop the command: said as a warning, and it carries on.
pub fn print_warning(failure: &Failure) {
    let (message, hint) = failure_text(failure);
    eprintln!("warning: {message}");
    if let Some(hint) = hint {
        eprintln!("hint: {hint}");
    }
}

fn failure_text(failure: &Failure) -> (String, Option<String>) {
    match failure {
        Failure::Usage(message) => (message.clone(), None),
        Failure::Unreachable { message, hint } => (message.clone(), hint.clone()),
        Failure::Service { message, hint } => (message.clone(), hint.clone()),
        Failure::Daemon(error) => (error.to_string(), hint(error)),
        Failure::Site(reason) => (
            format!("the site failed: {reason}"),
            Some("`sitectl ps` shows its state".into()),
        ),
    }
}

fn hint(error: &Error) -> Option<String> {
    Some(match error {
        Error::PortInUse {
            port,
            owner: Some(owner),
        } => format!(
            "stop that program (`kill {}`) or choose another port, e.g. `--port {}`",
            owner.pid,
            port.saturating_add(1)
        ),
        Error::PortInUse { port, owner: None } => format!(
            "another program holds it (`ss -ltnp 'sport = :{port}'` or `lsof -i :{port}` names it); \
             or choose another port"
        ),
        Error::PortTakenBySite { port, .. } => {
            format!("`sitectl down {port}` first, or choose another port")
        }
        Error::RootMissing { .. } | Error::RootNotDirectory { .. } => {
            "check the path; a site root is a folder of Markdown or one with `content/`".into()
        }
        Error::RootUnreadable { .. } => "check the folder's permissions".into(),
        Error::BadHost { .. } => {
            "give an address of this machine (e.g. 127.0.0.1, 0.0.0.0 for every interface) \
             or a name that resolves to one"
                .into()
        }
        Error::NoSuchSite { .. } => "`sitectl ps` lists the sites that run".into(),
        Error::NoFreePort { .. } => {
            "`sitectl ps` lists the sites that run; `sitectl down` frees ports".into()
        }
        Error::ShuttingDown => {
            "try again once it has stopped; `sitectl up` starts a new one".into()
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_hosts_are_unexposed() {
        for host in [
            "127.0.0.1",
            "127.0.0.2",
            "::1",
            "[::1]",
            "localhost",
            "LOCALHOST",
        ] {
            assert!(!host_is_exposed(host), "{host}");
        }
        for host in ["0.0.0.0", "::", "192.168.1.5", "box.lan", "[fe80::1]"] {
            assert!(host_is_exposed(host), "{host}");
        }
    }

    #[test]
    fn durations_are_compact() {
        assert_eq!(duration(0), "0s");
        assert_eq!(duration(59_999), "59s");
        assert_eq!(duration(185_000), "3m05s");
        assert_eq!(duration(7_620_000), "2h07m");
        assert_eq!(duration(273_600_000), "3d04h");
    }
}
