//! A fixed-rate HTTP load generator in the manner of wrk2 (not packaged for Debian): each
//! keep-alive connection sends its requests on a fixed schedule, and a request's latency
//! is counted from the moment the schedule says it should have been sent, not from when
//! it was. A server that stalls therefore shows the stall in every request that queued
//! behind it (no "coordinated omission", which makes closed-loop tools like wrk report
//! a tail far better than a browser sees).
//!
//! Usage: `fixed-rate URL RATE SECONDS CONNECTIONS` (e.g.
//! `fixed-rate http://127.0.0.1:8080/page/ 10000 10 32`). Prints one tab-separated line:
//! `sent ok errors achieved_rate p50 p90 p99 p99.9 max` with latencies in milliseconds.
//!
//! One thread per connection, each sleeping until its next send time: the sleep's
//! wake-up delay (tens of microseconds under Linux's default timer slack) is counted in
//! the latency, the same for every server measured with it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, rate, seconds, connections] = &args[..] else {
        eprintln!("usage: fixed-rate URL RATE SECONDS CONNECTIONS");
        std::process::exit(2);
    };
    let (addr, path) = split_url(url);
    let rate: f64 = rate.parse().expect("RATE: requests per second");
    let seconds: f64 = seconds.parse().expect("SECONDS");
    let connections: usize = connections.parse().expect("CONNECTIONS");
    let host = addr.clone();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: fixed-rate\r\n\r\n");

    // Each connection sends every `period`; their schedules are staggered evenly.
    let period = Duration::from_secs_f64(connections as f64 / rate);
    let start = Instant::now() + Duration::from_millis(200);
    let end = start + Duration::from_secs_f64(seconds);
    let threads: Vec<_> = (0..connections)
        .map(|i| {
            let (addr, request) = (addr.clone(), request.clone());
            let offset = period.mul_f64(i as f64 / connections as f64);
            std::thread::spawn(move || run(&addr, request.as_bytes(), start + offset, period, end))
        })
        .collect();
    let mut latencies = Vec::new();
    let (mut sent, mut errors) = (0u64, 0u64);
    for thread in threads {
        let result = thread.join().expect("a connection thread panicked");
        sent += result.sent;
        errors += result.errors;
        latencies.extend(result.latencies_us);
    }
    latencies.sort_unstable();
    let pct = |p: f64| -> f64 {
        if latencies.is_empty() {
            return f64::NAN;
        }
        let index = ((p / 100.0) * latencies.len() as f64).ceil() as usize;
        f64::from(latencies[index.clamp(1, latencies.len()) - 1]) / 1000.0
    };
    println!(
        "{sent}\t{}\t{errors}\t{:.0}\t{:.3}\t{:.3}\t{:.3}\t{:.3}\t{:.3}",
        latencies.len(),
        latencies.len() as f64 / seconds,
        pct(50.0),
        pct(90.0),
        pct(99.0),
        pct(99.9),
        pct(100.0)
    );
}

fn split_url(url: &str) -> (String, String) {
    let rest = url
        .strip_prefix("http://")
        .expect("URL: http://HOST:PORT/PATH");
    match rest.find('/') {
        Some(i) => (rest[..i].to_string(), rest[i..].to_string()),
        None => (rest.to_string(), "/".to_string()),
    }
}

#[derive(Debug, Default)]
struct Outcome {
    sent: u64,
    errors: u64,
    latencies_us: Vec<u32>,
}

fn run(addr: &str, request: &[u8], first: Instant, period: Duration, end: Instant) -> Outcome {
    let mut outcome = Outcome::default();
    let mut connection: Option<BufReader<TcpStream>> = None;
    let mut body = Vec::new();
    let mut due = first;
    while due < end {
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        outcome.sent += 1;
        let reader = match &mut connection {
            Some(reader) => reader,
            None => match TcpStream::connect(addr) {
                Ok(stream) => {
                    let _ = stream.set_nodelay(true);
                    connection.insert(BufReader::with_capacity(64 * 1024, stream))
                }
                Err(_) => {
                    outcome.errors += 1;
                    due += period;
                    continue;
                }
            },
        };
        match exchange(reader, request, &mut body) {
            Ok(true) => {
                let latency = Instant::now().saturating_duration_since(due);
                outcome
                    .latencies_us
                    .push(u32::try_from(latency.as_micros()).unwrap_or(u32::MAX));
            }
            Ok(false) | Err(_) => {
                outcome.errors += 1;
                connection = None;
            }
        }
        due += period;
    }
    outcome
}

/// Sends one request and reads its response; `Ok(true)` for a 200.
fn exchange(
    reader: &mut BufReader<TcpStream>,
    request: &[u8],
    body: &mut Vec<u8>,
) -> std::io::Result<bool> {
    reader.get_mut().write_all(request)?;
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let ok = line.split_whitespace().nth(1) == Some("200");
    let mut length = 0usize;
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        if line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap_or(0);
        }
    }
    body.resize(length, 0);
    reader.read_exact(body)?;
    Ok(ok)
}
