//! Client habits (issue 15.6): `logs` and `down` act on the site of the current folder,
//! `stop`, `ls` and `list` are aliases, `ps` shows the address a site really listens on
//! and starts no daemon to say there are no sites.

use std::path::Path;

use sited_tests::{Home, port_is_free};

/// `sitectl ARGS` run from `dir`; asserts success and returns stdout.
fn sitectl_in(home: &Home, dir: &Path, args: &[&str]) -> String {
    let output = home
        .command("sitectl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run sitectl");
    assert!(
        output.status.success(),
        "sitectl {args:?} in {}: {}",
        dir.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn logs_and_down_without_an_argument_act_on_the_site_of_the_current_folder() {
    let home = Home::new();
    let here = home.site("here", &[("content/index.md", "# Here\n")]);
    let other = home.site("other", &[("index.md", "# Other\n")]);
    let here_port = home.up(&here, &["--port", "0"]);
    let other_port = home.up(&other, &["--port", "0"]);
    // From a folder inside the site, as `open` already does.
    let logs = sitectl_in(&home, &here.join("content"), &["logs", "-n", "5"]);
    let by_port = home.sitectl_ok(&["logs", &here_port.to_string(), "-n", "5"]);
    assert_eq!(logs, by_port);
    sitectl_in(&home, &here, &["down"]);
    assert!(port_is_free(here_port));
    assert!(
        !port_is_free(other_port),
        "only the site of the folder went down"
    );
    // Outside every site's folder, `down` guesses nothing.
    let output = home
        .command("sitectl")
        .arg("down")
        .current_dir(home.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("none of the sites' folders"), "{stderr}");
    assert!(!port_is_free(other_port));
}

#[test]
fn stop_ls_and_list_are_aliases_of_down_and_ps() {
    let home = Home::new();
    let root = home.site("s", &[("index.md", "# S\n")]);
    let port = home.up(&root, &["--port", "0"]);
    let ps = home.sitectl_ok(&["ps", "--json"]);
    let ps: serde_json::Value = serde_json::from_str(&ps).unwrap();
    for alias in ["ls", "list"] {
        let listed = home.sitectl_ok(&[alias, "--json"]);
        let listed: serde_json::Value = serde_json::from_str(&listed).unwrap();
        assert_eq!(listed[0]["port"], ps[0]["port"], "{alias}");
    }
    let stopped = home.sitectl_ok(&["stop", &port.to_string()]);
    assert!(stopped.contains(&port.to_string()), "{stopped}");
    assert!(port_is_free(port));
}

#[test]
fn ps_without_a_daemon_says_so_and_starts_none() {
    let home = Home::new();
    let output = home.sitectl(&["ps"]);
    assert!(output.status.success(), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("sited is not running"), "{stderr}");
    assert_eq!(home.sitectl_ok(&["ps", "--json"]).trim(), "[]");
    assert!(!home.socket().exists(), "ps started a daemon");
    assert!(home.daemon_pid().is_none(), "ps started a daemon");
}

#[test]
fn ps_shows_the_address_a_site_really_listens_on() {
    let home = Home::new();
    let everywhere = home.site("everywhere", &[("index.md", "# E\n")]);
    let local = home.site("local", &[("index.md", "# L\n")]);
    let port = home.up(&everywhere, &["--port", "0", "--host", "0.0.0.0"]);
    let local_port = home.up(&local, &["--port", "0"]);
    let sites = home.ps();
    let site = sites.iter().find(|s| s["port"] == port).unwrap();
    assert_eq!(site["address"], format!("0.0.0.0:{port}"));
    let site = sites.iter().find(|s| s["port"] == local_port).unwrap();
    assert_eq!(site["address"], format!("127.0.0.1:{local_port}"));
    let table = home.sitectl_ok(&["ps"]);
    assert!(
        table.contains(&format!("listening on 0.0.0.0:{port} (every interface")),
        "{table}"
    );
    assert!(
        !table.contains(&format!("listening on 127.0.0.1:{local_port}")),
        "{table}"
    );
}

/// S29 (issue 12.3): `up` of a site already up with other options never answers with
/// the old ones and exit 0: it is refused, saying what differs; the site is untouched.
#[test]
fn s29_up_with_other_options_on_an_up_site_is_refused() {
    let home = Home::new();
    let root = home.site("s", &[("index.md", "# S\n")]);
    let port = home.up(&root, &["--port", "0"]);
    let holder = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let other_port = holder.local_addr().unwrap().port();
    drop(holder);
    for (extra, says) in [
        (vec!["--drafts"], "--drafts asked"),
        (
            vec!["--host", "0.0.0.0"],
            "--host 0.0.0.0 asked, listening on 127.0.0.1",
        ),
        (
            vec!["--port", &other_port.to_string()],
            &*format!("--port {other_port} asked, serving on {port}"),
        ),
    ] {
        let mut args = vec!["up", root.to_str().unwrap()];
        args.extend(&extra);
        let output = home.sitectl(&args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{extra:?}: {stderr}");
        assert!(stderr.contains("already up on port"), "{stderr}");
        assert!(stderr.contains(says), "{extra:?}: {stderr}");
        assert!(output.stdout.is_empty(), "{extra:?} printed a URL");
    }
    // The same options, or none, are the same site (idempotent), as before.
    assert_eq!(home.up(&root, &[]), port);
    assert_eq!(home.up(&root, &["--port", &port.to_string()]), port);
    let sites = home.ps();
    assert_eq!(sites.len(), 1);
    assert_eq!(sites[0]["address"], format!("127.0.0.1:{port}"));
    assert_eq!(sites[0]["drafts"], false);
}
