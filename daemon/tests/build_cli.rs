//! `sited build`: the one-shot build, run as the real binary.

use std::fs;
use std::path::Path;
use std::process::Command;

fn sited() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sited"));
    command.env_remove("SITED_HOME").env("SITED_LOG", "warn");
    command
}

fn example_blog() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/blog"))
}

#[test]
fn builds_the_example_blog_to_disk() {
    let out = tempfile::tempdir().unwrap();
    let target = out.path().join("public");
    let result = sited()
        .args([
            "build",
            example_blog().to_str().unwrap(),
            "--out",
            target.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        result.status.success(),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );
    let stdout = String::from_utf8_lossy(&result.stdout);
    assert!(stdout.starts_with("built "), "{stdout}");

    let home = fs::read_to_string(target.join("index.html")).unwrap();
    assert!(home.contains("<title>Field Notes</title>"));
    let post = fs::read_to_string(target.join("posts/notes-on-static-sites/index.html")).unwrap();
    // Relative .md links (with a fragment) became page URLs.
    assert!(
        post.contains(r#"href="/posts/a-week-at-the-lighthouse/#weather-and-tides""#),
        "{post}"
    );
    // The image beside the post and the static CSS override are copied.
    assert!(target.join("posts/lighthouse.svg").is_file());
    assert!(target.join("custom.css").is_file());
    assert!(target.join("theme.css").is_file());
    assert!(target.join("404.html").is_file());
    // The draft is left out unless asked for.
    assert!(!target.join("posts/half-finished-idea").exists());
    let with_drafts = out.path().join("drafts");
    let result = sited()
        .args([
            "build",
            example_blog().to_str().unwrap(),
            "--drafts",
            "-o",
            with_drafts.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(result.status.success());
    assert!(
        with_drafts
            .join("posts/half-finished-idea/index.html")
            .is_file()
    );
}

#[test]
fn failed_build_names_file_and_line_and_keeps_the_previous_output() {
    let site = tempfile::tempdir().unwrap();
    fs::create_dir(site.path().join("content")).unwrap();
    fs::write(site.path().join("content/ok.md"), "# Fine\n").unwrap();
    let out = site.path().join("out");
    let first = sited()
        .args(["build"])
        .arg(site.path())
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(first.status.success());
    let before = fs::read_to_string(out.join("ok/index.html")).unwrap();

    fs::write(site.path().join("content/ok.md"), "# Changed\n").unwrap();
    fs::write(
        site.path().join("content/bad.md"),
        "---\ntitle: [unclosed\n---\n",
    )
    .unwrap();
    fs::create_dir(site.path().join("templates")).unwrap();
    fs::write(site.path().join("templates/page.html"), "{% block %}\n").unwrap();
    let second = sited()
        .args(["build"])
        .arg(site.path())
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(second.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(stderr.contains("error: content/bad.md:"), "{stderr}");
    assert!(
        stderr.contains("error: templates/page.html:1"),
        "every error reported: {stderr}"
    );
    assert_eq!(
        fs::read_to_string(out.join("ok/index.html")).unwrap(),
        before,
        "output untouched"
    );
}

#[test]
fn missing_root_is_a_clear_error() {
    let result = sited().args(["build", "/no/such/site"]).output().unwrap();
    assert_eq!(result.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(
        stderr.contains("error: site root /no/such/site is not a directory"),
        "{stderr}"
    );
}
