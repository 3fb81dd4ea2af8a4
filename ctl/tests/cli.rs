//! sitectl's own surface: help, usage errors and exit codes, with no daemon involved.

use std::process::Command;

fn sitectl(home: &std::path::Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sitectl"));
    command.env("SITED_HOME", home);
    command
}

#[test]
fn help_lists_every_command_with_examples() {
    let home = tempfile::tempdir().unwrap();
    let out = sitectl(home.path()).arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for command in ["up", "down", "ps", "daemon", "service"] {
        assert!(
            help.contains(&format!("  {command} ")),
            "{command} missing: {help}"
        );
    }
    assert!(help.contains("Examples:"), "{help}");
    assert!(help.contains("Exit codes"), "{help}");
}

#[test]
fn usage_errors_exit_2() {
    let home = tempfile::tempdir().unwrap();
    let out = sitectl(home.path()).args(["down"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "down needs a target or --all");
    let out = sitectl(home.path())
        .args(["up", "--port", "notaport"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn status_without_a_daemon_exits_3_and_starts_nothing() {
    let home = tempfile::tempdir().unwrap();
    let out = sitectl(home.path())
        .args(["daemon", "status"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("error: sited is not running"),
        "{stderr}"
    );
    assert!(!home.path().join("run/sited.sock").exists());
    let out = sitectl(home.path())
        .args(["daemon", "stop"])
        .output()
        .unwrap();
    assert!(out.status.success(), "stopping a stopped daemon is fine");
}
