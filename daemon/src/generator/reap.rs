//! Generator groups a dead daemon left behind. While a generator runs, its process
//! group is recorded in a pid file under the state dir; a run that ends removes it. A
//! daemon killed outright (SIGKILL, a crash) cannot: Linux's parent-death signal then
//! kills the generator itself, but not what it started, and macOS has no such signal. So
//! the next daemon start kills every recorded group that still has a live process running
//! the recorded program, and removes the records.
//!
//! Portable on purpose: the group's members are listed with `ps -A -o pid=,pgid=,stat=,comm=`,
//! which Linux's procps and macOS's ps both understand.
//!
//! The process-group primitives (signal a group, does it still have a live member) live
//! here too: a running generator's end (`child`) uses them as the reaping does.

use std::path::Path;
use std::process::Command;

/// Records that group `pgid` runs `program`.
pub fn record(pid_file: &Path, pgid: i32, program: &str) {
    if let Some(dir) = pid_file.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let name = base_name(program);
    if let Err(error) = std::fs::write(pid_file, format!("{pgid} {name}\n")) {
        tracing::warn!(
            "cannot record generator group in {}: {error}; a daemon crash may leave it running",
            pid_file.display()
        );
    }
}

/// Kills the groups recorded in `dir` that still run their program, and removes every
/// record. Returns the groups killed.
pub fn reap_recorded(dir: &Path) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut killed = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "pid") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let mut words = text.split_whitespace();
        let record = words
            .next()
            .and_then(|pgid| pgid.parse::<i32>().ok())
            .filter(|&pgid| pgid > 1)
            .zip(words.next());
        if let Some((pgid, program)) = record {
            let members = live_members(pgid);
            // A reused group id runs something else: leave it alone.
            if members.iter().any(|(_, comm)| base_name(comm) == program) {
                tracing::warn!(
                    pgid,
                    "killing {program} (process group {pgid}) left running by an earlier daemon"
                );
                let _ = signal_group(pgid, libc::SIGKILL);
                killed.push(pgid);
            }
        }
        let _ = std::fs::remove_file(&path);
    }
    killed
}

/// The live (not zombie) processes of group `pgid`: pid and command name.
pub fn live_members(pgid: i32) -> Vec<(i32, String)> {
    let Ok(out) = Command::new("ps")
        .args(["-A", "-o", "pid=,pgid=,stat=,comm="])
        .output()
    else {
        return Vec::new();
    };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let pid = fields.next()?.parse().ok()?;
            let group: i32 = fields.next()?.parse().ok()?;
            let stat = fields.next()?;
            let comm = fields.collect::<Vec<_>>().join(" ");
            (group == pgid && !stat.starts_with('Z')).then_some((pid, comm))
        })
        .collect()
}

/// Whether the group had any process (a zombie included) to signal.
pub(super) fn signal_group(pgid: i32, signal: i32) -> bool {
    // SAFETY: kill takes plain integers. A negative pid names the group, which is the
    // child's own (pgid = its pid) and cannot be reused while any member lives.
    #[allow(unsafe_code)]
    unsafe {
        libc::kill(-pgid, signal) == 0
    }
}

/// Whether group `pgid` has a process that is not a zombie.
pub fn group_has_live(pgid: i32) -> bool {
    #[cfg(target_os = "linux")]
    {
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return false;
        };
        entries.flatten().any(|entry| {
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
                return false;
            };
            // pid (comm) state ppid pgrp ...: comm may hold spaces and parentheses.
            let Some(after) = stat.rfind(')').and_then(|i| stat.get(i + 2..)) else {
                return false;
            };
            let mut fields = after.split(' ');
            let state = fields.next();
            let group = fields.nth(1).and_then(|g| g.parse::<i32>().ok());
            group == Some(pgid) && !matches!(state, Some("Z" | "X"))
        })
    }
    #[cfg(not(target_os = "linux"))]
    {
        !live_members(pgid).is_empty()
    }
}

/// `comm` is at most 15 bytes on Linux: compare names cut alike.
fn base_name(program: &str) -> String {
    let name = Path::new(program)
        .file_name()
        .map_or_else(|| program.to_string(), |n| n.to_string_lossy().into_owned());
    name.chars().take(15).collect()
}
