//! S30 and issue 14: sites built by another program, run by the real daemon. A fake
//! generator (a shell script told by a file outside the site what to do: build, fail,
//! hang, or hang and fork a grandchild) covers every path; the real Hugo covers one
//! edit-reload loop. Zola and mdBook are tested where installed.
//!
//! The fake writes its pid (its process group's id: sited makes the generator a group
//! leader) and its grandchild's pid into a probe folder outside the site, so the tests
//! can tell from /proc whether anything of it is left.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use sited_tests::{DEADLINE, Events, Home, get, kill, wait_until, write_executable};

const FAKE: &str = r#"#!/bin/sh
out="$1"
probe="$2"
mode=$(cat "$probe/mode")
echo $$ > "$probe/group.tmp" && mv "$probe/group.tmp" "$probe/group.pid"
echo "fake: building ($mode)"
case "$mode" in
  ok)
    cp -R pages/. "$out/"
    echo "fake: done" ;;
  fail)
    echo "content/a.md:3: unknown shortcode" >&2
    exit 3 ;;
  hang)
    sleep 1000 &
    echo $! > "$probe/grandchild.tmp" && mv "$probe/grandchild.tmp" "$probe/grandchild.pid"
    wait ;;
esac
"#;

/// A site built by the fake generator, and its probe folder.
struct Fake {
    root: PathBuf,
    probe: PathBuf,
}

impl Fake {
    fn new(home: &Home, name: &str, timeout_secs: u64) -> Fake {
        let probe = home.path().join(format!("probe-{name}"));
        std::fs::create_dir_all(&probe).unwrap();
        let script = home.path().join("fake-gen");
        if !script.exists() {
            write_executable(&script, FAKE.as_bytes());
        }
        let site_toml = format!(
            "[build]\ncommand = [{:?}, \"{{out}}\", {:?}]\ntimeout = {timeout_secs}\n",
            script.display().to_string(),
            probe.display().to_string()
        );
        let root = home.site(
            name,
            &[
                ("site.toml", &site_toml),
                ("pages/index.html", "<html><body><p>first</p></body></html>"),
            ],
        );
        let fake = Fake { root, probe };
        fake.mode("ok");
        fake
    }

    fn mode(&self, mode: &str) {
        std::fs::write(self.probe.join("mode"), mode).unwrap();
    }

    fn edit(&self, text: &str) {
        let page = format!("<html><body><p>{text}</p></body></html>");
        std::fs::write(self.root.join("pages/index.html"), page).unwrap();
    }

    /// Forgets the pids of the last build, so the next ones can be waited for.
    fn forget_pids(&self) {
        for name in ["group.pid", "grandchild.pid"] {
            let _ = std::fs::remove_file(self.probe.join(name));
        }
    }

    fn pid(&self, name: &str) -> i32 {
        let path = self.probe.join(name);
        assert!(
            wait_until(DEADLINE, || path.exists()),
            "the generator never wrote {name}"
        );
        std::fs::read_to_string(path)
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }

    /// Starts a build that hangs with a grandchild; returns (group, grandchild) once
    /// both run.
    fn hang(&self) -> (i32, i32) {
        self.forget_pids();
        self.mode("hang");
        self.edit("never served");
        (self.pid("group.pid"), self.pid("grandchild.pid"))
    }
}

/// The fields of /proc/PID/stat after the command name: state, ppid, pgrp, ...
fn stat(pid: &str) -> Option<Vec<String>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &text[text.rfind(')')? + 2..];
    Some(after.split(' ').map(str::to_string).collect())
}

/// Whether any process of group `pgid` is alive. Zombies are not: they have exited, and
/// PID 1 may reap them lazily.
fn group_alive(pgid: i32) -> bool {
    let pgid = pgid.to_string();
    std::fs::read_dir("/proc").unwrap().flatten().any(|entry| {
        stat(&entry.file_name().to_string_lossy())
            .is_some_and(|f| f.len() > 2 && f[2] == pgid && !matches!(f[0].as_str(), "Z" | "X"))
    })
}

fn alive(pid: i32) -> bool {
    stat(&pid.to_string()).is_some_and(|f| !matches!(f[0].as_str(), "Z" | "X"))
}

fn assert_gone(group: i32, grandchild: i32, after: &str) {
    assert!(
        wait_until(DEADLINE, || !group_alive(group) && !alive(grandchild)),
        "after {after}: the generator's group {group} (grandchild {grandchild}) is still alive"
    );
}

fn body(port: u16) -> String {
    get(port, "/").unwrap().text()
}

fn errors(event: &Value) -> &Vec<Value> {
    event["errors"].as_array().expect("errors")
}

#[test]
fn s30_an_external_build_is_served_reloaded_and_a_failure_keeps_the_last_output() {
    let home = Home::new();
    let fake = Fake::new(&home, "fake", 60);
    let port = home.up(&fake.root, &[]);
    let page = body(port);
    assert!(page.contains("<p>first</p>"), "{page}");
    assert!(
        page.contains("/__sited/"),
        "live reload is injected: {page}"
    );
    let ps = home.ps();
    assert_eq!(ps[0]["builder"], "fake-gen");
    let table = home.sitectl_ok(&["ps"]);
    assert!(table.contains("(fake-gen)"), "{table}");
    let logs = home.sitectl_ok(&["logs", fake.root.to_str().unwrap()]);
    assert!(logs.contains("fake: building (ok)"), "{logs}");

    let mut events = Events::connect(port).unwrap();
    events.next_state();
    fake.edit("second");
    events.until(|e| errors(e).is_empty() && e["change"] == "reload");
    assert!(body(port).contains("<p>second</p>"));

    fake.mode("fail");
    fake.edit("never served");
    let failed = events.until(|e| !errors(e).is_empty());
    let message = failed["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("fake-gen failed"), "{message}");
    assert!(
        message.contains("content/a.md:3: unknown shortcode"),
        "{message}"
    );
    assert!(body(port).contains("<p>second</p>"), "the last good output");
    let ps = home.ps();
    assert!(
        ps[0]["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("unknown shortcode"),
        "{ps:?}"
    );

    fake.mode("ok");
    fake.edit("fixed");
    events.until(|e| errors(e).is_empty());
    assert!(body(port).contains("<p>fixed</p>"));
    home.sitectl_ok(&["down", "--all"]);
}

#[test]
fn s30_a_build_past_its_limit_is_killed_with_its_grandchild() {
    let home = Home::new();
    let fake = Fake::new(&home, "slow", 1);
    let port = home.up(&fake.root, &[]);
    let mut events = Events::connect(port).unwrap();
    events.next_state();
    let (group, grandchild) = fake.hang();
    let killed = events.until(|e| !errors(e).is_empty());
    let message = killed["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("ran past its limit of 1s"), "{message}");
    assert_gone(group, grandchild, "the time limit");
    assert!(body(port).contains("<p>first</p>"), "the last good output");
    home.sitectl_ok(&["down", "--all"]);
}

#[test]
fn s30_down_and_down_all_leave_no_generator_process() {
    let home = Home::new();
    let one = Fake::new(&home, "one", 600);
    let two = Fake::new(&home, "two", 600);
    home.up(&one.root, &[]);
    home.up(&two.root, &[]);
    let (group, grandchild) = one.hang();
    home.sitectl_ok(&["down", one.root.to_str().unwrap()]);
    // `down` returns once the site has let go of everything: nothing to wait for.
    assert!(!group_alive(group) && !alive(grandchild), "after down");

    one.mode("ok");
    home.up(&one.root, &[]);
    let hanging = [one.hang(), two.hang()];
    home.sitectl_ok(&["down", "--all"]);
    for (group, grandchild) in hanging {
        assert!(
            !group_alive(group) && !alive(grandchild),
            "after down --all"
        );
    }
}

fn daemon_signal_leaves_no_generator(signal: &str) {
    let mut home = Home::new();
    let daemon = home.start_foreground(&[]);
    let fake = Fake::new(&home, "site", 600);
    home.up(&fake.root, &[]);
    let (group, grandchild) = fake.hang();
    kill(daemon, signal);
    let status = home.foreground_child().wait().unwrap();
    if signal != "KILL" {
        assert_eq!(status.code(), Some(0), "{}", home.foreground_log());
        assert!(
            !group_alive(group) && !alive(grandchild),
            "after SIG{signal}"
        );
    }
    // SIGKILL: the parent-death signal reaches the generator's first process, which
    // takes its group with it.
    assert_gone(group, grandchild, &format!("SIG{signal}"));
}

#[test]
fn s30_daemon_sigterm_leaves_no_generator_process() {
    daemon_signal_leaves_no_generator("TERM");
}

#[test]
fn s30_daemon_sigint_leaves_no_generator_process() {
    daemon_signal_leaves_no_generator("INT");
}

#[test]
fn s30_daemon_sighup_leaves_no_generator_process() {
    daemon_signal_leaves_no_generator("HUP");
}

#[test]
fn s30_daemon_sigkill_leaves_no_generator_process() {
    daemon_signal_leaves_no_generator("KILL");
}

/// Processes running `program` with their working directory in `root`.
fn processes_in(program: &str, root: &Path) -> Vec<String> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|entry| {
            let pid = entry.file_name().to_string_lossy().into_owned();
            let fields = stat(&pid)?;
            let comm = std::fs::read_to_string(entry.path().join("comm")).ok()?;
            let cwd = std::fs::read_link(entry.path().join("cwd")).ok()?;
            (comm.trim() == program && cwd.starts_with(root) && fields[0] != "Z").then_some(pid)
        })
        .collect()
}

fn installed(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .output()
        .is_ok_and(|out| out.status.success())
        || Command::new(program)
            .arg("version")
            .output()
            .is_ok_and(|out| out.status.success())
}

#[test]
fn s30_the_real_hugo_builds_a_site_with_its_own_layouts_and_reloads_an_edit() {
    if !installed("hugo") {
        eprintln!("skipped: hugo is not installed (Debian package hugo; .ci/run installs it)");
        return;
    }
    let home = Home::new();
    let root = home.path().join("sites/tideline");
    sited_tests::copy_tree(
        &sited_tests::workspace().join("tests/fixtures/hugo-site"),
        &root,
    );
    let root = root.canonicalize().unwrap();
    let port = home.up(&root, &[]);
    assert_eq!(home.ps()[0]["builder"], "hugo", "chosen for its layouts/");
    let page = get(port, "/posts/high-water/").unwrap();
    assert_eq!(page.status, 200, "{}", page.text());
    assert!(page.text().contains("Tideline"), "{}", page.text());

    let mut events = Events::connect(port).unwrap();
    events.next_state();
    let post = root.join("content/posts/high-water.md");
    let text = std::fs::read_to_string(&post).unwrap();
    std::fs::write(&post, format!("{text}\nA line about the spring tide.\n")).unwrap();
    events.until(|e| errors(e).is_empty() && e["change"] == "reload");
    let page = get(port, "/posts/high-water/").unwrap().text();
    assert!(page.contains("A line about the spring tide."), "{page}");
    assert!(
        !root.join("public").exists(),
        "hugo wrote into sited's folder"
    );
    assert!(!root.join(".hugo_build.lock").exists());

    home.sitectl_ok(&["down", root.to_str().unwrap()]);
    assert!(processes_in("hugo", &root).is_empty(), "a hugo is left");
}

#[test]
fn zola_and_mdbook_build_their_sites_where_installed() {
    for (program, fixture, url) in [("zola", "zola-site", "/"), ("mdbook", "mdbook-book", "/")] {
        if !installed(program) {
            eprintln!("skipped {program}: not installed");
            continue;
        }
        let home = Home::new();
        let root = home.path().join("sites").join(fixture);
        sited_tests::copy_tree(
            &sited_tests::workspace()
                .join("tests/fixtures")
                .join(fixture),
            &root,
        );
        let port = home.up(&root, &["--with", program]);
        assert_eq!(home.ps()[0]["builder"], program);
        assert_eq!(get(port, url).unwrap().status, 200, "{program}");
        home.sitectl_ok(&["down", "--all"]);
        assert!(processes_in(program, &root.canonicalize().unwrap()).is_empty());
    }
}

#[test]
fn with_a_generator_that_is_not_installed_up_fails_saying_so() {
    let home = Home::new();
    let root = home.site("notes", &[("index.md", "# Notes")]);
    let missing = ["zola", "mdbook", "hugo"]
        .into_iter()
        .find(|program| !installed(program));
    let Some(program) = missing else {
        eprintln!("skipped: hugo, zola and mdbook are all installed");
        return;
    };
    let out = home.sitectl(&["up", root.to_str().unwrap(), "--with", program]);
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains(&format!("{program} is not installed")),
        "{text}"
    );
}
