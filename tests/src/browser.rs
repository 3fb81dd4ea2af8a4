//! A real browser for tests and benchmarks: headless Chromium driven over the DevTools
//! protocol (a websocket, JSON messages). Just enough of it to open pages in tabs,
//! evaluate JavaScript, emulate a viewport and a colour scheme, and take screenshots.

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};
use tungstenite::{Message, WebSocket, stream::MaybeTlsStream};

/// A headless Chromium with one tab open, and any others opened since. Killed when
/// dropped.
#[derive(Debug)]
pub struct Browser {
    child: Child,
    socket: WebSocket<MaybeTlsStream<TcpStream>>,
    /// The first tab, which [`Browser::eval`] and the other shorthands act on.
    first: Tab,
    next_id: u64,
    _profile: tempfile::TempDir,
}

/// One tab: a DevTools session attached to its page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tab(String);

/// How long a command may go unanswered (generous: CI machines are shared and slow).
pub const ANSWER_DEADLINE: Duration = Duration::from_secs(30);

/// Where Debian's package installs it; `.ci/run` installs the package.
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// Where tests put the screenshots they take, for a person to look at:
/// `target/screenshots/` beside the test binaries.
pub fn screenshots_dir() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    exe.ancestors()
        .find(|dir| dir.file_name().is_some_and(|name| name == "target"))
        .map_or_else(std::env::temp_dir, Path::to_path_buf)
        .join("screenshots")
}

impl Browser {
    /// Starts Chromium with one blank tab.
    pub fn start() -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let mut child = Command::new(CHROMIUM)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--hide-scrollbars",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start {CHROMIUM} (is the chromium package installed?): {e}")
            });
        // Chromium prints the browser's websocket address on stderr.
        let stderr = child.stderr.take().unwrap();
        let mut lines = BufReader::new(stderr).lines();
        let ws = loop {
            let line = lines
                .next()
                .expect("chromium exited before it listened")
                .unwrap();
            if let Some(at) = line.find("ws://") {
                break line[at..].trim().to_string();
            }
        };
        // Keep draining stderr so Chromium never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        let (socket, _) = tungstenite::connect(ws.as_str()).expect("connect to DevTools");
        // A page that hangs (a navigation waiting for a connection) holds up the answers
        // to commands for it: give up instead of waiting without end.
        if let MaybeTlsStream::Plain(stream) = socket.get_ref() {
            stream
                .set_read_timeout(Some(ANSWER_DEADLINE))
                .expect("set a read timeout");
        }
        let mut browser = Browser {
            child,
            socket,
            first: Tab(String::new()),
            next_id: 0,
            _profile: profile,
        };
        browser.first = browser.new_tab("about:blank");
        browser
    }

    /// Starts Chromium and opens `url` in its tab.
    pub fn open(url: &str) -> Browser {
        let mut browser = Browser::start();
        browser.navigate(url);
        browser
    }

    /// The first tab.
    pub fn first_tab(&self) -> Tab {
        self.first.clone()
    }

    /// Opens `url` in a new tab.
    pub fn new_tab(&mut self, url: &str) -> Tab {
        let target = self.call(None, "Target.createTarget", json!({ "url": url }));
        let target_id = target["targetId"].as_str().unwrap().to_string();
        let attached = self.call(
            None,
            "Target.attachToTarget",
            json!({ "targetId": target_id, "flatten": true }),
        );
        Tab(attached["sessionId"].as_str().unwrap().to_string())
    }

    /// Sends one command and waits for its answer (events in between are skipped).
    fn call(&mut self, tab: Option<&Tab>, method: &str, params: Value) -> Value {
        self.try_call(tab, method, params)
            .unwrap_or_else(|error| panic!("{method} failed: {error}"))
    }

    /// [`call`](Browser::call), with DevTools' error as the `Err`.
    fn try_call(&mut self, tab: Option<&Tab>, method: &str, params: Value) -> Result<Value, Value> {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({ "id": id, "method": method, "params": params });
        if let Some(tab) = tab {
            message["sessionId"] = json!(tab.0);
        }
        self.socket
            .send(Message::text(message.to_string()))
            .expect("send to DevTools");
        loop {
            let reply = self.socket.read().unwrap_or_else(|error| {
                panic!("no answer to {method} within {ANSWER_DEADLINE:?}: {error}")
            });
            let Message::Text(text) = reply else { continue };
            let reply: Value = serde_json::from_str(&text).unwrap();
            if reply["id"] == id {
                return match reply.get("error") {
                    Some(_) => Err(reply),
                    None => Ok(reply["result"].clone()),
                };
            }
        }
    }

    /// Loads `url` in the first tab (returns once the navigation is under way).
    pub fn navigate(&mut self, url: &str) {
        let tab = self.first_tab();
        self.call(Some(&tab), "Page.navigate", json!({ "url": url }));
    }

    /// Runs `source` in every document the first tab loads from now on, before the
    /// document's own scripts.
    pub fn on_new_document(&mut self, source: &str) {
        let tab = self.first_tab();
        self.call(Some(&tab), "Page.enable", json!({}));
        self.call(
            Some(&tab),
            "Page.addScriptToEvaluateOnNewDocument",
            json!({ "source": source }),
        );
    }

    /// Evaluates `expression` in the first tab; `Null` if it threw (e.g. mid-navigation).
    pub fn eval(&mut self, expression: &str) -> Value {
        let tab = self.first_tab();
        self.eval_in(&tab, expression)
    }

    /// Evaluates `expression` in `tab`; a promise is awaited. `Null` if it threw.
    /// A page that navigates meanwhile (a live reload) has no value either: the document
    /// the expression ran in is gone, and a poll asks the next one.
    pub fn eval_in(&mut self, tab: &Tab, expression: &str) -> Value {
        let result = self.try_call(
            Some(tab),
            "Runtime.evaluate",
            json!({ "expression": expression, "returnByValue": true, "awaitPromise": true }),
        );
        let result = match result {
            Ok(result) => result,
            Err(error) if navigated_away(&error) => return Value::Null,
            Err(error) => panic!("Runtime.evaluate failed: {error}"),
        };
        if result.get("exceptionDetails").is_some() {
            return Value::Null;
        }
        result["result"]["value"].clone()
    }

    /// Polls `expression` in the first tab until it evaluates to `true`, or panics after
    /// `deadline`.
    pub fn wait_for(&mut self, expression: &str, deadline: Duration) {
        let tab = self.first_tab();
        self.wait_for_in(&tab, expression, deadline);
    }

    /// Polls `expression` in `tab` until it evaluates to `true`, or panics after
    /// `deadline`.
    pub fn wait_for_in(&mut self, tab: &Tab, expression: &str, deadline: Duration) {
        let start = Instant::now();
        while self.eval_in(tab, expression) != Value::Bool(true) {
            assert!(
                start.elapsed() < deadline,
                "timed out waiting for `{expression}`; page text: {}",
                self.eval_in(tab, "document.body ? document.body.innerText : ''")
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Lays the first tab out as a window of `width`×`height` CSS pixels; `mobile` also
    /// emulates a phone's viewport rules (`<meta name=viewport>` honoured).
    pub fn set_viewport(&mut self, width: u32, height: u32, mobile: bool) {
        let tab = self.first_tab();
        self.call(
            Some(&tab),
            "Emulation.setDeviceMetricsOverride",
            json!({ "width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile }),
        );
    }

    /// Makes the first tab's `prefers-color-scheme` dark or light.
    pub fn set_color_scheme(&mut self, dark: bool) {
        let tab = self.first_tab();
        let value = if dark { "dark" } else { "light" };
        self.call(
            Some(&tab),
            "Emulation.setEmulatedMedia",
            json!({ "features": [{ "name": "prefers-color-scheme", "value": value }] }),
        );
    }

    /// Writes a PNG of what the first tab's window shows to `path`.
    pub fn screenshot(&mut self, path: &Path) {
        let tab = self.first_tab();
        let shot = self.call(
            Some(&tab),
            "Page.captureScreenshot",
            json!({ "format": "png" }),
        );
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().expect("screenshot data"))
            .expect("screenshot is base64");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(path, png).unwrap();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether DevTools refused an evaluation because its document went away meanwhile.
fn navigated_away(error: &Value) -> bool {
    let message = error["error"]["message"].as_str().unwrap_or("");
    [
        "Inspected target navigated or closed",
        "Execution context was destroyed",
        "Cannot find context with specified id",
    ]
    .iter()
    .any(|known| message.contains(known))
}
