//! S22: file names that are not valid UTF-8, or hold control characters, in a served
//! site. The file is reported (escaped) and skipped or served; every command keeps
//! working for every site, also after a daemon restart.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

use sited_tests::{Home, get};

#[test]
fn s22_odd_file_names_never_break_a_command() {
    let home = Home::new();
    let root = home.site("odd", &[("index.md", "# Odd\n")]);
    let other = home.site("other", &[("index.md", "# Other\n")]);
    std::fs::write(root.join(OsStr::from_bytes(b"bad\xff.md")), "# Bad\n").unwrap();
    // Broken front matter: the file's name is shown in the error, everywhere.
    std::fs::write(
        root.join("ring\x07\x1b[31m.md"),
        "+++\ntitle = \n+++\n# Ring\n",
    )
    .unwrap();
    std::fs::create_dir_all(root.join("static")).unwrap();
    std::fs::write(root.join(OsStr::from_bytes(b"static/img\xfe.txt")), "x").unwrap();
    let port = home.up(&root, &["--port", "0"]);
    let other_port = home.up(&other, &["--port", "0"]);
    assert_eq!(get(port, "/").unwrap().status, 200);

    let check_all = |home: &Home| {
        let table = home.sitectl_ok(&["ps"]);
        assert!(
            table.contains("ring"),
            "the broken page is reported: {table:?}"
        );
        assert!(
            !table.contains('\x1b') && !table.contains('\x07'),
            "{table:?}"
        );
        let sites = home.ps();
        assert_eq!(sites.len(), 2, "{sites:?}");
        let logs = home.sitectl_ok(&["logs", &port.to_string(), "-n", "200"]);
        assert!(!logs.contains('\x1b') && !logs.contains('\x07'), "{logs:?}");
        home.sitectl_ok(&["logs", "--daemon"]);
        home.sitectl_ok(&["daemon", "status"]);
        home.sitectl_ok(&["rebuild", &port.to_string()]);
        assert_eq!(get(other_port, "/").unwrap().status, 200);
    };
    check_all(&home);
    // The site is remembered: the daemon that comes back must cope too.
    home.sitectl_ok(&["daemon", "restart"]);
    home.sitectl_ok(&["up", root.to_str().unwrap()]);
    check_all(&home);
    home.sitectl_ok(&["down", &port.to_string()]);
    home.sitectl_ok(&["down", "--all"]);
    let log = home.log_text();
    assert!(
        !log.contains('\x07') && !log.contains("\x1b[31m"),
        "{log:?}"
    );
}

/// S22 for `sited build`: a name with control characters is shown escaped.
#[test]
fn s22_sited_build_shows_odd_names_escaped() {
    let home = Home::new();
    let root = home.site("odd", &[("index.md", "# Odd\n")]);
    std::fs::write(
        root.join("ring\x07\x1b[31m.md"),
        "+++\ntitle = \n+++\n# Ring\n",
    )
    .unwrap();
    let output = home
        .command("sited")
        .args(["build", root.to_str().unwrap(), "--out"])
        .arg(home.path().join("out"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("ring"), "{stderr:?}");
    assert!(
        !stderr.contains('\x1b') && !stderr.contains('\x07'),
        "{stderr:?}"
    );
}

/// S27 (issue 12.10): the daemon's own state and runtime folders inside a served site are
/// neither served nor watched: its log and state are 404, and the log's growth with each
/// build does not rebuild the site (a loop otherwise).
#[test]
fn s27_the_daemons_own_folders_inside_a_site_are_left_out() {
    let home = Home::new();
    // SITED_HOME is the site: state/ and run/ are inside it.
    let root = home.path().to_path_buf();
    std::fs::write(root.join("index.md"), "# Home of sited\n").unwrap();
    let port = home.up(&root, &["--port", "0"]);
    assert!(home.log().exists(), "the daemon logs inside the site");
    for path in ["/state/sited.log", "/state/state.json", "/run/sited.lock"] {
        assert_eq!(get(port, path).unwrap().status, 404, "{path}");
    }
    // One edit, one rebuild: wait for it, then count the builds the site made.
    let mut events = sited_tests::Events::connect(port).unwrap();
    let first = events.next_state();
    std::fs::write(root.join("index.md"), "# Home of sited, edited\n").unwrap();
    events.until(|state| state["generation"] != first["generation"]);
    assert!(get(port, "/").unwrap().text().contains("edited"));
    let logs = home.sitectl_ok(&["logs", &port.to_string(), "-n", "1000"]);
    let builds = logs.lines().filter(|line| line.contains("built")).count();
    assert_eq!(
        builds, 2,
        "the first build and the edit's, nothing more:\n{logs}"
    );
}
