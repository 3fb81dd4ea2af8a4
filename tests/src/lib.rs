//! Harness for end-to-end tests: runs the real `sited` and `sitectl` binaries in a fresh
//! temp home per test (`SITED_HOME`), with the inherited environment scrubbed, and
//! offers the waits and probes the scenarios need. Nothing here sleeps a fixed time
//! waiting for readiness: conditions are polled against a deadline.

pub mod browser;

use std::fs;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime};

/// Generous: CI machines are shared and slow. Tests that measure speed do it in
/// `bench/`, not here.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the workspace")
        .to_path_buf()
}

/// A directory of the shared test corpora (`corpus("tldr/content")`), if this checkout
/// has them: they live beside the workspace, in `../shared/corpus` (override with
/// `SITED_CORPUS`), and a bare clone has none. The one place tests find them.
pub fn corpus(relative: &str) -> Option<PathBuf> {
    let base = match std::env::var_os("SITED_CORPUS") {
        Some(dir) => PathBuf::from(dir),
        None => workspace().parent()?.join("shared/corpus"),
    };
    let dir = base.join(relative);
    dir.is_dir().then_some(dir)
}

/// Path of a binary of this workspace, from the target dir this test runs from. Panics
/// if it is missing or older than the sources, rather than testing a stale copy (and
/// never one found on `PATH`).
pub fn bin(name: &str) -> PathBuf {
    let path = bin_dir().join(name);
    let built = fs::metadata(&path)
        .and_then(|m| m.modified())
        .unwrap_or_else(|_| {
            panic!(
                "{} is missing: run the tests with `cargo test --workspace`, which builds it",
                path.display()
            )
        });
    let packages: &[&str] = match name {
        "sited" => &["daemon/src", "builder/src"],
        "sitectl" => &["ctl/src"],
        other => panic!("no binary {other} in this workspace"),
    };
    let newest = ["proto/src"]
        .iter()
        .chain(packages)
        .map(|dir| newest_mtime(&workspace().join(dir)))
        .max()
        .unwrap_or(SystemTime::UNIX_EPOCH);
    assert!(
        built >= newest,
        "{} is older than the sources: run `cargo test --workspace` so it is rebuilt",
        path.display()
    );
    path
}

/// `target/<profile>`, where cargo puts the binaries this test was built with.
fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    // target/<profile>/deps/<test> → target/<profile>; a harness binary lives in
    // target/<profile> itself.
    let dir = exe.parent().expect("an executable lives in a directory");
    if dir.ends_with("deps") {
        dir.parent().expect("deps/ has a parent").to_path_buf()
    } else {
        dir.to_path_buf()
    }
}

fn newest_mtime(dir: &Path) -> SystemTime {
    let mut newest = SystemTime::UNIX_EPOCH;
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            let time = if path.is_dir() {
                newest_mtime(&path)
            } else {
                entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .unwrap_or(SystemTime::UNIX_EPOCH)
            };
            newest = newest.max(time);
        }
    }
    newest
}

/// Polls `condition` until it holds or the deadline passes; returns whether it held.
pub fn wait_until(deadline: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if condition() {
            return true;
        }
        if start.elapsed() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Writes an executable file at `path` holding `contents`, from another process.
///
/// Tests run on many threads and each spawns children. Had this process opened the file
/// for writing, a child forked by another thread in that moment would inherit the open
/// descriptor until its own exec, and running the file would fail with "Text file busy"
/// (ETXTBSY). `install` writes it in a process of its own, so no descriptor of ours is
/// ever open on it for writing.
pub fn write_executable(path: &Path, contents: &[u8]) {
    let mut staged = tempfile::NamedTempFile::new().unwrap();
    staged.write_all(contents).unwrap();
    copy_executable(staged.path(), path);
}

/// Copies the executable `from` to `to` (mode 755), from another process; see
/// [`write_executable`] for why.
pub fn copy_executable(from: &Path, to: &Path) {
    let status = Command::new("install")
        .arg("-m")
        .arg("755")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(
        status.success(),
        "install {} {}: {status}",
        from.display(),
        to.display()
    );
}

/// Copies the directory tree `from` to `to`.
pub fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// True if nothing listens on `127.0.0.1:port` (binding it succeeds).
pub fn port_is_free(port: u16) -> bool {
    TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok()
}

/// True if `pid` has exited: no such process, or a zombie waiting to be reaped (PID 1
/// here reaps lazily). A killed multi-threaded process can show its main thread as a
/// zombie while its other threads still run and hold its sockets, so every thread must
/// be a zombie (or gone).
pub fn process_is_gone(pid: u32) -> bool {
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return true;
    };
    tasks.flatten().all(|task| {
        fs::read_to_string(task.path().join("stat")).map_or(true, |stat| {
            // `pid (comm) S ...`: the state follows the last `)`.
            stat.rsplit_once(')')
                .and_then(|(_, rest)| rest.trim_start().chars().next())
                .is_none_or(|state| matches!(state, 'Z' | 'X'))
        })
    })
}

/// A parsed HTTP response.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends raw request bytes to `127.0.0.1:port` and reads the whole response (the
/// request should say `Connection: close`). Raw, so no client library normalizes paths.
pub fn http_raw(port: u16, request: &[u8]) -> std::io::Result<HttpResponse> {
    http_raw_at(IpAddr::V4(Ipv4Addr::LOCALHOST), port, request)
}

/// [`http_raw`] to another address of this machine (`127.0.0.2`, `::1`).
pub fn http_raw_at(ip: IpAddr, port: u16, request: &[u8]) -> std::io::Result<HttpResponse> {
    let mut stream = TcpStream::connect((ip, port))?;
    stream.set_read_timeout(Some(DEADLINE))?;
    stream.write_all(request)?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no end of headers"))?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other("bad status line"))?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    Ok(HttpResponse {
        status,
        headers,
        body: raw[split + 4..].to_vec(),
    })
}

/// `GET path` with a local Host.
pub fn get(port: u16, path: &str) -> std::io::Result<HttpResponse> {
    http_raw(
        port,
        format!("GET {path} HTTP/1.1\r\nHost: localhost:{port}\r\nConnection: close\r\n\r\n")
            .as_bytes(),
    )
}

/// A live-reload client: the site's Server-Sent Events stream, read event by event.
#[derive(Debug)]
pub struct Events {
    reader: std::io::BufReader<TcpStream>,
}

impl Events {
    /// Subscribes to the site on `port` and returns once the response head is read.
    pub fn connect(port: u16) -> std::io::Result<Events> {
        let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port))?;
        stream.set_read_timeout(Some(DEADLINE))?;
        write!(
            stream,
            "GET /__sited/events HTTP/1.1\r\nHost: localhost:{port}\r\nAccept: text/event-stream\r\n\r\n"
        )?;
        let mut reader = std::io::BufReader::new(stream);
        let mut line = String::new();
        loop {
            line.clear();
            std::io::BufRead::read_line(&mut reader, &mut line)?;
            if line == "\r\n" || line.is_empty() {
                break;
            }
        }
        Ok(Events { reader })
    }

    /// Waits for events without the test deadline (for harnesses that idle).
    pub fn wait_forever(&mut self) {
        self.reader
            .get_ref()
            .set_read_timeout(None)
            .expect("clear the read timeout");
    }

    /// The next state the server sends (the JSON of one `data:` line). Chunked
    /// transfer framing lines are skipped.
    pub fn next_state(&mut self) -> serde_json::Value {
        self.try_next_state().expect("event stream closed")
    }

    /// Like [`Events::next_state`], but `None` once the server closed the stream.
    pub fn try_next_state(&mut self) -> Option<serde_json::Value> {
        let mut line = String::new();
        loop {
            line.clear();
            let read = std::io::BufRead::read_line(&mut self.reader, &mut line)
                .expect("read the event stream (timed out?)");
            if read == 0 {
                return None;
            }
            if let Some(json) = line.trim_end().strip_prefix("data: ") {
                return Some(serde_json::from_str(json).expect("event JSON"));
            }
        }
    }

    /// Skips events until one satisfies `condition`, and returns it.
    pub fn until(
        &mut self,
        mut condition: impl FnMut(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        loop {
            let event = self.next_state();
            if condition(&event) {
                return event;
            }
        }
    }
}

/// A fresh `SITED_HOME` with helpers to run the binaries in it. Dropping it kills any
/// daemon still running there, so a failing test leaves nothing behind.
#[derive(Debug)]
pub struct Home {
    dir: tempfile::TempDir,
    foreground: Vec<Child>,
    /// Extra environment for every command (and so for a daemon they start).
    env: Vec<(String, String)>,
}

impl Default for Home {
    fn default() -> Self {
        Self::new()
    }
}

impl Home {
    pub fn new() -> Home {
        Home {
            dir: tempfile::Builder::new()
                .prefix("sited-e2e-")
                .tempdir()
                .expect("temp home"),
            foreground: Vec::new(),
            env: Vec::new(),
        }
    }

    /// A home whose commands (and the daemon they start) see `key=value` too.
    pub fn with_env(key: &str, value: &str) -> Home {
        let mut home = Home::new();
        home.env.push((key.to_string(), value.to_string()));
        home
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn socket(&self) -> PathBuf {
        self.path().join("run/sited.sock")
    }

    pub fn lock(&self) -> PathBuf {
        self.path().join("run/sited.lock")
    }

    pub fn log(&self) -> PathBuf {
        self.path().join("state/sited.log")
    }

    /// A command for one of our binaries with a clean environment.
    pub fn command(&self, binary: &str) -> Command {
        self.command_for(&bin(binary))
    }

    /// A command for any program with the same clean environment as our binaries get.
    pub fn command_for(&self, program: &Path) -> Command {
        let mut command = Command::new(program);
        command
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", self.path())
            .env("SITED_HOME", self.path())
            .env("SITED_LOG", "info")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null());
        command
    }

    pub fn sitectl(&self, args: &[&str]) -> Output {
        self.command("sitectl")
            .args(args)
            .output()
            .expect("run sitectl")
    }

    /// Runs sitectl and asserts success; returns stdout.
    pub fn sitectl_ok(&self, args: &[&str]) -> String {
        let output = self.sitectl(args);
        assert!(
            output.status.success(),
            "sitectl {args:?} failed ({}):\nstdout: {}\nstderr: {}\nlog: {}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
            self.log_text()
        );
        String::from_utf8(output.stdout).expect("utf-8 output")
    }

    /// `sitectl up PATH [args]`, returning the port it serves on.
    pub fn up(&self, root: &Path, extra: &[&str]) -> u16 {
        let root = root.to_str().expect("utf-8 path");
        let mut args = vec!["up", root];
        args.extend_from_slice(extra);
        let out = self.sitectl_ok(&args);
        port_of(&out).unwrap_or_else(|| panic!("no URL in `sitectl up` output: {out}"))
    }

    /// `sitectl ps --json`, parsed.
    pub fn ps(&self) -> Vec<serde_json::Value> {
        let out = self.sitectl_ok(&["ps", "--json"]);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("ps --json: {e}\n{out}"))
    }

    /// Starts `sited` in the foreground (as systemd would), stderr to a file, and waits
    /// until it answers.
    pub fn start_foreground(&mut self, args: &[&str]) -> u32 {
        let mut command = self.command("sited");
        command.args(args);
        let pid = self.spawn_foreground(command);
        assert!(
            wait_until(DEADLINE, || self.answers()),
            "sited did not come up: {}",
            self.foreground_log()
        );
        pid
    }

    /// Spawns `command` (a `sited`, or a wrapper that execs one) as a foreground daemon,
    /// stderr to `foreground.log`, without waiting for it to answer. The child is killed
    /// when the home is dropped.
    pub fn spawn_foreground(&mut self, mut command: Command) -> u32 {
        fs::create_dir_all(self.path().join("state")).unwrap();
        let stderr = fs::File::create(self.path().join("foreground.log")).unwrap();
        let child = command
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("start sited");
        let pid = child.id();
        self.foreground.push(child);
        pid
    }

    /// The foreground daemon as a child, to wait on it.
    pub fn foreground_child(&mut self) -> &mut Child {
        self.foreground.last_mut().expect("a foreground daemon")
    }

    pub fn foreground_log(&self) -> String {
        fs::read_to_string(self.path().join("foreground.log")).unwrap_or_default()
    }

    pub fn log_text(&self) -> String {
        fs::read_to_string(self.log()).unwrap_or_default()
    }

    /// True if a daemon answers `sitectl daemon status`.
    pub fn answers(&self) -> bool {
        self.sitectl(&["daemon", "status"]).status.success()
    }

    /// Pid of the daemon holding this home's lock, if any.
    pub fn daemon_pid(&self) -> Option<u32> {
        fs::read_to_string(self.lock()).ok()?.trim().parse().ok()
    }

    /// Writes a small site with the given files (relative path → contents).
    pub fn site(&self, name: &str, files: &[(&str, &str)]) -> PathBuf {
        let root = self.path().join("sites").join(name);
        for (rel, contents) in files {
            let path = root.join(rel);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, contents).unwrap();
        }
        root
    }
}

impl Drop for Home {
    fn drop(&mut self) {
        for child in &mut self.foreground {
            let _ = child.kill();
            let _ = child.wait();
        }
        // A detached daemon started by `sitectl`: kill it if it is really ours.
        // (A test that fakes a daemon writes its own pid there: it is not killed.)
        if let Some(pid) = self.daemon_pid().filter(|&pid| pid != std::process::id()) {
            let exe = fs::read_link(format!("/proc/{pid}/exe")).ok();
            // Not `bin()`: it may panic, and a panic here would leak the daemon.
            if exe.is_some_and(|exe| exe.starts_with(bin_dir())) {
                let _ = Command::new("kill")
                    .arg("-KILL")
                    .arg(pid.to_string())
                    .status();
            }
        }
    }
}

impl Home {
    /// Runs `sitectl ARGS` (or any of our binaries) under a pseudo-terminal, as a person
    /// at a terminal would, with `TERM` set, and returns what it wrote there (stdout and
    /// stderr together, `\r\n` turned back into `\n`) and its exit code. `script` (from
    /// util-linux) provides the terminal.
    pub fn run_in_terminal(
        &self,
        binary: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> (String, i32) {
        let quoted: Vec<String> = std::iter::once(bin(binary).display().to_string())
            .chain(args.iter().map(|a| a.to_string()))
            .map(|arg| format!("'{}'", arg.replace('\'', r"'\''")))
            .collect();
        let output = self
            .command_for(Path::new("/usr/bin/script"))
            .env("TERM", "xterm-256color")
            .env("SHELL", "/bin/sh")
            .envs(env.iter().copied())
            .args([
                "--quiet",
                "--return",
                "--command",
                &quoted.join(" "),
                "/dev/null",
            ])
            .output()
            .expect("run script (util-linux)");
        let text = String::from_utf8_lossy(&output.stdout).replace("\r\n", "\n");
        (text, output.status.code().unwrap_or(-1))
    }

    /// `text` with what differs from run to run replaced by stable placeholders, for
    /// snapshots: this home's path (`[HOME]`), the given ports (`PORT1`, `PORT2`, …, as
    /// wide as the number), pids, times of day, build times and uptimes, and this
    /// workspace's version. For tables, see [`Home::redact_table`].
    pub fn redact(&self, text: &str, ports: &[u16]) -> String {
        let mut text = text.to_string();
        for home in [
            self.path().to_path_buf(),
            self.path().canonicalize().unwrap(),
        ] {
            text = text.replace(home.to_str().unwrap(), "[HOME]");
        }
        for (i, port) in ports.iter().enumerate() {
            let digits = port.to_string();
            let name = format!("PORT{}", i + 1);
            let label = if name.len() == digits.len() {
                name
            } else {
                format!("{:_<width$}", format!("P{}", i + 1), width = digits.len())
            };
            let re = regex::Regex::new(&format!(r"\b{digits}\b")).unwrap();
            text = re.replace_all(&text, label.as_str()).into_owned();
        }
        text = text.replace(env!("CARGO_PKG_VERSION"), "[VERSION]");
        let rules = [
            (r"\bpid \d+", "pid [PID]"),
            (r"`kill \d+`", "`kill [PID]`"),
            (r"\b\d{2}:\d{2}:\d{2}\b", "[TIME]"),
            (r"\b\d+ ms\b", "[MS]"),
            // Uptimes: 42s, 3m05s, 2h07m, 3d04h.
            (r"\b\d+(s|m\d\ds|h\d\dm|d\d\dh)\b", "[UP]"),
        ];
        for (pattern, label) in rules {
            let re = regex::Regex::new(pattern).unwrap();
            text = re.replace_all(&text, label).into_owned();
        }
        text
    }
}

impl Home {
    /// [`Home::redact`] for a table such as `sitectl ps` prints: each cell is redacted on
    /// its own and the columns are aligned again, so a snapshot does not change with the
    /// width of a build time. Indented lines (the errors under a row) are kept whole.
    pub fn redact_table(&self, table: &str, ports: &[u16]) -> String {
        let mut lines = table.lines();
        let Some(header) = lines.next() else {
            return String::new();
        };
        let starts = column_starts(header);
        let split = |line: &str| -> Vec<String> {
            let mut cells = Vec::new();
            for (i, &start) in starts.iter().enumerate() {
                let end = starts
                    .get(i + 1)
                    .copied()
                    .unwrap_or(line.len())
                    .min(line.len());
                let cell = line.get(start.min(end)..end).unwrap_or_default();
                cells.push(self.redact(cell.trim_end(), ports).trim_end().to_string());
            }
            cells
        };
        let rows: Vec<Result<Vec<String>, String>> = std::iter::once(header)
            .chain(lines)
            .map(|line| {
                if line.starts_with(' ') {
                    Err(self.redact(line, ports))
                } else {
                    Ok(split(line))
                }
            })
            .collect();
        let mut widths = vec![0; starts.len()];
        for cells in rows.iter().flatten() {
            for (width, cell) in widths.iter_mut().zip(cells) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        for row in rows {
            match row {
                Err(line) => out.push_str(&line),
                Ok(cells) => {
                    let last = cells.len() - 1;
                    for (i, cell) in cells.iter().enumerate() {
                        out.push_str(cell);
                        if i < last {
                            out.push_str(&" ".repeat(widths[i] - cell.chars().count() + 2));
                        }
                    }
                }
            }
            out.push('\n');
        }
        out
    }
}

/// Where each column of a table starts: 0, then every title that follows two spaces.
pub fn column_starts(header: &str) -> Vec<usize> {
    let bytes = header.as_bytes();
    let mut starts = vec![0];
    for i in 2..bytes.len() {
        if bytes[i] != b' ' && bytes[i - 1] == b' ' && bytes[i - 2] == b' ' {
            starts.push(i);
        }
    }
    starts
}

/// The port of the first `http://127.0.0.1:PORT/` in `text`.
pub fn port_of(text: &str) -> Option<u16> {
    let start = text.find("http://127.0.0.1:")? + "http://127.0.0.1:".len();
    let digits: String = text[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// Sends `signal` (e.g. "TERM") to `pid`.
pub fn kill(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{signal} {pid} failed");
}

/// The example blog in the repository.
pub fn example_blog() -> PathBuf {
    workspace().join("examples/blog")
}
