//! `sited build`: the one-shot build, run as the real binary.

use std::fs;
use std::os::unix::fs::MetadataExt;
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

/// Every file and folder under `dir` with its bytes (symlinks as their targets), to show a
/// refused build touched nothing.
fn snapshot(dir: &Path) -> Vec<(std::path::PathBuf, Option<Vec<u8>>)> {
    let mut entries = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        let meta = fs::symlink_metadata(&path).unwrap();
        let rel = path.strip_prefix(dir).unwrap().to_path_buf();
        if meta.file_type().is_symlink() {
            let target = fs::read_link(&path).unwrap();
            entries.push((rel, Some(target.into_os_string().into_encoded_bytes())));
        } else if meta.is_dir() {
            entries.push((rel, None));
            for entry in fs::read_dir(&path).unwrap() {
                stack.push(entry.unwrap().path());
            }
        } else {
            entries.push((rel, Some(fs::read(&path).unwrap())));
        }
    }
    entries.sort();
    entries
}

/// A home with a site in it and some files of the user's beside it.
struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    fn new() -> Home {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path();
        fs::create_dir_all(home.join("sites/blog/content/posts")).unwrap();
        fs::create_dir_all(home.join("sites/blog/static")).unwrap();
        fs::create_dir_all(home.join("sites/blog/templates")).unwrap();
        fs::write(home.join("sites/blog/content/_index.md"), "# Blog\n").unwrap();
        fs::write(home.join("sites/blog/content/posts/a.md"), "# A\n").unwrap();
        fs::write(home.join("sites/blog/static/style.css"), "body{}").unwrap();
        fs::write(
            home.join("sites/blog/templates/page.html"),
            "{{ page.content }}",
        )
        .unwrap();
        fs::write(home.join("sites/notes.txt"), "a note").unwrap();
        fs::create_dir_all(home.join("photos")).unwrap();
        fs::write(home.join("photos/cat.jpg"), "not really a jpeg").unwrap();
        fs::write(home.join(".bashrc"), "export A=1").unwrap();
        Home { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn site(&self) -> std::path::PathBuf {
        self.path().join("sites/blog")
    }

    /// Runs `sited build SITE --out OUT` from `cwd` with this home as `$HOME`.
    fn build(&self, cwd: &Path, out: &Path) -> std::process::Output {
        sited()
            .current_dir(cwd)
            .env("HOME", self.path())
            .arg("build")
            .arg(self.site())
            .arg("--out")
            .arg(out)
            .output()
            .unwrap()
    }

    /// Asserts that building into `out` is refused with `reason` and a hint, and that
    /// nothing in the home changed.
    fn assert_refused(&self, cwd: &Path, out: &Path, reason: &str) {
        let before = snapshot(self.path());
        let result = self.build(cwd, out);
        let stderr = String::from_utf8_lossy(&result.stderr);
        assert_eq!(
            result.status.code(),
            Some(1),
            "--out {}: {stderr}",
            out.display()
        );
        assert!(
            stderr.contains("error: refusing to write the site to"),
            "{stderr}"
        );
        assert!(stderr.contains(reason), "--out {}: {stderr}", out.display());
        assert!(stderr.contains("hint: "), "{stderr}");
        assert_eq!(
            snapshot(self.path()),
            before,
            "--out {} touched files",
            out.display()
        );
    }
}

#[test]
fn s19_a_folder_of_unrelated_files_is_refused_untouched() {
    let home = Home::new();
    home.assert_refused(
        home.path(),
        &home.path().join("photos"),
        "holds files sited did not write (`cat.jpg`)",
    );
    // Relative, from inside it: `.`
    home.assert_refused(&home.path().join("photos"), Path::new("."), "`cat.jpg`");
}

#[test]
fn s19_the_site_itself_and_its_sources_are_refused_untouched() {
    let home = Home::new();
    let site = home.site();
    home.assert_refused(home.path(), &site, "the site's own folder");
    home.assert_refused(&site, Path::new("."), "the site's own folder");
    home.assert_refused(
        home.path(),
        &site.join("content"),
        "inside the site's content/",
    );
    home.assert_refused(home.path(), &site.join("content/posts"), "content/");
    home.assert_refused(home.path(), &site.join("content/new"), "content/");
    home.assert_refused(
        home.path(),
        &site.join("static"),
        "inside the site's static/",
    );
    home.assert_refused(home.path(), &site.join("templates"), "templates/");
}

#[test]
fn s19_an_ancestor_of_the_site_or_the_home_directory_is_refused_untouched() {
    let home = Home::new();
    home.assert_refused(home.path(), &home.path().join("sites"), "holds the site");
    home.assert_refused(&home.site(), Path::new(".."), "holds the site");
    home.assert_refused(home.path(), Path::new("/"), "holds the site");
    // The home directory, even where it is empty of the site.
    let elsewhere = Home::new();
    let result = sited()
        .current_dir(elsewhere.path())
        .env("HOME", home.path().join("photos"))
        .arg("build")
        .arg(elsewhere.site())
        .arg("--out")
        .arg(home.path().join("photos"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert_eq!(result.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("home directory"), "{stderr}");
    assert!(home.path().join("photos/cat.jpg").is_file());
}

#[test]
fn s19_an_existing_file_is_refused_and_not_moved() {
    let home = Home::new();
    let file = home.path().join("sites/notes.txt");
    home.assert_refused(home.path(), &file, "it is a file, not a directory");
}

#[test]
fn s19_a_symlinked_out_dir_is_judged_by_where_it_points() {
    let home = Home::new();
    let links = home.path().join("links");
    fs::create_dir(&links).unwrap();
    std::os::unix::fs::symlink(home.path().join("photos"), links.join("to-photos")).unwrap();
    std::os::unix::fs::symlink(home.site(), links.join("to-site")).unwrap();
    std::os::unix::fs::symlink(home.path(), links.join("to-home")).unwrap();
    std::os::unix::fs::symlink(home.path().join("nowhere"), links.join("dangling")).unwrap();
    home.assert_refused(home.path(), &links.join("to-photos"), "`cat.jpg`");
    home.assert_refused(home.path(), &links.join("to-site"), "the site's own folder");
    home.assert_refused(home.path(), &links.join("to-home"), "holds the site");
    home.assert_refused(home.path(), &links.join("dangling"), "symlink to nothing");

    // A symlink to an empty folder is built into where it points, and stays a symlink.
    let www = home.path().join("www");
    fs::create_dir(&www).unwrap();
    std::os::unix::fs::symlink(&www, links.join("to-www")).unwrap();
    for _ in 0..2 {
        let result = home.build(home.path(), &links.join("to-www"));
        assert!(
            result.status.success(),
            "{}",
            String::from_utf8_lossy(&result.stderr)
        );
        assert!(
            fs::symlink_metadata(links.join("to-www"))
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert!(www.join("posts/a/index.html").is_file());
    }
}

#[test]
fn s19_missing_empty_and_own_outputs_are_written() {
    let home = Home::new();
    let out = home.path().join("new/deep/public");
    let first = home.build(home.path(), &out);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(
        out.join(".sited-output").is_file(),
        "the marker proves it is ours"
    );
    // Its own earlier output is rewritten in place: a file sited did not write is kept.
    fs::write(out.join("kept.html"), "put there by hand").unwrap();
    let second = home.build(home.path(), &out);
    assert!(
        second.status.success(),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );
    assert_eq!(
        fs::read_to_string(out.join("kept.html")).unwrap(),
        "put there by hand"
    );
    assert!(out.join(".sited-manifest").is_file());
    // An empty folder is taken; the default, SITE/public, too.
    let empty = home.path().join("empty");
    fs::create_dir(&empty).unwrap();
    assert!(home.build(home.path(), &empty).status.success());
    assert!(empty.join("index.html").is_file());
    let default = sited()
        .env("HOME", home.path())
        .arg("build")
        .arg(home.site())
        .output()
        .unwrap();
    assert!(
        default.status.success(),
        "{}",
        String::from_utf8_lossy(&default.stderr)
    );
    assert!(home.site().join("public/index.html").is_file());
    // Nothing but the outputs appeared.
    let parent: Vec<_> = fs::read_dir(out.parent().unwrap()).unwrap().collect();
    assert_eq!(parent.len(), 1, "staging left behind");
}

#[test]
fn s19_a_site_whose_root_is_its_content_keeps_outputs_out_of_it() {
    let dir = tempfile::tempdir().unwrap();
    let notes = dir.path().join("notes");
    fs::create_dir(&notes).unwrap();
    fs::write(notes.join("a.md"), "# A\n").unwrap();
    let refused = sited()
        .env("HOME", dir.path())
        .arg("build")
        .arg(&notes)
        .arg("--out")
        .arg(notes.join("html"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("read the output back as content"),
        "{stderr}"
    );
    assert!(!notes.join("html").exists());
    let default = sited()
        .env("HOME", dir.path())
        .arg("build")
        .arg(&notes)
        .output()
        .unwrap();
    assert!(
        default.status.success(),
        "{}",
        String::from_utf8_lossy(&default.stderr)
    );
    assert!(notes.join("public/a/index.html").is_file());
}

/// A site of one page linking to a page it does not have, published somewhere: the one
/// warning its build gives is the link's.
fn site_with_a_broken_link() -> tempfile::TempDir {
    let site = tempfile::tempdir().unwrap();
    fs::create_dir(site.path().join("content")).unwrap();
    fs::write(
        site.path().join("content/a.md"),
        "# A\n\nSee [the missing page](gone.md).\n",
    )
    .unwrap();
    fs::write(
        site.path().join("site.toml"),
        "base_url = \"https://example.org/\"\n",
    )
    .unwrap();
    site
}

#[test]
fn broken_links_are_warnings_counted_in_the_summary_and_strict_makes_them_fail() {
    let site = site_with_a_broken_link();
    let out = site.path().join("out");
    let build = |strict: bool| {
        let mut command = sited();
        command.arg("build").arg(site.path()).arg("--out").arg(&out);
        if strict {
            command.arg("--strict");
        }
        command.output().unwrap()
    };
    let strict = build(true);
    assert_eq!(strict.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&strict.stderr);
    assert!(
        stderr.contains("error: content/a.md:3: link to gone.md leads nowhere"),
        "{stderr}"
    );
    assert!(
        !out.exists(),
        "a strict build with a warning writes nothing"
    );

    let lenient = build(false);
    assert!(lenient.status.success());
    let stderr = String::from_utf8_lossy(&lenient.stderr);
    assert!(
        stderr.contains("warning: content/a.md:3: link to gone.md leads nowhere"),
        "{stderr}"
    );
    let stdout = String::from_utf8_lossy(&lenient.stdout);
    assert!(stdout.contains(", 1 warning → "), "{stdout}");
    assert!(out.join("a/index.html").is_file());
}

#[test]
fn a_rebuild_with_nothing_changed_says_so_writes_nothing_and_warns_again() {
    let site = site_with_a_broken_link();
    let out = site.path().join("out");
    let build = |extra: &[&str]| {
        let result = sited()
            .arg("build")
            .arg(site.path())
            .arg("--out")
            .arg(&out)
            .args(extra)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&result.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&result.stderr).into_owned();
        (result.status.code(), stdout, stderr)
    };
    let page = out.join("a/index.html");
    let identity = || {
        let meta = fs::metadata(&page).unwrap();
        (meta.ino(), meta.modified().unwrap())
    };
    let (code, stdout, _) = build(&[]);
    assert_eq!(code, Some(0));
    assert!(stdout.starts_with("built "), "{stdout}");
    let written = identity();

    let (code, stdout, stderr) = build(&[]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stdout.starts_with("up to date (nothing changed since the last build): "),
        "{stdout}"
    );
    assert!(stdout.contains(", 1 warning → "), "{stdout}");
    assert!(
        stderr.contains("warning: content/a.md:3: link to gone.md leads nowhere"),
        "the warning is told again: {stderr}"
    );
    assert_eq!(identity(), written, "nothing written");

    // Other options are another build: strict fails on the warning, writing nothing.
    let (code, _, stderr) = build(&["--strict"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(identity(), written);
    let (code, stdout, _) = build(&["--force"]);
    assert_eq!(code, Some(0));
    assert!(stdout.starts_with("built "), "forced: {stdout}");

    fs::write(
        site.path().join("content/a.md"),
        "# A\n\nSee [the page](a.md).\n",
    )
    .unwrap();
    let (code, stdout, stderr) = build(&[]);
    assert_eq!(code, Some(0));
    assert!(stdout.starts_with("built "), "an edit builds: {stdout}");
    assert!(!stderr.contains("warning"), "{stderr}");

    // A page of its own, apart from any listing: editing it leaves the others be.
    fs::write(
        site.path().join("content/b.md"),
        "# B\n\nFirst.\n\nSecond.\n",
    )
    .unwrap();
    let (_, stdout, _) = build(&[]);
    let pages: usize = stdout["built ".len()..]
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    fs::write(
        site.path().join("content/b.md"),
        "# B\n\nFirst.\n\nChanged.\n",
    )
    .unwrap();
    let (code, stdout, _) = build(&[]);
    assert_eq!(code, Some(0));
    assert!(
        stdout.starts_with(&format!(
            "built {pages} pages ({} unchanged) and ",
            pages - 1
        )),
        "only the edited page is rendered: {stdout}"
    );
}
