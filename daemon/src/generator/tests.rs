//! External builds against a fake generator: a shell script that does what a file in the
//! site (`mode`) says: build, fail, hang, hang ignoring SIGTERM, or leave a grandchild
//! behind. It writes its pid (its process group's id) and any grandchild's pid into the
//! site, so the tests can look for them in /proc.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;

const FAKE: &str = r#"#!/bin/sh
out="$1"
mode=$(cat mode)
echo $$ > group.pid
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
    echo $! > grandchild.pid
    wait ;;
  stubborn)
    trap '' TERM
    sleep 1000 &
    echo $! > grandchild.pid
    wait; wait; wait ;;
  leave)
    sleep 1000 &
    echo $! > grandchild.pid
    cp -R pages/. "$out/" ;;
esac
"#;

struct Fixture {
    _dir: tempfile::TempDir,
    root: PathBuf,
    state: PathBuf,
    script: PathBuf,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("site").canonicalize_or_create();
        let state = dir.path().join("state");
        let script = dir.path().join("fake-gen");
        sited_tests::write_executable(&script, FAKE.as_bytes());
        let fixture = Fixture {
            _dir: dir,
            root,
            state,
            script,
        };
        fixture.write("pages/index.html", "<p>home</p>");
        fixture.write("pages/site.css", "body{}");
        fixture.write("mode", "ok");
        fixture
    }

    fn write(&self, path: &str, text: &str) {
        let path = self.root.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    fn pid(&self, name: &str) -> i32 {
        let path = self.root.join(name);
        assert!(
            sited_tests::wait_until(Duration::from_secs(10), || std::fs::read_to_string(&path)
                .is_ok_and(|t| t.ends_with('\n'))),
            "{name} was never written"
        );
        std::fs::read_to_string(&path)
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }

    fn external(&self, timeout: Duration) -> External {
        let spec = Spec {
            name: "fake-gen".into(),
            argv: vec![self.script.display().to_string(), "{out}".into()],
            in_place: None,
            create_out: true,
            timeout,
        };
        External::new(
            self.root.clone(),
            spec,
            "http://127.0.0.1:1/".into(),
            &self.state,
            Cancel::default(),
            Vec::new(),
        )
    }

    fn builds(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.state.join(STATE_SUBDIR))
            .unwrap()
            .flatten()
            .filter(|e| e.file_name() != PIDS_SUBDIR)
            .flat_map(|e| std::fs::read_dir(e.path()).unwrap().flatten())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

trait CanonicalizeOrCreate {
    fn canonicalize_or_create(self) -> PathBuf;
}

impl CanonicalizeOrCreate for PathBuf {
    fn canonicalize_or_create(self) -> PathBuf {
        std::fs::create_dir_all(&self).unwrap();
        self.canonicalize().unwrap()
    }
}

/// Whether any process of group `pgid` is alive (a zombie is not: PID 1 reaps lazily).
fn group_alive(pgid: i32) -> bool {
    std::fs::read_dir("/proc").unwrap().flatten().any(|entry| {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            return false;
        };
        // pid (comm) state ppid pgrp ...: comm may hold spaces and parentheses.
        let Some(after) = stat.rfind(')').map(|i| &stat[i + 2..]) else {
            return false;
        };
        let fields: Vec<&str> = after.split(' ').collect();
        fields.len() > 2 && fields[2] == pgid.to_string() && !matches!(fields[0], "Z" | "X")
    })
}

fn process_alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rfind(')')
            .is_some_and(|i| !matches!(&stat[i + 2..i + 3], "Z" | "X"))
    })
}

fn html(result: &BuildResult, url: &str) -> String {
    match &result.output.get(url).unwrap().body {
        sited_builder::Body::Memory(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        sited_builder::Body::Packed(packed) => {
            String::from_utf8_lossy(&packed.unpack().unwrap()).into_owned()
        }
        sited_builder::Body::File(path) => std::fs::read_to_string(path).unwrap(),
    }
}

fn error_text(result: &BuildResult) -> String {
    result.report.errors().map(|e| e.to_string()).collect()
}

#[test]
fn a_good_build_is_read_into_the_output_and_only_its_folder_is_kept() {
    let fixture = Fixture::new();
    let mut site = fixture.external(Duration::from_secs(30));
    let first = site.build(Changes::Everything).unwrap();
    assert!(!first.report.has_errors(), "{}", error_text(&first));
    assert_eq!(html(&first, "/"), "<p>home</p>");
    assert_eq!(first.reload, Reload::Full);
    assert_eq!((first.report.pages, first.report.files), (1, 1));

    fixture.write("pages/index.html", "<p>home, edited</p>");
    let second = site.build(Changes::Everything).unwrap();
    assert_eq!(html(&second, "/"), "<p>home, edited</p>");
    assert_eq!(
        second.reload,
        Reload::Pages(vec!["/".into(), "/index.html".into()])
    );
    assert_eq!(fixture.builds(), ["build-2"], "the old folder is removed");

    fixture.write("pages/site.css", "body{color:red}");
    let third = site.build(Changes::Everything).unwrap();
    assert_eq!(third.reload, Reload::Styles(vec!["/site.css".into()]));
    let fourth = site.build(Changes::Everything).unwrap();
    assert_eq!(fourth.reload, Reload::Nothing);
    assert!(!group_alive(fixture.pid("group.pid")));
}

#[test]
fn a_failed_build_keeps_the_last_output_and_carries_what_the_generator_said() {
    let fixture = Fixture::new();
    let mut site = fixture.external(Duration::from_secs(30));
    site.build(Changes::Everything).unwrap();
    fixture.write("mode", "fail");
    fixture.write("pages/index.html", "<p>never served</p>");
    let failed = site.build(Changes::Everything).unwrap();
    let text = error_text(&failed);
    assert!(
        text.starts_with("fake-gen: fake-gen failed (exit status: 3)"),
        "{text}"
    );
    assert!(text.contains("content/a.md:3: unknown shortcode"), "{text}");
    assert!(text.contains("fake: building (fail)"), "{text}");
    assert_eq!(html(&failed, "/"), "<p>home</p>", "the last good output");
    assert_eq!(failed.reload, Reload::Nothing);
    assert_eq!(
        fixture.builds(),
        ["build-1"],
        "the failed build's folder is gone"
    );
}

#[test]
fn the_first_build_failing_serves_nothing_and_says_why() {
    let fixture = Fixture::new();
    fixture.write("mode", "fail");
    let failed = fixture
        .external(Duration::from_secs(30))
        .build(Changes::Everything)
        .unwrap();
    assert!(failed.output.resources.is_empty());
    assert!(error_text(&failed).contains("unknown shortcode"));
}

#[test]
fn a_build_past_its_limit_is_killed_with_its_grandchild() {
    for mode in ["hang", "stubborn"] {
        let fixture = Fixture::new();
        let mut site = fixture.external(Duration::from_secs(30));
        site.build(Changes::Everything).unwrap();
        fixture.write("mode", mode);
        std::fs::remove_file(fixture.root.join("group.pid")).unwrap();
        site.spec.timeout = Duration::from_millis(300);
        let timed_out = site.build(Changes::Everything).unwrap();
        let text = error_text(&timed_out);
        assert!(text.contains("ran past its limit"), "{mode}: {text}");
        assert!(text.contains(&format!("fake: building ({mode})")), "{text}");
        assert_eq!(html(&timed_out, "/"), "<p>home</p>");
        let (group, grandchild) = (fixture.pid("group.pid"), fixture.pid("grandchild.pid"));
        assert!(!group_alive(group), "{mode}: the group is gone");
        assert!(!process_alive(grandchild), "{mode}: the grandchild is gone");
    }
}

#[test]
fn a_cancelled_build_kills_the_group_and_is_a_cancellation() {
    let fixture = Fixture::new();
    fixture.write("mode", "hang");
    let mut site = fixture.external(Duration::from_secs(600));
    let cancel = site.cancel().clone();
    let build = std::thread::spawn(move || site.build(Changes::Everything));
    let (group, grandchild) = (fixture.pid("group.pid"), fixture.pid("grandchild.pid"));
    assert!(group_alive(group));
    cancel.cancel();
    let result = build.join().unwrap();
    assert!(matches!(result, Err(Failure::Cancelled)), "{result:?}");
    assert!(!group_alive(group));
    assert!(!process_alive(grandchild));
    assert!(
        fixture.builds().is_empty(),
        "the cancelled build's folder is gone"
    );
}

#[test]
fn what_a_good_build_leaves_running_in_its_group_is_killed() {
    let fixture = Fixture::new();
    fixture.write("mode", "leave");
    let mut site = fixture.external(Duration::from_secs(30));
    let built = site.build(Changes::Everything).unwrap();
    assert!(!built.report.has_errors(), "{}", error_text(&built));
    assert!(!process_alive(fixture.pid("grandchild.pid")));
    assert!(!group_alive(fixture.pid("group.pid")));
}

#[test]
fn a_program_that_is_not_there_is_an_error_naming_it() {
    let fixture = Fixture::new();
    let mut site = fixture.external(Duration::from_secs(30));
    site.spec.argv[0] = "/nonexistent/hugo".into();
    let failed = site.build(Changes::Everything).unwrap();
    let text = error_text(&failed);
    assert!(text.contains("cannot run \"/nonexistent/hugo\""), "{text}");
}

#[test]
fn groups_left_by_a_dead_daemon_are_reaped_at_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path();
    let pids = state.join(STATE_SUBDIR).join(PIDS_SUBDIR);
    let spawn = || {
        let mut command = std::process::Command::new("sleep");
        command.arg("1000");
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        command.spawn().unwrap()
    };
    let (mut ours, mut other) = (spawn(), spawn());
    reap::record(&pids.join("a.pid"), ours.id() as i32, "/usr/bin/sleep");
    // A group id reused by another program is left alone.
    reap::record(&pids.join("b.pid"), other.id() as i32, "hugo");
    std::fs::create_dir_all(state.join(STATE_SUBDIR).join("site-1/build-3")).unwrap();
    clean_state(state);
    assert!(ours.wait().is_ok_and(|s| !s.success()), "killed");
    assert!(other.try_wait().unwrap().is_none(), "still running");
    assert!(
        !state.join(STATE_SUBDIR).exists(),
        "old builds and records removed"
    );
    other.kill().unwrap();
    other.wait().unwrap();
}

#[test]
fn which_builder_a_site_gets() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures");
    let all = |_: &str| true;
    let none = |_: &str| false;
    let external = |chosen: Result<Chosen, String>| match chosen.unwrap().choice {
        Choice::External(spec) => spec.name,
        Choice::Native => "native".into(),
    };
    let hugo = fixtures.join("hugo-site");
    assert_eq!(external(choose(&hugo, None, false, all)), "hugo");
    let fallback = choose(&hugo, None, false, none).unwrap();
    assert_eq!(fallback.choice, Choice::Native);
    let warning = fallback.warning.unwrap();
    assert!(
        warning.contains("a Hugo site with layouts/ of its own, but hugo is not installed")
            && warning.contains("--with hugo|native"),
        "{warning}"
    );
    assert_eq!(
        external(choose(&hugo, Some("native"), false, all)),
        "native"
    );
    for name in ["hugo-docs", "zola-site", "mdbook-book"] {
        let chosen = choose(&fixtures.join(name), None, false, all).unwrap();
        assert_eq!(chosen.choice, Choice::Native, "{name}");
        assert_eq!(chosen.warning, None, "{name}");
    }
    let book = fixtures.join("mdbook-book");
    assert_eq!(
        external(choose(&book, Some("mdbook"), false, all)),
        "mdbook"
    );
    let missing = choose(&book, Some("mdbook"), false, none).unwrap_err();
    assert!(missing.contains("mdbook is not installed"), "{missing}");
    let unknown = choose(&book, Some("jekyll"), false, all).unwrap_err();
    assert!(unknown.contains("native, hugo, zola, mdbook"), "{unknown}");

    let fixture = Fixture::new();
    fixture.write("site.toml", "[build]\ncommand = \"make site\"\n");
    assert_eq!(external(choose(&fixture.root, None, false, none)), "make");
    fixture.write("site.toml", "[build]\ncommand = \"make 'site\"\n");
    let bad = choose(&fixture.root, None, false, none).unwrap_err();
    assert!(bad.contains("unclosed '"), "{bad}");
}

#[test]
fn only_the_sites_sources_trigger_a_build() {
    let fixture = Fixture::new();
    let mut site = fixture.external(Duration::from_secs(30));
    site.spec.in_place = Some("book".into());
    let root = &fixture.root;
    let affects = |rel: &str| site.affects_output(&[root.join(rel)]);
    assert!(affects("content/a.md"));
    assert!(affects("layouts/_default/single.html"));
    assert!(affects("hugo.toml"));
    for ignored in [
        ".hugo_build.lock",
        ".git/index",
        "content/.a.md.swp",
        "content/a.md~",
        "public/index.html",
        "resources/_gen/images/x.png",
        "resources",
        "book/index.html",
    ] {
        assert!(!affects(ignored), "{ignored}");
    }
    assert!(!site.affects_output(&[PathBuf::from("/elsewhere/a.md")]));
}
