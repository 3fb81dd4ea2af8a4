//! Edit → reload event on a Hugo site with its own layouts (tests/fixtures/hugo-site):
//! sited supervising `hugo` (a full `hugo` build per save, served by sited) against
//! `hugo server`'s own live reload, side by side on two copies of the site.
//!
//! For each edit (a marker line appended to one post) it measures, from just before the
//! `write`:
//! - sited: the reload event reaching an SSE client (`/__sited/events`), then the new
//!   content being served;
//! - hugo server: the `reload` command reaching a LiveReload WebSocket client
//!   (`/livereload`, the protocol its injected script speaks), then the new content served.
//!
//! Edits alternate between the two. Usage: `generator-reload [EDITS]` (default 15); run
//! it through `bench/generator-reload.sh`, which builds in release mode.

use std::fs;
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use sited_bench::{HugoServer, free_port, ms};
use sited_tests::{Events, Home, get, wait_until};
use tungstenite::{Message, WebSocket};

const PAGE: &str = "content/posts/high-water.md";
const URL: &str = "/posts/high-water/";
const WARMUP: usize = 2;
/// Quiet time between edits, so one edit's work never overlaps the next.
const SETTLE: Duration = Duration::from_millis(500);

fn main() {
    let edits: usize = std::env::args()
        .nth(1)
        .map_or(15, |n| n.parse().expect("EDITS is a number"));
    let fixture = sited_tests::workspace().join("tests/fixtures/hugo-site");
    let work = tempfile::tempdir().unwrap();
    let (sited_root, hugo_root) = (work.path().join("sited"), work.path().join("hugo"));
    sited_tests::copy_tree(&fixture, &sited_root);
    sited_tests::copy_tree(&fixture, &hugo_root);
    let sited_root = sited_root.canonicalize().unwrap();

    let home = Home::new();
    let port = home.up(&sited_root, &[]);
    assert_eq!(home.ps()[0]["builder"], "hugo", "sited must supervise hugo");
    let mut events = Events::connect(port).unwrap();
    events.next_state();

    let hugo_port = free_port();
    let mut hugo = HugoServer::start(&hugo_root, hugo_port);
    assert!(
        wait_until(Duration::from_secs(60), || get(hugo_port, URL)
            .is_ok_and(|r| r.status == 200)),
        "hugo server did not come up"
    );
    let mut live = livereload(hugo_port);

    let (mut sited_event, mut sited_served, mut hugo_event, mut hugo_served) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for n in 0..edits + WARMUP {
        let marker = format!("sited-bench-edit-{n}-sited");
        let t0 = Instant::now();
        append_marker(&sited_root.join(PAGE), &marker);
        events.until(|e| e["change"] == "reload");
        let event = t0.elapsed();
        let served = time_until_served(port, &marker, t0);
        std::thread::sleep(SETTLE);

        let marker = format!("sited-bench-edit-{n}-hugo");
        let t0 = Instant::now();
        append_marker(&hugo_root.join(PAGE), &marker);
        wait_for_reload(&mut live);
        let h_event = t0.elapsed();
        let h_served = time_until_served(hugo_port, &marker, t0);
        std::thread::sleep(SETTLE);
        if n >= WARMUP {
            sited_event.push(event);
            sited_served.push(served);
            hugo_event.push(h_event);
            hugo_served.push(h_served);
        }
        println!(
            "edit {n:>2}: sited event {:>7.1} ms, served {:>7.1} ms | hugo server event {:>7.1} ms, served {:>7.1} ms{}",
            ms(event),
            ms(served),
            ms(h_event),
            ms(h_served),
            if n < WARMUP { " (warm-up)" } else { "" }
        );
    }
    hugo.stop();
    home.sitectl_ok(&["down", "--all"]);
    println!();
    report("sited + hugo: write → reload event", &mut sited_event);
    report(
        "sited + hugo: write → new content served",
        &mut sited_served,
    );
    report("hugo server:  write → reload event", &mut hugo_event);
    report("hugo server:  write → new content served", &mut hugo_served);
    println!(
        "ratio (median reload event, sited / hugo server): {:.2}×",
        median(&sited_event) / median(&hugo_event)
    );
}

/// A LiveReload client of `hugo server`, past the hello exchange.
fn livereload(port: u16) -> WebSocket<TcpStream> {
    let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let url = format!("ws://127.0.0.1:{port}/livereload");
    let (mut socket, _) = tungstenite::client(url.as_str(), stream).expect("livereload socket");
    let hello = r#"{"command":"hello","protocols":["http://livereload.com/protocols/official-7"]}"#;
    socket.send(Message::text(hello)).unwrap();
    loop {
        if let Message::Text(text) = socket.read().unwrap()
            && text.contains("hello")
        {
            return socket;
        }
    }
}

fn wait_for_reload(socket: &mut WebSocket<TcpStream>) {
    loop {
        if let Message::Text(text) = socket.read().expect("livereload message")
            && text.contains("\"reload\"")
        {
            return;
        }
    }
}

fn median(samples: &[Duration]) -> f64 {
    let mut sorted: Vec<f64> = samples.iter().copied().map(ms).collect();
    sorted.sort_by(f64::total_cmp);
    sorted[sorted.len() / 2]
}

fn report(label: &str, samples: &mut [Duration]) {
    samples.sort();
    println!(
        "{label}: median {:.1} ms, min {:.1} ms, max {:.1} ms (n={})",
        median(samples),
        ms(samples[0]),
        ms(samples[samples.len() - 1]),
        samples.len()
    );
}

fn time_until_served(port: u16, marker: &str, t0: Instant) -> Duration {
    loop {
        if get(port, URL).is_ok_and(|r| r.text().contains(marker)) {
            return t0.elapsed();
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "{marker} never served"
        );
        std::thread::sleep(Duration::from_micros(500));
    }
}

fn append_marker(path: &Path, marker: &str) {
    let mut text = fs::read_to_string(path).unwrap();
    text.push_str(&format!("\n{marker}\n"));
    fs::write(path, text).unwrap();
}
