//! The generator's first process when the daemon runs from its binary: `sited
//! __generator PROGRAM ARGS...` leads the generator's process group, runs the generator
//! in it and exits as it exits. It exists for one moment: the daemon's death. Linux's
//! parent-death signal reaches only the daemon's direct child, so a generator's own
//! children would outlive a daemon killed outright; the shim gets that signal (SIGTERM)
//! and kills its whole group, itself included. A SIGTERM, SIGINT or SIGHUP from the daemon
//! (a timeout, a site going down) does the same.

use std::ffi::OsString;
use std::process::{Command, ExitCode};

/// The hidden first argument that makes `sited` the shim.
pub const ARG: &str = "__generator";

/// What the shim turns into its group's end. The daemon starts it with them blocked.
pub const SIGNALS: [libc::c_int; 3] = [libc::SIGTERM, libc::SIGINT, libc::SIGHUP];

extern "C" fn kill_group(_: libc::c_int) {
    // SAFETY: kill is async-signal-safe; 0 names the caller's own group.
    #[allow(unsafe_code)]
    unsafe {
        libc::kill(0, libc::SIGKILL);
    }
}

/// Runs the generator given by `argv` (program first) and returns its exit code.
pub fn main(argv: Vec<OsString>) -> ExitCode {
    // SAFETY: installs a handler that only calls kill (the generator, being exec'd,
    // starts with the default disposition again), then unblocks what the daemon blocked:
    // a signal that came meanwhile is delivered now.
    #[allow(unsafe_code)]
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for signal in SIGNALS {
            libc::signal(signal, kill_group as *const () as libc::sighandler_t);
            libc::sigaddset(&mut set, signal);
        }
        libc::sigprocmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
    }
    let Some((program, args)) = argv.split_first() else {
        return ExitCode::from(2);
    };
    match Command::new(program).args(args).status() {
        Ok(status) => {
            let code = status.code().unwrap_or_else(|| {
                128 + std::os::unix::process::ExitStatusExt::signal(&status).unwrap_or(0)
            });
            ExitCode::from(u8::try_from(code).unwrap_or(1))
        }
        Err(error) => {
            let program = program.to_string_lossy();
            // Read by the daemon from this process's stderr, as the generator's output.
            #[allow(clippy::print_stderr)]
            {
                eprintln!("cannot run {program:?}: {error}");
            }
            ExitCode::from(127)
        }
    }
}
