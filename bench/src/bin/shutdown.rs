//! Shutdown speed and idle cost of the daemon (issue 5): with 50 small sites up, SIGTERM to
//! a foreground `sited`, and the time until every port can be bound again and until the
//! process is gone (reaped: it is this harness's child); the daemon's memory (VmRSS) with
//! 0 and 50 sites; the CPU time it uses while 50 sites sit idle.
//!
//! Two variants of the shutdown, RUNS each: the sites alone, and each with a live-reload
//! client connected (an open browser tab), which the shutdown must end too. Usage:
//! `shutdown [RUNS] [SITES]` (defaults 10 and 50). Run it through `bench/shutdown.sh`,
//! which builds in release mode.

use std::fs;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use sited_tests::{Events, Home, get, port_is_free};

/// How long the idle CPU time is measured.
const IDLE: Duration = Duration::from_secs(10);
/// Past this a shutdown counts as hung.
const HANG: Duration = Duration::from_secs(10);
/// The target from SCENARIOS.md (S1/S2): every port free within this after the signal.
const TARGET: Duration = Duration::from_millis(250);

fn main() {
    let mut args = std::env::args().skip(1);
    let runs: usize = args.next().map_or(10, |n| n.parse().expect("RUNS"));
    let sites: usize = args.next().map_or(50, |n| n.parse().expect("SITES"));
    println!("{sites} sites, {runs} runs per variant, SIGTERM to a foreground sited");

    let mut summary = Vec::new();
    for live in [false, true] {
        let variant = if live {
            "with a live-reload client per site"
        } else {
            "sites only"
        };
        println!("\n## {variant}");
        let mut ports_free = Vec::new();
        let mut gone = Vec::new();
        for run in 0..runs {
            let measure_idle = run == 0;
            let (freed, exited) = one_run(sites, live, measure_idle);
            println!(
                "run {run:>2}: ports free {:>7.2} ms, process gone {:>7.2} ms",
                ms(freed),
                ms(exited)
            );
            ports_free.push(freed);
            gone.push(exited);
        }
        let (p, g) = (median(&ports_free), median(&gone));
        let worst = ports_free.iter().chain(&gone).max().copied().unwrap();
        println!(
            "median: ports free {:.2} ms, process gone {:.2} ms; worst {:.2} ms",
            ms(p),
            ms(g),
            ms(worst)
        );
        summary.push((variant, p, g));
    }
    println!();
    for (variant, p, g) in summary {
        let verdict = if p.max(g) <= TARGET { "met" } else { "MISSED" };
        println!(
            "{variant}: median ports free {:.2} ms, process gone {:.2} ms → target ≤ {} ms {verdict}",
            ms(p),
            ms(g),
            TARGET.as_millis()
        );
    }
}

/// Starts a daemon, brings `n` sites up, optionally measures its idle cost, sends
/// SIGTERM; returns (signal → all ports free, signal → process reaped).
fn one_run(n: usize, live: bool, measure_idle: bool) -> (Duration, Duration) {
    let mut home = Home::new();
    let pid = home.start_foreground(&[]);
    if measure_idle {
        println!(
            "idle, 0 sites: VmRSS {} KiB, {} threads, {} fds",
            status_field(pid, "VmRSS"),
            status_field(pid, "Threads"),
            fd_count(pid)
        );
    }
    let ports: Vec<u16> = (0..n)
        .map(|i| {
            let root = small_site(&home, i);
            home.up(&root, &["--port", "0"])
        })
        .collect();
    for &port in &ports {
        assert_eq!(get(port, "/").unwrap().status, 200);
    }
    let mut clients = Vec::new();
    if live {
        for &port in &ports {
            let mut events = Events::connect(port).unwrap();
            events.next_state();
            clients.push(events);
        }
    }
    if measure_idle {
        println!(
            "idle, {n} sites{}: VmRSS {} KiB, {} threads, {} fds",
            if live { " + live-reload clients" } else { "" },
            status_field(pid, "VmRSS"),
            status_field(pid, "Threads"),
            fd_count(pid)
        );
        let (before, on_cpu_before) = (cpu_time(pid), on_cpu(pid));
        // A measurement window, not a wait for readiness.
        std::thread::sleep(IDLE);
        // A thread that ends in the window (tokio's blocking pool idles out after 10 s)
        // takes its schedstat time with it: never below zero.
        let (used, on_cpu_used) = (
            cpu_time(pid).saturating_sub(before),
            on_cpu(pid).saturating_sub(on_cpu_before),
        );
        println!(
            "CPU time over {}s idle with {n} sites: utime+stime {:.0} ms (resolution {} ms), \
             on-CPU time of its threads {:.3} ms (schedstat)",
            IDLE.as_secs(),
            ms(used),
            1000 / clock_ticks(),
            ms(on_cpu_used)
        );
    }

    let signalled = Instant::now();
    sigterm(pid);
    let (mut freed, mut exited) = (None, None);
    while freed.is_none() || exited.is_none() {
        if freed.is_none() && ports.iter().all(|&p| port_is_free(p)) {
            freed = Some(signalled.elapsed());
        }
        if exited.is_none()
            && let Some(status) = home.foreground_child().try_wait().unwrap()
        {
            exited = Some(signalled.elapsed());
            assert!(status.success(), "sited exited with {status}");
        }
        assert!(
            signalled.elapsed() < HANG,
            "shutdown hung: {}",
            home.foreground_log()
        );
        std::hint::spin_loop();
    }
    drop(clients);
    (freed.unwrap(), exited.unwrap())
}

/// A small site: home, a section with two posts, an about page, a stylesheet.
fn small_site(home: &Home, i: usize) -> PathBuf {
    home.site(
        &format!("site{i}"),
        &[
            (
                "content/_index.md",
                &format!("+++\ntitle = \"Site {i}\"\n+++\nWelcome.\n"),
            ),
            ("content/about.md", "# About\n\nA small site.\n"),
            ("content/posts/_index.md", "+++\ntitle = \"Posts\"\n+++\n"),
            (
                "content/posts/one.md",
                "+++\ntitle = \"One\"\ndate = 2026-01-01\n+++\nFirst post.\n",
            ),
            (
                "content/posts/two.md",
                "+++\ntitle = \"Two\"\ndate = 2026-01-02\n+++\nSecond post.\n",
            ),
            ("static/custom.css", "body { color: #222; }\n"),
        ],
    )
}

fn sigterm(pid: u32) {
    // SAFETY: kill has no memory-safety preconditions. Sent directly rather than through
    // `kill(1)`, so process start-up is not part of the measurement.
    #[allow(unsafe_code)]
    let sent = unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
    assert_eq!(sent, 0, "kill -TERM {pid}");
}

/// A numeric field of `/proc/PID/status` (`VmRSS` is in KiB).
fn status_field(pid: u32, name: &str) -> u64 {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in /proc/{pid}/status"))
}

fn fd_count(pid: u32) -> usize {
    fs::read_dir(format!("/proc/{pid}/fd")).unwrap().count()
}

/// utime + stime of `pid`, from `/proc/PID/stat`.
fn cpu_time(pid: u32) -> Duration {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name, which is in parentheses and may contain spaces.
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..]
        .split_whitespace()
        .collect();
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after `(comm)`.
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    Duration::from_secs_f64(ticks as f64 / clock_ticks() as f64)
}

/// Clock ticks per second, the unit of utime and stime.
fn clock_ticks() -> u64 {
    // SAFETY: sysconf only reads its argument.
    #[allow(unsafe_code)]
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    per_second as u64
}

/// Time the threads of `pid` have spent on a CPU, in nanoseconds: the first field of each
/// `/proc/PID/task/TID/schedstat`. Finer than utime+stime, whose unit is a clock tick.
fn on_cpu(pid: u32) -> Duration {
    let nanos: u64 = fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .flatten()
        .filter_map(|task| fs::read_to_string(task.path().join("schedstat")).ok())
        .filter_map(|stat| stat.split_whitespace().next()?.parse::<u64>().ok())
        .sum();
    Duration::from_nanos(nanos)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The median; for an even count, the mean of the two middle samples.
fn median(samples: &[Duration]) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort();
    let mid = sorted.len() / 2;
    if sorted.len().is_multiple_of(2) {
        (sorted[mid - 1] + sorted[mid]) / 2
    } else {
        sorted[mid]
    }
}
