//! `sitectl service install|uninstall|status` in a temp home. The service managers are
//! stand-ins on `PATH` (a real `systemctl --user` here would reach the developer's own
//! session); the files they would load are checked with the real tools: the unit with
//! `systemd-analyze verify`, the plist with Python's `plistlib`.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sited_tests::{DEADLINE, Home, bin, process_is_gone, wait_until, write_executable};

/// A home with stand-in service managers and a unit directory of its own.
struct ServiceHome {
    home: Home,
    fake_bin: PathBuf,
    units: PathBuf,
}

impl ServiceHome {
    fn new() -> ServiceHome {
        let home = Home::new();
        let fake_bin = home.path().join("fake-bin");
        fs::create_dir_all(&fake_bin).unwrap();
        let units = home.path().join("units");
        ServiceHome {
            home,
            fake_bin,
            units,
        }
    }

    /// Puts a stand-in for `name` on PATH: a shell script that logs its arguments to
    /// `calls` and then runs `body`.
    fn fake(&self, name: &str, body: &str) {
        let path = self.fake_bin.join(name);
        let log = self.calls_file();
        let script = format!(
            "#!/bin/sh\necho \"{name} $*\" >> '{}'\n{body}\n",
            log.display()
        );
        write_executable(&path, script.as_bytes());
    }

    fn calls_file(&self) -> PathBuf {
        self.home.path().join("calls.log")
    }

    /// Every stand-in call so far, one per line.
    fn calls(&self) -> Vec<String> {
        fs::read_to_string(self.calls_file())
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn sitectl(&self, args: &[&str]) -> Output {
        self.home
            .command("sitectl")
            .env("PATH", format!("{}:/usr/bin:/bin", self.fake_bin.display()))
            .env("SITED_SERVICE_DIR", &self.units)
            .args(args)
            .output()
            .unwrap()
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The sited the units must name: the one next to sitectl, canonical.
fn sited() -> PathBuf {
    bin("sited").canonicalize().unwrap()
}

/// A systemd user manager that is not there (containers, CI).
const SYSTEMCTL_OFFLINE: &str = "echo offline; echo 'Failed to connect to bus' >&2; exit 1";

/// A systemd user manager that is there, keeping unit state in files beside the log.
fn systemctl_online(state: &Path) -> String {
    let state = state.display();
    format!(
        r#"case "$*" in
  "--user is-system-running") echo running ;;
  "--user is-active "*) if [ -e '{state}/active' ]; then echo active; else echo inactive; exit 3; fi ;;
  "--user is-enabled "*) if [ -e '{state}/enabled' ]; then echo enabled; else echo disabled; exit 1; fi ;;
  "--user enable --now "*) touch '{state}/enabled' '{state}/active' ;;
  "--user disable --now "*) rm -f '{state}/enabled' '{state}/active' ;;
esac
exit 0"#
    )
}

/// Runs `systemd-analyze verify` on the units as the user manager would load them.
/// `None` if the tool is missing (.ci/run installs it).
fn systemd_analyze_verify(units: &[PathBuf]) -> Option<Output> {
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!(
            "SKIPPED: systemd-analyze is not installed (Debian package `systemd`; .ci/run \
             installs it), so the unit was not verified"
        );
        return None;
    }
    // User mode resolves %t from XDG_RUNTIME_DIR; give it a private one.
    let runtime = tempfile::tempdir().unwrap();
    fs::set_permissions(runtime.path(), fs::Permissions::from_mode(0o700)).unwrap();
    Some(
        Command::new("systemd-analyze")
            .args(["--user", "verify"])
            .args(units)
            .env("XDG_RUNTIME_DIR", runtime.path())
            .output()
            .unwrap(),
    )
}

#[test]
fn systemd_units_without_a_manager_are_written_verified_idempotent_and_removed() {
    let s = ServiceHome::new();
    s.fake("systemctl", SYSTEMCTL_OFFLINE);
    let home = s.home.path();

    let out = s.sitectl(&["service", "install"]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "autostart is not on: {stderr}");
    let service = s.units.join("sited.service");
    let socket = s.units.join("sited.socket");
    assert!(
        stdout.contains(&format!("wrote {}", service.display())),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("wrote {}", socket.display())),
        "{stdout}"
    );
    assert!(stderr.contains("no systemd user manager"), "{stderr}");
    assert!(
        stderr.contains("systemctl --user enable --now sited.socket sited.service"),
        "the command to finish by hand: {stderr}"
    );
    assert!(
        !s.calls().iter().any(|call| call.contains("enable")),
        "nothing enabled without a manager: {:?}",
        s.calls()
    );

    // The unit runs this machine's sited, under this home, with readiness and restarts.
    let unit = fs::read_to_string(&service).unwrap();
    let lines: Vec<&str> = unit.lines().collect();
    assert!(
        lines.contains(&format!("ExecStart={}", sited().display()).as_str()),
        "{unit}"
    );
    assert!(
        lines.contains(&format!("Environment=\"SITED_HOME={}\"", home.display()).as_str()),
        "{unit}"
    );
    for line in [
        "Type=notify",
        "Restart=on-failure",
        "RestartPreventExitStatus=3",
        "WantedBy=default.target",
    ] {
        assert!(lines.contains(&line), "{line}: {unit}");
    }
    let socket_unit = fs::read_to_string(&socket).unwrap();
    assert!(
        socket_unit
            .lines()
            .any(|l| l == format!("ListenStream={}", s.home.socket().display())),
        "listens where sitectl looks: {socket_unit}"
    );
    if let Some(verify) = systemd_analyze_verify(&[socket.clone(), service.clone()]) {
        let said = format!("{}{}", text(&verify.stdout), text(&verify.stderr));
        assert!(verify.status.success(), "systemd-analyze verify: {said}");
        assert!(!said.contains("sited."), "warnings about our units: {said}");
    }

    // Idempotent: the same files again, said so.
    let out = s.sitectl(&["service", "install"]);
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains(&format!("unchanged {}", service.display())),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("unchanged {}", socket.display())),
        "{stdout}"
    );
    assert_eq!(fs::read_to_string(&service).unwrap(), unit);

    // Status: right binary, autostart off until enabled.
    let out = s.sitectl(&["service", "status"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("the sited next to this sitectl"),
        "{stdout}"
    );
    assert!(stdout.contains("autostart: off"), "{stdout}");
    // What `systemctl enable` would do, done by hand: status sees it.
    let wants = s.units.join("default.target.wants");
    fs::create_dir_all(&wants).unwrap();
    std::os::unix::fs::symlink(&service, wants.join("sited.service")).unwrap();
    let out = s.sitectl(&["service", "status"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("autostart: on"));

    // A unit left pointing at another binary is reported, and install fixes it.
    fs::write(
        &service,
        unit.replace(&sited().display().to_string(), "/old/bin/sited"),
    )
    .unwrap();
    let out = s.sitectl(&["service", "status"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stdout).contains("runs:      /old/bin/sited"));
    assert!(
        stderr.contains("not the sited next to this sitectl"),
        "{stderr}"
    );
    let out = s.sitectl(&["service", "install"]);
    assert!(text(&out.stdout).contains(&format!("updated {}", service.display())));
    assert_eq!(s.sitectl(&["service", "status"]).status.code(), Some(0));

    // Uninstall removes the units and the enable link; twice is fine.
    let out = s.sitectl(&["service", "uninstall"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(!service.exists() && !socket.exists());
    assert!(!wants.join("sited.service").is_symlink());
    let out = s.sitectl(&["service", "uninstall"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).contains("nothing to do"));
    let out = s.sitectl(&["service", "status"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stdout).contains("not installed"));
}

#[test]
fn systemd_install_with_a_manager_enables_it_and_hands_over_a_running_daemon() {
    let mut s = ServiceHome::new();
    let state = s.home.path().join("systemd-state");
    fs::create_dir_all(&state).unwrap();
    s.fake("systemctl", &systemctl_online(&state));
    // A daemon sitectl started on its own holds the socket and lock: install stops it,
    // so that the one systemd starts can take over.
    let pid = s.home.start_foreground(&[]);

    let out = s.sitectl(&["service", "install"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        stdout.contains(&format!("running outside systemd (pid {pid})")),
        "{stdout}"
    );
    assert_eq!(s.home.foreground_child().wait().unwrap().code(), Some(0));
    assert!(wait_until(DEADLINE, || process_is_gone(pid)));
    assert!(stdout.contains("autostart is on"), "{stdout}");
    let calls = s.calls();
    let reload = calls
        .iter()
        .position(|c| c == "systemctl --user daemon-reload")
        .expect("daemon-reload");
    let enable = calls
        .iter()
        .position(|c| c == "systemctl --user enable --now sited.socket sited.service")
        .expect("enable --now");
    assert!(reload < enable, "{calls:?}");

    let out = s.sitectl(&["service", "status"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("autostart: on (enabled); the service is active"),
        "{}",
        text(&out.stdout)
    );

    // Unchanged units and an active service: nothing is restarted.
    let before = s.calls().len();
    assert_eq!(s.sitectl(&["service", "install"]).status.code(), Some(0));
    assert!(!s.calls()[before..].iter().any(|c| c.contains("restart")));
    // A changed unit with the service active: restarted to run it.
    let service = s.units.join("sited.service");
    let unit = fs::read_to_string(&service).unwrap();
    fs::write(&service, unit.replace("RestartSec=2", "RestartSec=5")).unwrap();
    let before = s.calls().len();
    assert_eq!(s.sitectl(&["service", "install"]).status.code(), Some(0));
    assert!(
        s.calls()[before..].contains(&"systemctl --user restart sited.service".to_string()),
        "{:?}",
        s.calls()
    );

    let before = s.calls().len();
    let out = s.sitectl(&["service", "uninstall"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        s.calls()[before..].last().map(String::as_str),
        Some("systemctl --user daemon-reload"),
    );
    assert!(
        s.calls()[before..]
            .contains(&"systemctl --user disable --now sited.socket sited.service".to_string())
    );
    assert!(!service.exists());
}

#[test]
fn launchd_agent_parses_with_the_required_keys() {
    let s = ServiceHome::new();
    // No launchd session here (a real launchctl on a Mac would load the test's agent).
    s.fake(
        "launchctl",
        "echo 'Could not find domain for port identifier' >&2; exit 113",
    );
    let home = s.home.path();
    let plist = s.units.join("dev.sited.sited.plist");

    let out = s.sitectl(&["service", "install", "--manager", "launchd"]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "not loaded: {stderr}");
    assert!(
        stdout.contains(&format!("wrote {}", plist.display())),
        "{stdout}"
    );
    assert!(
        stderr.contains("launchctl bootstrap gui/") && stderr.contains("dev.sited.sited.plist"),
        "the command to finish by hand: {stderr}"
    );
    // launchd opens the log but does not create its directory.
    assert!(s.home.log().parent().unwrap().is_dir());

    let parsed = Command::new("python3")
        .args([
            "-c",
            "import json, plistlib, sys; print(json.dumps(plistlib.load(open(sys.argv[1], 'rb'))))",
        ])
        .arg(&plist)
        .output()
        .expect("python3 (Debian package python3; .ci/run installs it)");
    assert!(
        parsed.status.success(),
        "plistlib: {}",
        text(&parsed.stderr)
    );
    let agent: serde_json::Value = serde_json::from_slice(&parsed.stdout).unwrap();
    assert_eq!(agent["Label"], "dev.sited.sited");
    assert_eq!(
        agent["ProgramArguments"],
        serde_json::json!([sited(), "--exit-zero-if-running"])
    );
    assert_eq!(agent["RunAtLoad"], true);
    assert_eq!(
        agent["KeepAlive"],
        serde_json::json!({"SuccessfulExit": false})
    );
    assert!(agent["ThrottleInterval"].as_u64().is_some_and(|s| s >= 5));
    assert_eq!(agent["StandardErrorPath"], serde_json::json!(s.home.log()));
    assert_eq!(agent["StandardOutPath"], serde_json::json!(s.home.log()));
    assert_eq!(
        agent["EnvironmentVariables"]["SITED_HOME"],
        serde_json::json!(home)
    );

    let out = s.sitectl(&["service", "install", "--manager", "launchd"]);
    assert!(text(&out.stdout).contains(&format!("unchanged {}", plist.display())));
    let out = s.sitectl(&["service", "status", "--manager", "launchd"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("the sited next to this sitectl"),
        "{stdout}"
    );
    assert!(stdout.contains("autostart: on (at login)"), "{stdout}");

    let out = s.sitectl(&["service", "uninstall", "--manager", "launchd"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(!plist.exists());
    let out = s.sitectl(&["service", "status", "--manager", "launchd"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stdout).contains("not installed"));
}
