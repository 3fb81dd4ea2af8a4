//! Reload latency, sited against `hugo server`, on the same copy of the tldr corpus.
//!
//! For each edit (one page's file rewritten with a new marker line at its end) it
//! measures, from just before the `write`:
//! - sited: the reload event reaching an SSE client (`/__sited/events`), and the new
//!   content being served (GET polled until the marker is in the page);
//! - hugo: the new content being served, polled the same way.
//!
//! Edits alternate between the two servers, which run side by side on two identical
//! copies. Usage: `reload-latency [EDITS] [CORPUS_DIR]` (defaults: 25 and the tldr corpus
//! in ../shared). Run it through `bench/reload-latency.sh`, which builds in release mode
//! and installs hugo when missing.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use sited_bench::{HugoServer, copy_escaped, free_port, ms, write_hugo_site};
use sited_tests::{Events, Home, get, wait_until};

/// The page edited, relative to the content dir, and its URL.
const PAGE: &str = "common/tar.md";
const URL: &str = "/common/tar/";
/// Edits not counted, to let both servers warm up.
const WARMUP: usize = 2;
/// Quiet time between edits, so one edit's work never overlaps the next.
const SETTLE: Duration = Duration::from_millis(300);

fn main() {
    let mut args = std::env::args().skip(1);
    let edits: usize = args
        .next()
        .map_or(25, |n| n.parse().expect("EDITS is a number"));
    let corpus = args.next().map(PathBuf::from).unwrap_or_else(|| {
        sited_tests::workspace()
            .parent()
            .unwrap()
            .join("shared/corpus/tldr/content")
    });
    let work = tempfile::tempdir().unwrap();
    let sited_root = work.path().join("sited-site");
    let hugo_root = work.path().join("hugo-site");
    let pages = copy_escaped(&corpus, &sited_root.join("content"));
    copy_escaped(&corpus, &hugo_root.join("content"));
    write_hugo_site(&hugo_root, false);
    println!(
        "corpus: {} ({pages} Markdown files), {edits} edits each after {WARMUP} warm-up",
        corpus.display()
    );

    // sited, through its daemon, logging where each rebuild's time goes.
    let home = Home::with_env(
        "SITED_LOG",
        "info,sited::site=debug,sited_builder::site=debug",
    );
    let started = Instant::now();
    let sited_port = home.up(&sited_root, &["--port", "0"]);
    println!("sited: up in {:?} on port {sited_port}", started.elapsed());
    let (event_tx, events) = mpsc::channel();
    let mut stream = Events::connect(sited_port).unwrap();
    stream.wait_forever();
    std::thread::spawn(move || {
        while let Some(state) = stream.try_next_state() {
            let generation = state["generation"].as_u64().unwrap();
            if event_tx.send((Instant::now(), generation)).is_err() {
                break;
            }
        }
    });
    let (_, mut generation) = events.recv().unwrap();

    // hugo, its own dev server.
    let hugo_port = free_port();
    let started = Instant::now();
    let mut hugo = HugoServer::start(&hugo_root, hugo_port);
    assert!(
        wait_until(Duration::from_secs(120), || get(hugo_port, URL)
            .is_ok_and(|r| r.status == 200)),
        "hugo server did not come up"
    );
    println!(
        "hugo: serving in {:?} on port {hugo_port}",
        started.elapsed()
    );

    let mut sited_event = Vec::new();
    let mut sited_served = Vec::new();
    let mut hugo_served = Vec::new();
    for n in 0..edits + WARMUP {
        std::thread::sleep(SETTLE);
        let marker = format!("sited-bench-edit-{n}-sited");
        let t0 = Instant::now();
        append_marker(&sited_root.join("content").join(PAGE), &marker);
        let served = time_until_served(sited_port, &marker, t0);
        let (at, new_generation) = events
            .recv_timeout(Duration::from_secs(10))
            .expect("reload event");
        assert!(new_generation > generation);
        generation = new_generation;
        let event = at.duration_since(t0);

        std::thread::sleep(SETTLE);
        let marker = format!("sited-bench-edit-{n}-hugo");
        let t0 = Instant::now();
        append_marker(&hugo_root.join("content").join(PAGE), &marker);
        let hugo = time_until_served(hugo_port, &marker, t0);
        if n >= WARMUP {
            sited_event.push(event);
            sited_served.push(served);
            hugo_served.push(hugo);
        }
        println!(
            "edit {n:>2}: sited event {:>7.2} ms, served {:>7.2} ms | hugo served {:>8.2} ms{}",
            ms(event),
            ms(served),
            ms(hugo),
            if n < WARMUP { "  (warm-up)" } else { "" }
        );
    }
    hugo.stop();

    println!();
    report("sited: write → reload event (SSE)", &mut sited_event);
    report("sited: write → new content served", &mut sited_served);
    report("hugo:  write → new content served", &mut hugo_served);
    let ratio = median(&hugo_served) / median(&sited_served);
    println!("ratio (median served, hugo / sited): {ratio:.1}×");
    breakdown(&home.log_text(), edits);
}

/// Medians of the daemon's own timings of the last `edits` rebuilds (its debug log): the
/// wait for a save to settle, the build (of which the builder's fast path, by part), and
/// the publish into serving and to the live-reload stream. What the event took beyond
/// their sum is the watcher's delivery, the build's hand-off to its thread and back, and
/// the event's way to the client.
fn breakdown(log: &str, edits: usize) {
    let fields = |message: &str| -> Vec<Vec<(String, f64)>> {
        let lines: Vec<&str> = log.lines().filter(|l| l.contains(message)).collect();
        lines[lines.len().saturating_sub(edits)..]
            .iter()
            .map(|line| {
                line.split_whitespace()
                    .filter_map(|word| word.split_once('='))
                    .filter(|(key, _)| key.ends_with("_us"))
                    .filter_map(|(key, value)| Some((key.to_string(), value.parse().ok()?)))
                    .collect()
            })
            .collect()
    };
    println!("sited, where an edit's time goes (daemon's log, medians over {edits} edits):");
    for message in ["changes settled", "fast path", "rebuild timed"] {
        let rows = fields(message);
        let Some(first) = rows.first() else {
            println!("  {message}: no timings in the log");
            continue;
        };
        let parts: Vec<String> = first
            .iter()
            .map(|(key, _)| {
                let mut values: Vec<f64> = rows
                    .iter()
                    .filter_map(|row| row.iter().find(|(k, _)| k == key).map(|(_, v)| *v))
                    .collect();
                values.sort_by(f64::total_cmp);
                let median = values[values.len() / 2] / 1000.0;
                format!("{} {median:.2} ms", key.trim_end_matches("_us"))
            })
            .collect();
        println!("  {message} (n={}): {}", rows.len(), parts.join(", "));
    }
}

fn median(samples: &[Duration]) -> f64 {
    let mut sorted: Vec<f64> = samples.iter().copied().map(ms).collect();
    sorted.sort_by(f64::total_cmp);
    sorted[sorted.len() / 2]
}

fn report(label: &str, samples: &mut [Duration]) {
    samples.sort();
    let p95 = samples[((samples.len() as f64 * 0.95).ceil() as usize).saturating_sub(1)];
    println!(
        "{label}: median {:.2} ms, p95 {:.2} ms, min {:.2} ms, max {:.2} ms (n={})",
        median(samples),
        ms(p95),
        ms(samples[0]),
        ms(samples[samples.len() - 1]),
        samples.len()
    );
}

/// Polls the page until it contains `marker`; the time from `t0`.
fn time_until_served(port: u16, marker: &str, t0: Instant) -> Duration {
    let deadline = Duration::from_secs(60);
    loop {
        if get(port, URL).is_ok_and(|r| r.text().contains(marker)) {
            return t0.elapsed();
        }
        assert!(
            t0.elapsed() < deadline,
            "{marker} never served on port {port}"
        );
        std::thread::sleep(Duration::from_micros(200));
    }
}

fn append_marker(path: &Path, marker: &str) {
    let mut text = fs::read_to_string(path).unwrap();
    text.push_str(&format!("\n{marker}\n"));
    fs::write(path, text).unwrap();
}
