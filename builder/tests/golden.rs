//! Golden tests: each folder of `tests/golden/` is a case holding an `input/` site and the
//! `expected/` output tree a build of it makes (the files `sited build` would write), plus
//! `diagnostics.txt` when the build reports any. The builder runs in-process; a case
//! takes milliseconds.
//!
//! An optional `case.toml` sets the build's options (`drafts = true`, `strict = true`) and whether the
//! theme's assets (`/theme.css` and `/favicon.svg`, the same bytes for every site) are
//! part of the case (`theme_assets = true`; only the `theme` case holds them).
//!
//! After an intended change of output, re-bless every case and read the diff:
//!
//! ```sh
//! SITED_BLESS=1 cargo test -p sited-builder --test golden
//! git diff builder/tests/golden
//! ```

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use sited_builder::url::url_to_file;
use sited_builder::{Options, build_once, theme};

/// What a case asks of its build.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
struct CaseOptions {
    drafts: bool,
    theme_assets: bool,
    /// A strict build (`sited build --strict`): warnings are errors.
    strict: bool,
}

fn cases_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// The build of a case: relative file → bytes, and the diagnostics as text.
fn build(case: &Path) -> (BTreeMap<PathBuf, Vec<u8>>, String) {
    let options: CaseOptions = match fs::read_to_string(case.join("case.toml")) {
        Ok(text) => toml::from_str(&text).expect("case.toml"),
        Err(_) => CaseOptions::default(),
    };
    let built = build_once(
        &case.join("input"),
        Options {
            drafts: options.drafts,
            strict: options.strict,
            ..Options::default()
        },
    )
    .expect("the build ran");
    let mut files = BTreeMap::new();
    for url in built.output.resources.keys() {
        let is_theme_asset = theme::ASSETS.iter().any(|(asset, ..)| url == asset);
        if is_theme_asset && !options.theme_assets {
            continue;
        }
        let file = url_to_file(url).unwrap_or_else(|| panic!("{url} has no file"));
        let bytes = common::bytes(&built.output, url).expect("readable");
        files.insert(file, bytes);
    }
    let diagnostics: String = built
        .report
        .diagnostics
        .iter()
        .map(|d| format!("{:?}: {d}\n", d.severity))
        .collect();
    (files, diagnostics)
}

/// Every file under `dir`, relative to it.
fn read_tree(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        let Ok(entries) = fs::read_dir(&path) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path.strip_prefix(dir).unwrap().to_path_buf();
                files.insert(rel, fs::read(&path).unwrap());
            }
        }
    }
    files
}

/// Replaces the case's expectations with what the build made.
fn bless(case: &Path, files: &BTreeMap<PathBuf, Vec<u8>>, diagnostics: &str) {
    let expected = case.join("expected");
    let _ = fs::remove_dir_all(&expected);
    for (rel, bytes) in files {
        let path = expected.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, bytes).unwrap();
    }
    let path = case.join("diagnostics.txt");
    if diagnostics.is_empty() {
        let _ = fs::remove_file(path);
    } else {
        fs::write(path, diagnostics).unwrap();
    }
}

/// How the build differs from the expectations, one line per file; empty if it does not.
fn differences(case: &Path, files: &BTreeMap<PathBuf, Vec<u8>>, diagnostics: &str) -> Vec<String> {
    let expected = read_tree(&case.join("expected"));
    let mut found = Vec::new();
    for (rel, bytes) in files {
        match expected.get(rel) {
            None => found.push(format!("{}: not expected", rel.display())),
            Some(want) if want != bytes => {
                found.push(format!(
                    "{}: {}",
                    rel.display(),
                    first_difference(want, bytes)
                ));
            }
            Some(_) => {}
        }
    }
    for rel in expected.keys().filter(|rel| !files.contains_key(*rel)) {
        found.push(format!("{}: expected but not built", rel.display()));
    }
    let want = fs::read_to_string(case.join("diagnostics.txt")).unwrap_or_default();
    if want != diagnostics {
        found.push(format!(
            "diagnostics.txt: expected\n{want}but the build reported\n{diagnostics}"
        ));
    }
    found
}

/// The first line where two texts differ, both ways.
fn first_difference(want: &[u8], got: &[u8]) -> String {
    let (want, got) = (String::from_utf8_lossy(want), String::from_utf8_lossy(got));
    let mut lines = want.lines().zip(got.lines()).enumerate();
    match lines.find(|(_, (a, b))| a != b) {
        Some((n, (a, b))) => format!("line {}:\n  expected: {a}\n  built:    {b}", n + 1),
        None => format!(
            "{} lines expected, {} built",
            want.lines().count(),
            got.lines().count()
        ),
    }
}

fn check(name: &str) {
    let case = cases_dir().join(name);
    assert!(case.join("input").is_dir(), "no case at {}", case.display());
    let (files, diagnostics) = build(&case);
    if std::env::var_os("SITED_BLESS").is_some_and(|v| v == "1") {
        bless(&case, &files, &diagnostics);
        return;
    }
    let found = differences(&case, &files, &diagnostics);
    assert!(
        found.is_empty(),
        "golden case `{name}` differs (if the change is intended, re-bless with \
         `SITED_BLESS=1 cargo test -p sited-builder --test golden` and read the diff):\n{}",
        found.join("\n")
    );
}

macro_rules! cases {
    ($($name:ident => $dir:literal,)*) => {
        $(
            #[test]
            fn $name() {
                check($dir);
            }
        )*

        #[test]
        fn every_case_folder_is_a_test() {
            let listed = [$($dir),*];
            for entry in fs::read_dir(cases_dir()).unwrap() {
                let name = entry.unwrap().file_name().into_string().unwrap();
                assert!(listed.contains(&name.as_str()), "case {name} is not in the list");
            }
        }
    };
}

cases! {
    front_matter_toml => "front-matter-toml",
    front_matter_yaml => "front-matter-yaml",
    front_matter_json => "front-matter-json",
    pagination => "pagination",
    loose_notes => "loose-notes",
    base_url_path => "base-url-path",
    taxonomies => "taxonomies",
    navigation => "navigation",
    sections => "sections",
    index_and_readme => "index-and-readme",
    drafts_left_out => "drafts",
    drafts_included => "drafts-included",
    links => "links",
    link_check => "link-check",
    link_check_strict => "link-check-strict",
    mdbook => "mdbook",
    markdown => "markdown",
    tags => "tags",
    feeds => "feeds",
    sitemap => "sitemap",
    highlighting => "highlighting",
    errors => "errors",
    theme => "theme",
    template_overrides => "template-overrides",
    static_files => "static-files",
    template_errors_once_per_template => "template-errors",
}
