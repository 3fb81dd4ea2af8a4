//! Scale (issue 17.7): the tldr corpus copied K times over (7,425 pages a copy; the
//! default sizes are K = 1, 4 and 14, the last about 104,000 pages), so growth stays
//! linear and visible. At each size:
//! - a one-shot `sited build` against `hugo` on the same files (same escaping of `{{<` as
//!   bench/build-vs-hugo.sh; sited with its default theme, Hugo with two minimal
//!   layouts), alternating, RUNS each: wall time and peak RSS of the process;
//! - through the daemon, in a fresh home each run: `sitectl up` → first 200 of a deep
//!   page (the last copy's `common/tar`, polled from the moment `up` is called on the
//!   port `up` is given), → `up` returned (the whole first build), the daemon's RSS
//!   then (VmRSS and its peak VmHWM);
//! - write → reload event (SSE) of one edit to that page, median of EDITS edits.
//!
//! Sites live on tmpfs when there is one (/dev/shm): the disk is bench/build-in-place.sh's
//! subject, not this one's. Usage: `scale [RUNS] [EDITS] [K...]`; run it through
//! bench/scale.sh, which builds in release mode and installs hugo when missing.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use sited_bench::{copy_escaped, free_port, ms, write_hugo_site};
use sited_tests::{Events, Home, get, wait_until};

/// The page edited and asked for first, within the last copy.
const PAGE: &str = "common/tar.md";
/// Quiet time between edits, so one edit's work never overlaps the next.
const SETTLE: Duration = Duration::from_millis(300);

fn main() {
    let mut args = std::env::args().skip(1);
    let runs: usize = args.next().map_or(3, |n| n.parse().expect("RUNS"));
    let edits: usize = args.next().map_or(10, |n| n.parse().expect("EDITS"));
    let mut sizes: Vec<usize> = args.map(|k| k.parse().expect("K")).collect();
    if sizes.is_empty() {
        sizes = vec![1, 4, 14];
    }
    let corpus = sited_tests::workspace()
        .parent()
        .unwrap()
        .join("shared/corpus/tldr/content");
    let shm = Path::new("/dev/shm");
    let work = if shm.is_dir() {
        tempfile::tempdir_in(shm).unwrap()
    } else {
        tempfile::tempdir().unwrap()
    };
    println!(
        "{runs} runs and {edits} edits per size, working in {}",
        work.path().display()
    );

    let mut rows = Vec::new();
    for k in sizes {
        let root = work.path().join(format!("site-{k}"));
        let pages = generate(&corpus, &root, k);
        println!("\n## ×{k}: {pages} pages");
        rows.push(Row {
            k,
            pages,
            builds: one_shot_builds(&root, &work.path().join("out"), runs),
            daemon: (0..runs).map(|_| through_daemon(&root, k, edits)).collect(),
        });
        fs::remove_dir_all(&root).unwrap();
    }
    summary(&rows);
}

struct Row {
    k: usize,
    pages: usize,
    /// (sited, hugo) per run.
    builds: Vec<(Measured, Measured)>,
    daemon: Vec<Daemon>,
}

#[derive(Clone, Copy)]
struct Measured {
    wall: Duration,
    peak_rss_kib: u64,
}

struct Daemon {
    first_page: Duration,
    up_returned: Duration,
    rss_kib: u64,
    peak_rss_kib: u64,
    reload_median: Duration,
}

/// Copies the corpus K times, as `content/cNN/<section>/<page>.md`, with site.toml and
/// hugo.toml; returns the number of pages.
fn generate(corpus: &Path, root: &Path, k: usize) -> usize {
    let mut pages = 0;
    for copy in 0..k {
        pages += copy_escaped(corpus, &root.join(format!("content/c{copy:02}")));
    }
    fs::write(root.join("site.toml"), "base_url = \"http://127.0.0.1/\"\n").unwrap();
    write_hugo_site(root, true);
    pages
}

fn one_shot_builds(root: &Path, out: &Path, runs: usize) -> Vec<(Measured, Measured)> {
    let sited = sited_tests::bin("sited");
    (0..runs)
        .map(|run| {
            let _ = fs::remove_dir_all(out);
            let mine = measure(
                &sited,
                &[
                    "build".as_ref(),
                    root.as_os_str(),
                    "--out".as_ref(),
                    out.as_os_str(),
                ],
            );
            fs::remove_dir_all(out).unwrap();
            let hugo = measure(
                Path::new("hugo"),
                &[
                    "--quiet".as_ref(),
                    "--source".as_ref(),
                    root.as_os_str(),
                    "--destination".as_ref(),
                    out.as_os_str(),
                ],
            );
            fs::remove_dir_all(out).unwrap();
            println!(
                "build run {run}: sited {:.2} s {} MiB | hugo {:.2} s {} MiB",
                mine.wall.as_secs_f64(),
                mine.peak_rss_kib / 1024,
                hugo.wall.as_secs_f64(),
                hugo.peak_rss_kib / 1024
            );
            (mine, hugo)
        })
        .collect()
}

/// Runs a program to its end under GNU time; its wall time and peak RSS.
fn measure(program: &Path, args: &[&std::ffi::OsStr]) -> Measured {
    let report = tempfile::NamedTempFile::new().unwrap();
    let started = Instant::now();
    let output = Command::new("/usr/bin/time")
        .args(["-f", "%M", "-o"])
        .arg(report.path())
        .arg(program)
        .args(args)
        .stdout(Stdio::null())
        .output()
        .expect("run /usr/bin/time (Debian package `time`)");
    let wall = started.elapsed();
    assert!(
        output.status.success(),
        "{} failed ({}): {}",
        program.display(),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let peak = fs::read_to_string(report.path()).unwrap();
    Measured {
        wall,
        peak_rss_kib: peak
            .trim()
            .parse()
            .expect("a number of KiB from time -f %M"),
    }
}

/// One fresh daemon: `up` of the site with the first page polled meanwhile, then edits.
fn through_daemon(root: &Path, k: usize, edits: usize) -> Daemon {
    let home = Home::new();
    let port = free_port();
    let url = format!("/c{:02}/{}/", k - 1, PAGE.trim_end_matches(".md"));
    let started = Instant::now();
    let mut up = home.command("sitectl");
    up.arg("up").arg(root).args(["--port", &port.to_string()]);
    let up = up
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first_page = None;
    assert!(
        wait_until(Duration::from_secs(600), || {
            first_page = get(port, &url)
                .is_ok_and(|r| r.status == 200)
                .then(|| started.elapsed());
            first_page.is_some()
        }),
        "{url} never served on port {port}"
    );
    let output = up.wait_with_output().unwrap();
    let up_returned = started.elapsed();
    assert!(
        output.status.success(),
        "sitectl up failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let pid = home.daemon_pid().expect("a daemon runs");
    let (rss_kib, peak_rss_kib) = memory(pid);
    let reload_median = reloads(
        port,
        &root.join(format!("content/c{:02}/{PAGE}", k - 1)),
        edits,
    );
    home.sitectl_ok(&["down", "--all"]);
    let run = Daemon {
        first_page: first_page.unwrap(),
        up_returned,
        rss_kib,
        peak_rss_kib,
        reload_median,
    };
    println!(
        "daemon: first page {:.0} ms, up returned {:.0} ms, RSS {} MiB (peak {} MiB), reload event median {:.2} ms",
        ms(run.first_page),
        ms(run.up_returned),
        run.rss_kib / 1024,
        run.peak_rss_kib / 1024,
        ms(run.reload_median)
    );
    run
}

/// Write → reload event for `edits` edits of `page`; the median.
fn reloads(port: u16, page: &Path, edits: usize) -> Duration {
    let (event_tx, events) = mpsc::channel();
    let mut stream = Events::connect(port).unwrap();
    stream.wait_forever();
    std::thread::spawn(move || {
        while let Some(_state) = stream.try_next_state() {
            if event_tx.send(Instant::now()).is_err() {
                break;
            }
        }
    });
    events.recv().unwrap();
    let original = fs::read_to_string(page).unwrap();
    let mut samples = Vec::new();
    for n in 0..edits {
        std::thread::sleep(SETTLE);
        let t0 = Instant::now();
        fs::write(page, format!("{original}\nscale-bench-edit-{n}\n")).unwrap();
        let at = events
            .recv_timeout(Duration::from_secs(60))
            .expect("a reload event");
        samples.push(at.duration_since(t0));
    }
    fs::write(page, original).unwrap();
    samples.sort();
    samples[samples.len() / 2]
}

/// VmRSS and VmHWM of a process, in KiB.
fn memory(pid: u32) -> (u64, u64) {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kib| kib.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn summary(rows: &[Row]) {
    println!("\n## medians");
    println!(
        "| pages | sited build s | hugo build s | ratio | sited peak RSS MiB | hugo peak RSS MiB | up → first page ms | up returned ms | daemon RSS MiB (peak) | reload event ms |"
    );
    println!("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    let base = rows.first().map(|row| row.pages as f64);
    for row in rows {
        let sited = median_by(&row.builds, |(s, _)| s.wall.as_secs_f64());
        let hugo = median_by(&row.builds, |(_, h)| h.wall.as_secs_f64());
        let rss =
            |f: fn(&(Measured, Measured)) -> u64| median_by(&row.builds, |b| f(b) as f64 / 1024.0);
        println!(
            "| {} (×{}) | {sited:.2} | {hugo:.2} | {:.2} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} ({:.0}) | {:.2} |",
            row.pages,
            row.k,
            sited / hugo,
            rss(|(s, _)| s.peak_rss_kib),
            rss(|(_, h)| h.peak_rss_kib),
            median_by(&row.daemon, |d| ms(d.first_page)),
            median_by(&row.daemon, |d| ms(d.up_returned)),
            median_by(&row.daemon, |d| d.rss_kib as f64 / 1024.0),
            median_by(&row.daemon, |d| d.peak_rss_kib as f64 / 1024.0),
            median_by(&row.daemon, |d| ms(d.reload_median)),
        );
    }
    if let (Some(base), Some(last)) = (base, rows.last()) {
        let growth = last.pages as f64 / base;
        let build = median_by(&last.builds, |(s, _)| s.wall.as_secs_f64())
            / median_by(&rows[0].builds, |(s, _)| s.wall.as_secs_f64());
        println!(
            "pages grew {growth:.1}×; sited's build time grew {build:.1}× (linear: {growth:.1}×)"
        );
    }
}

fn median_by<T>(items: &[T], f: impl Fn(&T) -> f64) -> f64 {
    let mut values: Vec<f64> = items.iter().map(f).collect();
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}
