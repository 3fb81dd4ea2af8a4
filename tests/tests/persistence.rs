//! Sites outlive the daemon: S5 (SIGKILL, then the next call restores every detached
//! site on its port) and S15 (a corrupt state file is set aside, never trusted, never
//! silently dropped).

use std::fs;

use sited_tests::{DEADLINE, Home, get, kill, port_is_free, process_is_gone, wait_until};

fn serving(home: &Home, port: u16) -> bool {
    home.ps()
        .iter()
        .any(|s| s["port"] == port && s["state"] == "serving")
}

#[test]
fn s05_sigkill_then_the_next_call_restores_every_detached_site() {
    let home = Home::new();
    let a = home.site("a", &[("index.md", "# Site A\n")]);
    let b = home.site("b", &[("index.md", "# Site B\n")]);
    let port_a = home.up(&a, &["--port", "0"]);
    let port_b = home.up(&b, &["--port", "0", "--drafts"]);
    let old = home.daemon_pid().unwrap();

    kill(old, "KILL");
    assert!(wait_until(DEADLINE, || process_is_gone(old)));
    assert!(
        wait_until(DEADLINE, || port_is_free(port_a) && port_is_free(port_b)),
        "the OS frees the ports"
    );
    assert!(
        home.socket().exists(),
        "a killed daemon leaves its socket behind"
    );

    // Any call starts a new daemon, which replaces the stale socket and restores.
    let table = home.sitectl_ok(&["ps"]);
    let new = home.daemon_pid().unwrap();
    assert_ne!(new, old);
    assert!(
        table.contains(&port_a.to_string()) && table.contains(&port_b.to_string()),
        "{table}"
    );
    assert!(wait_until(DEADLINE, || serving(&home, port_a)
        && serving(&home, port_b)));
    assert!(get(port_a, "/").unwrap().text().contains("Site A"));
    assert!(get(port_b, "/").unwrap().text().contains("Site B"));
    let sites = home.ps();
    let b_row = sites.iter().find(|s| s["port"] == port_b).unwrap();
    assert_eq!(b_row["drafts"], true, "options come back too");
    assert_eq!(sites.len(), 2);

    // What is taken down is forgotten: the next restart does not bring it back.
    home.sitectl_ok(&["down", &port_b.to_string()]);
    let pid = home.daemon_pid().unwrap();
    kill(pid, "KILL");
    assert!(wait_until(DEADLINE, || process_is_gone(pid)));
    home.sitectl_ok(&["daemon", "start"]);
    let sites = home.ps();
    assert_eq!(sites.len(), 1, "{sites:?}");
    assert_eq!(sites[0]["port"], port_a);
}

#[test]
fn s05_a_remembered_site_that_cannot_come_back_is_listed_not_lost() {
    let home = Home::new();
    let a = home.site("a", &[("index.md", "# A\n")]);
    let port = home.up(&a, &["--port", "0"]);
    home.sitectl_ok(&["daemon", "stop"]);
    let moved = a.with_file_name("elsewhere");
    fs::rename(&a, &moved).unwrap();

    let sites = home.ps();
    assert_eq!(sites.len(), 1);
    assert_eq!(sites[0]["state"], "failed");
    assert!(
        sites[0]["reason"]
            .as_str()
            .unwrap()
            .contains("could not be restored"),
        "{sites:?}"
    );
    // Still remembered for the next start...
    home.sitectl_ok(&["daemon", "stop"]);
    fs::rename(&moved, &a).unwrap();
    assert!(wait_until(DEADLINE, || serving(&home, port)));
    assert!(get(port, "/").unwrap().text().contains("A"));
}

#[test]
fn s15_corrupt_state_file_is_moved_aside_and_the_backup_used() {
    let home = Home::new();
    let a = home.site("a", &[("index.md", "# Kept site\n")]);
    let b = home.site("b", &[("index.md", "# Newer site\n")]);
    let port_a = home.up(&a, &["--port", "0"]);
    home.up(&b, &["--port", "0"]);
    home.sitectl_ok(&["daemon", "stop"]);
    let state = home.path().join("state/state.json");
    let backup = home.path().join("state/state.json.bak");
    assert!(backup.exists(), "the previous list is kept as a backup");

    // Truncated mid-write (by a crash of something else, a full disk, ...).
    let text = fs::read_to_string(&state).unwrap();
    fs::write(&state, &text[..text.len() / 3]).unwrap();

    let sites = home.ps();
    assert!(wait_until(DEADLINE, || serving(&home, port_a)), "{sites:?}");
    let aside: Vec<String> = fs::read_dir(home.path().join("state"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.starts_with("state.json.corrupt-"))
        .collect();
    assert_eq!(aside.len(), 1, "the bad file is kept for inspection");
    assert!(backup.exists(), "the backup is kept");
    let log = home.sitectl_ok(&["logs", "--daemon", "-n", "100"]);
    assert!(
        log.contains("could not be read") && log.contains("restored 1 site(s)"),
        "{log}"
    );
}

#[test]
fn s15_garbage_state_file_without_backup_still_starts_and_serves() {
    let home = Home::new();
    fs::create_dir_all(home.path().join("state")).unwrap();
    fs::write(
        home.path().join("state/state.json"),
        b"\x00\xffnot json at all",
    )
    .unwrap();
    let root = home.site("s", &[("index.md", "# Fresh\n")]);
    let port = home.up(&root, &["--port", "0"]);
    assert_eq!(get(port, "/").unwrap().status, 200);
    let log = home.sitectl_ok(&["logs", "--daemon", "-n", "100"]);
    assert!(log.contains("no usable backup"), "{log}");
    // The new list replaced the garbage, and is valid.
    let saved: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(home.path().join("state/state.json")).unwrap())
            .unwrap();
    assert_eq!(saved["sites"][0]["port"], port);
}

/// S26 (issue 12.9): the state file cannot be written (here: something that is not ours
/// stands where it goes). The change is made, the client is warned that it is not
/// remembered, `ps` shows it, nothing is left behind, and it all clears once a write
/// succeeds again.
#[test]
fn s26_a_state_file_that_cannot_be_written_is_said_and_leaves_nothing_behind() {
    let home = Home::new();
    let a = home.site("a", &[("index.md", "# A\n")]);
    let b = home.site("b", &[("index.md", "# B\n")]);
    let c = home.site("c", &[("index.md", "# C\n")]);
    home.up(&a, &["--port", "0"]);
    let state = home.path().join("state/state.json");
    assert!(state.is_file());
    std::fs::remove_file(&state).unwrap();
    std::fs::create_dir(&state).unwrap();
    std::fs::write(state.join("not-sited's"), "keep me").unwrap();

    let output = home.sitectl(&["up", b.to_str().unwrap(), "--port", "0"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("warning: not remembered: cannot write"),
        "{stderr}"
    );
    let port_b = sited_tests::port_of(&String::from_utf8_lossy(&output.stdout)).unwrap();
    for site in home.ps() {
        let warnings = site["warnings"].to_string();
        assert!(warnings.contains("not remembered"), "{site}");
    }
    let output = home.sitectl(&["down", &port_b.to_string()]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("warning: not remembered"), "{stderr}");
    let left: Vec<String> = std::fs::read_dir(home.path().join("state"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains(".tmp"))
        .collect();
    assert!(left.is_empty(), "temporary files left: {left:?}");
    assert_eq!(
        std::fs::read_to_string(state.join("not-sited's")).unwrap(),
        "keep me"
    );

    // Once the way is clear, the next change is written and the warning goes.
    std::fs::remove_dir_all(&state).unwrap();
    let out = home.sitectl(&["up", c.to_str().unwrap(), "--port", "0"]);
    assert!(!String::from_utf8_lossy(&out.stderr).contains("not remembered"));
    assert!(state.is_file());
    for site in home.ps() {
        assert!(
            !site["warnings"].to_string().contains("not remembered"),
            "{site}"
        );
    }
}
