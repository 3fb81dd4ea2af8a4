//! `up` → first page served, on the tldr corpus (issue 17.2): from the moment `sitectl up
//! --port P` is started to the first 200 of a deep page (`/common/tar/`), polled
//! concurrently on P; and when `up` itself returned (the whole first build). Each sited
//! build given (before and after a change) runs its own daemon; `hugo server` on the same
//! content is timed from its start to its first 200 of the same page. Runs interleave:
//! one of each per round.
//!
//! Usage: first-page RUNS NAME=BINDIR... (each BINDIR holds `sited` and `sitectl`).
//! `CORPUS` overrides the content folder; `NO_HUGO=1` leaves Hugo out.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use sited_bench::{HugoServer, copy_escaped, free_port, ms, write_hugo_site};
use sited_tests::{Home, get, wait_until};

const URL: &str = "/common/tar/";
/// A refused connection (nothing listening yet) is tried again after this long; the
/// figures are at most this much late. Polling without a pause would take a core from
/// the build on this 2-core machine.
const POLL: Duration = Duration::from_millis(1);

struct Variant {
    name: String,
    dir: PathBuf,
    home: Home,
}

fn main() {
    let mut args = std::env::args().skip(1);
    let runs: usize = args
        .next()
        .map_or(5, |n| n.parse().expect("RUNS is a number"));
    let corpus = std::env::var_os("CORPUS").map_or_else(
        || {
            sited_tests::workspace()
                .parent()
                .unwrap()
                .join("shared/corpus/tldr/content")
        },
        PathBuf::from,
    );
    let mut variants: Vec<Variant> = args
        .map(|arg| {
            let (name, dir) = arg.split_once('=').expect("NAME=BINDIR");
            Variant {
                name: name.to_string(),
                dir: PathBuf::from(dir),
                home: Home::new(),
            }
        })
        .collect();
    let work = tempfile::tempdir().unwrap();
    let sited_root = work.path().join("sited-site");
    let hugo_root = work.path().join("hugo-site");
    let pages = copy_escaped(&corpus, &sited_root.join("content"));
    let hugo = std::env::var_os("NO_HUGO").is_none();
    if hugo {
        copy_escaped(&corpus, &hugo_root.join("content"));
        write_hugo_site(&hugo_root, false);
    }
    println!(
        "corpus: {} ({pages} Markdown files), page {URL}, {runs} runs after a warm-up",
        corpus.display()
    );
    for variant in &mut variants {
        let command = variant.home.command_for(&variant.dir.join("sited"));
        variant.home.spawn_foreground(command);
        let (home, sitectl) = (&variant.home, variant.dir.join("sitectl"));
        assert!(
            wait_until(Duration::from_secs(60), || home
                .command_for(&sitectl)
                .args(["daemon", "status"])
                .output()
                .is_ok_and(|o| o.status.success())),
            "{}: the daemon did not come up",
            variant.name
        );
    }
    let mut first: Vec<Vec<Duration>> = vec![Vec::new(); variants.len() + 1];
    let mut built: Vec<Vec<Duration>> = vec![Vec::new(); variants.len()];
    for run in 0..=runs {
        let mut line = format!("run {run}:");
        // Each run in the other order: a variant measured right after another shares the
        // machine with that one's daemon going down (measured: the second was 15-30 ms
        // slower to its first page, whichever binary it was).
        let mut order: Vec<usize> = (0..variants.len()).collect();
        if run % 2 == 1 {
            order.reverse();
        }
        for n in order {
            let variant = &variants[n];
            let (page, up) = sited_once(variant, &sited_root);
            line.push_str(&format!(
                " {} first 200 {:.1} ms, up returned {:.1} ms;",
                variant.name,
                ms(page),
                ms(up)
            ));
            if run > 0 {
                first[n].push(page);
                built[n].push(up);
            }
        }
        if hugo {
            let page = hugo_once(&hugo_root);
            line.push_str(&format!(" hugo server first 200 {:.1} ms", ms(page)));
            if run > 0 {
                first[variants.len()].push(page);
            }
        }
        let warm_up = if run == 0 {
            " (warm-up, not counted)"
        } else {
            ""
        };
        println!("{line}{warm_up}");
    }
    println!("medians over {runs} runs:");
    for (n, variant) in variants.iter().enumerate() {
        println!(
            "  {}: up → first 200 {:.1} ms, up → up returned {:.1} ms",
            variant.name,
            ms(median(&mut first[n])),
            ms(median(&mut built[n]))
        );
    }
    if hugo {
        let hugo = median(&mut first[variants.len()]);
        println!("  hugo server: start → first 200 {:.1} ms", ms(hugo));
        for (n, variant) in variants.iter().enumerate() {
            println!(
                "  {}/hugo: {:.2}",
                variant.name,
                ms(median(&mut first[n])) / ms(hugo)
            );
        }
    }
}

/// One `up` of `root` on a free port: (start → first 200 of [`URL`], start → `up`
/// returned). The site is taken down again.
fn sited_once(variant: &Variant, root: &Path) -> (Duration, Duration) {
    let port = free_port();
    let sitectl = variant.dir.join("sitectl");
    let started = Instant::now();
    let mut up = variant
        .home
        .command_for(&sitectl)
        .args(["up", root.to_str().unwrap(), "--port", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("run sitectl up");
    let page = first_200(port, started);
    let status = up.wait().unwrap();
    let returned = started.elapsed();
    assert!(status.success(), "{}: sitectl up failed", variant.name);
    let down = variant
        .home
        .command_for(&sitectl)
        .args(["down", &port.to_string()])
        .output()
        .unwrap();
    assert!(
        down.status.success(),
        "{}: sitectl down failed",
        variant.name
    );
    (page, returned)
}

/// `hugo server` on a free port: start → first 200 of [`URL`].
fn hugo_once(root: &Path) -> Duration {
    let port = free_port();
    let started = Instant::now();
    let mut hugo = HugoServer::start(root, port);
    let page = first_200(port, started);
    hugo.stop();
    page
}

/// Polls [`URL`] on `port` until it answers 200; the time since `started`.
fn first_200(port: u16, started: Instant) -> Duration {
    loop {
        match get(port, URL) {
            Ok(reply) if reply.status == 200 => return started.elapsed(),
            Ok(reply) => panic!("GET {URL} on {port}: {}", reply.status),
            Err(_) => {
                assert!(
                    started.elapsed() < Duration::from_secs(120),
                    "nothing served on port {port}"
                );
                std::thread::sleep(POLL);
            }
        }
    }
}

fn median(values: &mut [Duration]) -> Duration {
    values.sort();
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2
    }
}
