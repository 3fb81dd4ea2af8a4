//! Everything `sitectl` prints: results on stdout, problems on stderr as `error: …` with
//! its causes and a hint where one helps.
//!
//! Colour goes through `anstream`, which drops it unless the stream is a terminal, and
//! always when `NO_COLOR` is set (`CLICOLOR_FORCE=1` forces it). Tables are padded on
//! the plain text, then coloured, so they stay aligned either way.

use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use anstream::{eprint, eprintln};
use anstyle::{AnsiColor, Style};
use serde::Serialize;
use sited_proto::{BuildError, SiteInfo, SiteState, escape_controls};

use crate::failure::Failure;

/// `writeln!` to stdout, colour kept or dropped as `anstream` decides. Fails when the
/// reader has gone (`sitectl ps | head -1`), which ends the command quietly.
macro_rules! out {
    ($($arg:tt)*) => {
        writeln!(anstream::stdout(), $($arg)*)
    };
}

const ERROR: Style = AnsiColor::Red.on_default().bold();
const WARNING: Style = AnsiColor::Yellow.on_default().bold();
const HINT: Style = AnsiColor::Cyan.on_default().bold();
const HEADER: Style = Style::new().bold();
const GOOD: Style = AnsiColor::Green.on_default();
const BUSY: Style = AnsiColor::Yellow.on_default();
const BAD: Style = AnsiColor::Red.on_default();
const QUIET: Style = Style::new().dimmed();

/// How a site's state is coloured.
fn state_style(state: &SiteState) -> Style {
    match state {
        SiteState::Serving => GOOD,
        SiteState::Starting | SiteState::Building | SiteState::Rebuilding => BUSY,
        SiteState::Failed { .. } => BAD,
        SiteState::Stopping | SiteState::Stopped => QUIET,
    }
}

/// After `up`, `restart` or `rebuild`: where the site is served and how its build went
/// (`verb` is `serving`, `restarted`, `rebuilt`). Build errors are warnings: the rest
/// of the site is served.
pub fn print_site_result(verb: &str, info: &SiteInfo) -> std::io::Result<()> {
    let build = info
        .last_build
        .as_ref()
        .map(|b| {
            let warnings = match b.warnings.len() {
                0 => String::new(),
                1 => ", 1 warning: `sitectl logs` lists it".to_string(),
                n => format!(", {n} warnings: `sitectl logs` lists them"),
            };
            format!(" ({} pages in {} ms{warnings})", b.pages, b.duration_ms)
        })
        .unwrap_or_default();
    out!(
        "{verb} {} at {}{build}",
        shown(&info.root.display()),
        info.url
    )?;
    print_unsaved(&info.warnings);
    if let Some(build) = &info.last_build
        && !build.errors.is_empty()
    {
        eprintln!(
            "{WARNING}warning:{WARNING:#} the build has {} error(s); the rest of the site is served:",
            build.errors.len()
        );
        for error in &build.errors {
            eprintln!("  {BAD}{}{BAD:#}", shown(error));
        }
    }
    Ok(())
}

/// `HH:MM:SS LEVEL message`, times in UTC.
pub fn print_log_lines(lines: &[sited_proto::LogLine]) -> std::io::Result<()> {
    for line in lines {
        let secs = line.at_ms / 1000 % 86_400;
        let style = match line.level.as_str() {
            "ERROR" => BAD,
            "WARN" => BUSY,
            _ => Style::new(),
        };
        out!(
            "{:02}:{:02}:{:02} {style}{:<5}{style:#} {}",
            secs / 3600,
            secs % 3600 / 60,
            secs % 60,
            line.level,
            escape_controls(&line.message)
        )?;
    }
    Ok(())
}

/// One line on stderr (a terminal) that shows a build's progress, redrawn in place.
#[derive(Debug, Default)]
pub struct ProgressLine {
    /// What is on the line now; its length is what a shorter line must blank.
    shown: String,
}

impl ProgressLine {
    pub fn show(&mut self, site: &SiteInfo) {
        let text = match &site.progress {
            Some(progress) => format!("{} port {}: {progress}", site.state.name(), site.port),
            None => format!("{} port {}…", site.state.name(), site.port),
        };
        if text == self.shown {
            return;
        }
        let width = text.chars().count();
        let blank = " ".repeat(self.shown.chars().count().saturating_sub(width));
        eprint!("\r{BUSY}{text}{BUSY:#}{blank}");
        let _ = std::io::stderr().flush();
        self.shown = text;
    }

    pub fn clear(&mut self) {
        if !self.shown.is_empty() {
            eprint!("\r{}\r", " ".repeat(self.shown.chars().count()));
            let _ = std::io::stderr().flush();
            self.shown.clear();
        }
    }
}

pub fn print_down(stopped: &[SiteInfo]) -> std::io::Result<()> {
    if stopped.is_empty() {
        out!("no sites were running")?;
    }
    for site in stopped {
        out!("stopped {} ({})", site.url, shown(&site.root.display()))?;
    }
    print_unsaved(stopped.iter().flat_map(|site| &site.warnings));
    Ok(())
}

/// The warning a change carries when the daemon could not write it down (once).
fn print_unsaved<'a>(warnings: impl IntoIterator<Item = &'a String>) {
    let mut said = std::collections::BTreeSet::new();
    for warning in warnings {
        if warning.starts_with("not remembered:") && said.insert(warning) {
            eprintln!("{WARNING}warning:{WARNING:#} {}", escape_controls(warning));
        }
    }
}

/// The `ps --json` schema: one object per site. Fields are only ever added.
#[derive(Debug, Serialize)]
pub struct PsRow<'a> {
    pub port: u16,
    pub url: &'a str,
    /// Lossy: a byte that is not UTF-8 shows as U+FFFD (JSON strings are Unicode).
    #[serde(serialize_with = "lossy_path")]
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
    /// The last build's warnings (links that lead nowhere, unsupported features).
    pub build_warnings: &'a [BuildError],
    pub started_at_ms: u64,
    pub drafts: bool,
    /// Things worth knowing that do not stop the site (e.g. watching by polling).
    pub warnings: &'a [String],
    /// Lives only as long as the `sitectl up --attach` that brought it up.
    pub attached: bool,
    /// `{done, total}` pages while the site builds; null otherwise.
    pub progress: Option<sited_proto::BuildProgress>,
    /// The address it listens on, as bound (`0.0.0.0:5173` for every interface).
    pub address: &'a str,
    /// `native` (sited's builder) or the program that builds the site (`hugo`, ...).
    pub builder: &'a str,
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
            build_warnings: build.map_or(&[], |b| &b.warnings),
            started_at_ms: info.started_at_ms,
            drafts: info.drafts,
            warnings: &info.warnings,
            attached: info.attached,
            progress: info.progress,
            address: &info.address,
            builder: &info.builder,
        }
    }
}

fn lossy_path<S: serde::Serializer>(
    path: &&std::path::Path,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&path.to_string_lossy())
}

pub fn print_ps_json(sites: &[SiteInfo]) -> std::io::Result<()> {
    let rows: Vec<PsRow<'_>> = sites.iter().map(PsRow::new).collect();
    out!(
        "{}",
        serde_json::to_string_pretty(&rows).expect("rows serialize")
    )
}

pub fn print_ps_table(sites: &[SiteInfo]) -> std::io::Result<()> {
    if sites.is_empty() {
        return out!("no sites; `sitectl up PATH` starts one");
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
                Some(b) if !b.errors.is_empty() => {
                    format!("{} ms, {} err", b.duration_ms, b.errors.len())
                }
                Some(b) if !b.warnings.is_empty() => {
                    format!("{} ms, {} warn", b.duration_ms, b.warnings.len())
                }
                Some(b) => format!("{} ms", b.duration_ms),
                None => "-".into(),
            };
            [
                site.port.to_string(),
                site.state.name().to_string(),
                site.url.clone(),
                site.pages.to_string(),
                build,
                duration(now.saturating_sub(site.started_at_ms)),
                match site.builder.as_str() {
                    // Another program builds it: said after the root.
                    "" | "native" => shown(&site.root.display()),
                    builder => format!("{} ({builder})", shown(&site.root.display())),
                },
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    // Padded on the plain text, then styled: escape codes take no room on screen.
    let line = |cells: &[String], styles: &[Style]| {
        let mut out = String::new();
        for (i, (cell, style)) in cells.iter().zip(styles).enumerate() {
            let padding = if i + 1 == cells.len() {
                String::new()
            } else {
                " ".repeat(widths[i] - cell.chars().count() + 2)
            };
            out.push_str(&format!("{style}{cell}{style:#}{padding}"));
        }
        out
    };
    out!("{}", line(&header.map(String::from), &[HEADER; 7]))?;
    for (row, site) in rows.iter().zip(sites) {
        let mut styles = [Style::new(); 7];
        styles[1] = state_style(&site.state);
        if site
            .last_build
            .as_ref()
            .is_some_and(|b| !b.errors.is_empty())
        {
            styles[4] = BAD;
        }
        out!("{}", line(row, &styles))?;
        if !site.address.is_empty() && !site.url.contains(&site.address) {
            out!("      listening on {}", listening(&site.address))?;
        }
        if let SiteState::Failed { reason } = &site.state {
            out!("      {BAD}failed:{BAD:#} {}", escape_controls(reason))?;
        }
        for warning in &site.warnings {
            out!("      {BUSY}warning:{BUSY:#} {}", escape_controls(warning))?;
        }
        if let Some(build) = &site.last_build {
            for error in &build.errors {
                out!("      {BAD}error:{BAD:#} {}", shown(error))?;
            }
        }
    }
    Ok(())
}

/// Anything that names the user's files, as shown: control characters escaped.
fn shown(item: &dyn std::fmt::Display) -> String {
    escape_controls(&item.to_string()).into_owned()
}

/// A bound address, saying what an unspecified one means.
fn listening(address: &str) -> String {
    if address.starts_with("0.0.0.0:") || address.starts_with("[::]:") {
        format!("{address} (every interface: other machines can reach it)")
    } else {
        address.to_string()
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

/// One line of a command's result on stdout.
pub fn print_line(line: &str) -> std::io::Result<()> {
    writeln!(std::io::stdout().lock(), "{line}")
}

/// A line for the human at the terminal that is neither a result nor a failure.
pub fn print_note(note: &str) {
    eprintln!("{note}");
}

pub fn print_failure(failure: &Failure) {
    print_problem(ERROR, "error", failure);
}

/// A failure that does not stop the command: said as a warning, and it carries on.
pub fn print_warning(failure: &Failure) {
    print_problem(WARNING, "warning", failure);
}

fn print_problem(style: Style, label: &str, failure: &Failure) {
    eprintln!("{style}{label}:{style:#} {}", failure.message);
    for cause in &failure.causes {
        eprintln!("  caused by: {cause}");
    }
    if let Some(hint) = &failure.hint {
        eprintln!("{HINT}hint:{HINT:#} {hint}");
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_compact() {
        assert_eq!(duration(0), "0s");
        assert_eq!(duration(59_999), "59s");
        assert_eq!(duration(185_000), "3m05s");
        assert_eq!(duration(7_620_000), "2h07m");
        assert_eq!(duration(273_600_000), "3d04h");
    }
}
