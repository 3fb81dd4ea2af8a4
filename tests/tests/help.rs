//! `--help` of every command as a snapshot (each with examples), the README's command
//! reference checked against it, and the shell completion scripts run in real shells.

use std::collections::BTreeSet;
use std::process::Command;

use sited_tests::{Home, workspace};

/// `BINARY PATH… --help`, which must succeed.
fn help(home: &Home, binary: &str, path: &[&str]) -> String {
    let output = home
        .command(binary)
        .args(path)
        .arg("--help")
        .output()
        .unwrap();
    assert!(output.status.success(), "{path:?}: {output:?}");
    String::from_utf8(output.stdout).unwrap()
}

/// The names listed under `Commands:` in a help text (without `help`).
fn commands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|line| *line != "Commands:")
        .skip(1)
        .take_while(|line| !line.is_empty())
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(String::from)
        .collect()
}

/// The long options listed under `Options:` / `Arguments:` (without help and version).
fn options(help: &str) -> BTreeSet<String> {
    let re = regex::Regex::new(r"^\s+(?:-\w, )?(--[a-z-]+)").unwrap();
    help.lines()
        .filter_map(|line| re.captures(line).map(|c| c[1].to_string()))
        .filter(|option| option != "--help" && option != "--version")
        .collect()
}

/// Every command path of `sitectl`, parents first: `[]`, `["up"]`, `["daemon", "start"]`, ….
fn all_paths(home: &Home) -> Vec<Vec<String>> {
    let mut paths = vec![Vec::new()];
    let mut i = 0;
    while i < paths.len() {
        let path: Vec<&str> = paths[i].iter().map(String::as_str).collect();
        for name in commands(&help(home, "sitectl", &path)) {
            let mut child = paths[i].clone();
            child.push(name);
            paths.push(child);
        }
        i += 1;
    }
    paths
}

#[test]
fn every_sitectl_help_is_a_snapshot_with_examples() {
    let home = Home::new();
    let paths = all_paths(&home);
    assert!(paths.len() > 15, "{paths:?}");
    for path in paths {
        let path: Vec<&str> = path.iter().map(String::as_str).collect();
        let text = help(&home, "sitectl", &path);
        assert!(
            text.contains("Example"),
            "`sitectl {} --help` has no examples",
            path.join(" ")
        );
        let name = format!("sitectl {}", path.join(" "));
        insta::assert_snapshot!(name.trim().replace(' ', "_"), text, &name);
    }
    assert!(!home.socket().exists(), "help starts no daemon");
}

#[test]
fn sited_help_is_a_snapshot() {
    let home = Home::new();
    for path in [vec![], vec!["build"]] {
        let text = help(&home, "sited", &path);
        assert!(text.contains("Example"), "sited {path:?}");
        let name = format!("sited {}", path.join(" "));
        insta::assert_snapshot!(name.trim().replace(' ', "_"), text, &name);
    }
}

#[test]
fn the_readme_command_reference_matches_the_help() {
    let home = Home::new();
    let readme = std::fs::read_to_string(workspace().join("README.md")).unwrap();
    // The rows of the command table.
    let rows: Vec<&str> = readme
        .lines()
        .filter(|line| line.starts_with("| `sitectl "))
        .collect();
    let mut documented = BTreeSet::new();
    for path in all_paths(&home).into_iter().filter(|p| !p.is_empty()) {
        let path: Vec<&str> = path.iter().map(String::as_str).collect();
        let (first, rest) = path.split_first().unwrap();
        let mine: Vec<&str> = rows
            .iter()
            .copied()
            .filter(|row| {
                let cell = row.split(" | ").next().unwrap();
                cell.contains(&format!("`sitectl {first}"))
                    && rest.iter().all(|sub| cell.contains(sub))
            })
            .collect();
        assert!(
            !mine.is_empty(),
            "README.md's command table has no row for `sitectl {}`",
            path.join(" ")
        );
        for option in options(&help(&home, "sitectl", &path)) {
            assert!(
                mine.iter().any(|row| row.contains(&option)),
                "README.md does not mention `sitectl {} {option}`",
                path.join(" ")
            );
        }
        documented.insert(first.to_string());
    }
    // And the other way: every command the README lists exists.
    let named = regex::Regex::new(r"^\| `sitectl ([a-z]+)").unwrap();
    for row in rows {
        let name = &named.captures(row).unwrap()[1];
        assert!(
            documented.contains(name),
            "README.md documents `sitectl {name}`, which --help does not list"
        );
    }
}

fn completion_script(shell: &str) -> tempfile::NamedTempFile {
    let home = Home::new();
    let output = home.sitectl(&["completions", shell]);
    assert!(output.status.success(), "{output:?}");
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &output.stdout).unwrap();
    file
}

/// Lines a shell printed, checked to have run.
fn run_shell(program: &str, args: &[&str]) -> String {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program} is needed for this test (.ci/run installs it): {e}"));
    assert!(output.status.success(), "{program} {args:?}: {output:?}");
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn bash_completes_commands_and_options() {
    let script = completion_script("bash");
    let complete = |line: &str| {
        // As bash calls it: COMP_* set, and $1 $2 $3 the command, the word being
        // completed and the one before it.
        let words: Vec<&str> = line.split(' ').collect();
        let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
        let n = words.len();
        let body = format!(
            "source '{}'; COMP_WORDS=({}); COMP_CWORD={}; COMP_LINE='{line}'; \
             COMP_POINT=${{#COMP_LINE}}; _sitectl sitectl '{}' '{}'; \
             printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            script.path().display(),
            quoted.join(" "),
            n - 1,
            words[n - 1],
            words[n - 2],
        );
        run_shell("bash", &["--norc", "--noprofile", "-c", &body])
    };
    assert_eq!(complete("sitectl re"), "restart\nrebuild\n");
    let down = complete("sitectl down --");
    assert!(down.lines().any(|w| w == "--all"), "{down}");
    let shells = complete("sitectl completions ");
    let shells: Vec<&str> = shells.lines().filter(|w| !w.starts_with('-')).collect();
    assert_eq!(shells, ["bash", "zsh", "fish"]);
}

#[test]
fn fish_completes_commands() {
    let script = completion_script("fish");
    let body = format!(
        "source '{}'; complete --do-complete 'sitectl re'",
        script.path().display()
    );
    let out = run_shell("fish", &["--no-config", "-c", &body]);
    let names: Vec<&str> = out.lines().filter_map(|l| l.split('\t').next()).collect();
    assert_eq!(names, ["rebuild", "restart"], "{out}");
}

#[test]
fn zsh_completion_script_is_valid_zsh() {
    let script = completion_script("zsh");
    let text = std::fs::read_to_string(script.path()).unwrap();
    assert!(text.starts_with("#compdef sitectl"), "{text}");
    for command in ["restart", "rebuild", "open", "completions"] {
        assert!(text.contains(&format!("'{command}:")), "{command} missing");
    }
    run_shell("zsh", &["--no-rcs", "-n", script.path().to_str().unwrap()]);
}
