//! Every error a person meets, as they see it: `error: …`, its causes, a concrete
//! `hint: …`, and the documented exit code (1 refused, 2 usage, 3 no daemon). Snapshots
//! with paths, ports and pids replaced by placeholders.

use std::net::{Ipv4Addr, TcpListener};
use std::process::Output;

use sited_tests::{Home, bin, copy_executable, write_executable};

/// Exit code, then stderr and stdout, redacted.
fn seen(home: &Home, output: &Output, ports: &[u16]) -> String {
    let text = format!(
        "exit: {}\n--- stderr\n{}--- stdout\n{}",
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stderr),
        String::from_utf8_lossy(&output.stdout)
    );
    home.redact(&text, ports)
}

fn run(home: &Home, args: &[&str], ports: &[u16]) -> String {
    seen(home, &home.sitectl(args), ports)
}

#[test]
fn port_taken_by_another_program_names_it() {
    let home = Home::new();
    let holder = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = holder.local_addr().unwrap().port();
    let root = home.site("s", &[("index.md", "# S\n")]);
    // The hint suggests the next port up.
    let ports = [port, port + 1];
    let text = run(
        &home,
        &["up", root.to_str().unwrap(), "--port", &port.to_string()],
        &ports,
    );
    // The holder is this test: its command line varies with the build.
    let exe = std::env::current_exe().unwrap();
    let name = exe.file_name().unwrap().to_str().unwrap();
    assert!(text.contains(name), "the owner's command is named: {text}");
    let command = regex::Regex::new(r"\(/[^\n]*\)\n").unwrap();
    insta::assert_snapshot!(command.replace(&text, "([THIS TEST])\n"));
}

#[test]
fn port_taken_by_another_site() {
    let home = Home::new();
    let a = home.site("a", &[("index.md", "# A\n")]);
    let b = home.site("b", &[("index.md", "# B\n")]);
    let port = home.up(&a, &["--port", "0"]);
    insta::assert_snapshot!(run(
        &home,
        &["up", b.to_str().unwrap(), "--port", &port.to_string()],
        &[port]
    ));
}

#[test]
fn root_missing() {
    let home = Home::new();
    let missing = home.path().join("no-such-site");
    insta::assert_snapshot!(run(&home, &["up", missing.to_str().unwrap()], &[]));
}

#[test]
fn root_not_a_directory() {
    let home = Home::new();
    let root = home.site("s", &[("index.md", "# S\n")]);
    let file = root.join("index.md");
    insta::assert_snapshot!(run(&home, &["up", file.to_str().unwrap()], &[]));
}

#[test]
fn no_such_site() {
    let home = Home::new();
    let nowhere = home.path().join("nowhere");
    let mut text = String::new();
    for args in [
        vec!["down", "1"],
        vec!["restart", "1"],
        vec!["rebuild", "1"],
        vec!["open", "1"],
        vec!["logs", nowhere.to_str().unwrap()],
    ] {
        text.push_str(&format!("$ sitectl {}\n", args.join(" ")));
        text.push_str(&run(&home, &args, &[]));
        text.push('\n');
    }
    insta::assert_snapshot!(home.redact(&text, &[]));
}

#[test]
fn no_site_to_open() {
    let home = Home::new();
    insta::assert_snapshot!(run(&home, &["open"], &[]));
}

#[test]
fn daemon_not_running() {
    let home = Home::new();
    insta::assert_snapshot!(run(&home, &["daemon", "status"], &[]));
}

#[test]
fn daemon_cannot_be_started() {
    // A sitectl with no sited next to it, nor on PATH.
    let home = Home::new();
    let alone = tempfile::tempdir().unwrap();
    let sitectl = alone.path().join("sitectl");
    copy_executable(&bin("sitectl"), &sitectl);
    let output = home
        .command_for(&sitectl)
        .env("PATH", alone.path())
        // Any command that needs the daemon starts it (`ps` does not: no daemon, no sites).
        .arg("open")
        .output()
        .unwrap();
    insta::assert_snapshot!(seen(&home, &output, &[]));
}

#[test]
fn usage_errors() {
    let home = Home::new();
    let mut text = String::new();
    for args in [
        vec![],
        vec!["frobnicate"],
        vec!["down"],
        vec!["up", "--port", "notaport"],
        vec!["restart", "5173", "--all"],
        vec!["completions", "tcsh"],
        vec!["logs"],
    ] {
        text.push_str(&format!("$ sitectl {}\n", args.join(" ")));
        let output = home.sitectl(&args);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {output:?}");
        text.push_str(&seen(&home, &output, &[]));
        text.push('\n');
    }
    assert!(!home.socket().exists(), "a usage error starts no daemon");
    insta::assert_snapshot!(text);
}

#[test]
fn which_site_to_open_is_a_usage_error() {
    let home = Home::new();
    let a = home.site("a", &[("index.md", "# A\n")]);
    let b = home.site("b", &[("index.md", "# B\n")]);
    let mut ports = [home.up(&a, &["--port", "0"]), home.up(&b, &["--port", "0"])];
    ports.sort_unstable();
    let output = home
        .command("sitectl")
        .arg("open")
        .current_dir(home.path())
        .output()
        .unwrap();
    insta::assert_snapshot!(seen(&home, &output, &ports));
}

/// A PATH holding only an `xdg-open` that runs `body`, or nothing at all.
fn path_with_opener(body: Option<&str>) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    if let Some(body) = body {
        let script = dir.path().join("xdg-open");
        write_executable(&script, format!("#!/bin/sh\n{body}\n").as_bytes());
    }
    dir
}

#[test]
fn no_browser_to_open_with() {
    let mut text = String::new();
    for (case, body) in [
        ("no opener", None),
        ("opener finds no browser", Some("exit 3")),
    ] {
        let dir = path_with_opener(body);
        let home = Home::with_env("PATH", dir.path().to_str().unwrap());
        let root = home.site("s", &[("index.md", "# S\n")]);
        let port = home.up(&root, &["--port", "0"]);
        text.push_str(&format!("# {case}\n"));
        text.push_str(&run(&home, &["open", &port.to_string()], &[port]));
        text.push('\n');
    }
    insta::assert_snapshot!(text);
}

/// Runs `sitectl ARGS` with its stdout a pipe whose reader is already gone.
fn into_closed_pipe(home: &Home, args: &[&str]) -> Output {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    home.command("sitectl")
        .args(args)
        .stdout(writer)
        .output()
        .unwrap()
}

#[test]
fn a_reader_that_goes_away_ends_the_command_quietly() {
    let home = Home::new();
    let root = home.site("s", &[("index.md", "# S\n")]);
    let port = home.up(&root, &["--port", "0"]).to_string();
    for args in [
        vec!["completions", "bash"],
        vec!["ps"],
        vec!["ps", "--json"],
        // Would follow forever if it did not notice.
        vec!["logs", port.as_str(), "-f"],
    ] {
        let output = into_closed_pipe(&home, &args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(0), "{args:?}: {stderr}");
        assert!(stderr.is_empty(), "{args:?} said: {stderr}");
    }
}
