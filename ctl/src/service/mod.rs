//! `sitectl service install|uninstall|status`: autostart at login.
//!
//! Writes the systemd user units (Linux) or the launchd agent (macOS) for this machine —
//! the absolute path of the `sited` installed next to this `sitectl`, and `SITED_HOME`
//! when it is set — and asks the service manager to enable and start them. Where no
//! manager runs (containers, CI, a shell outside a login session) the files are still
//! written, and the command says plainly what is left to do by hand.
//!
//! The files are rendered from the annotated originals in `systemd/` and `launchd/`, so
//! what a person installs by hand and what `sitectl` writes are the same units.
//! `SITED_SERVICE_DIR` (or the hidden `--unit-dir`) puts them in another directory, for
//! packaging and tests; everything else stays the same.

mod launchd;
mod systemd;

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use sited_proto::Paths;

use crate::failure::Failure;

/// Which service manager to write for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Manager {
    Systemd,
    Launchd,
}

impl Manager {
    /// The one this platform runs.
    pub fn native() -> Manager {
        if cfg!(target_os = "macos") {
            Manager::Launchd
        } else {
            Manager::Systemd
        }
    }
}

/// What `sitectl service …` was asked.
#[derive(Debug, Clone)]
pub struct Options {
    pub manager: Manager,
    /// Where the unit files go, instead of the manager's per-user directory.
    pub dir: Option<PathBuf>,
}

/// Everything the unit files are rendered from.
#[derive(Debug)]
struct Setup {
    /// The canonical path of the `sited` next to this `sitectl`.
    sited: PathBuf,
    /// Where the daemon will keep its socket, lock and log.
    paths: Paths,
    /// `SITED_HOME`, absolute, when set: the units must pass it on.
    home: Option<PathBuf>,
    /// Where the unit files go.
    dir: PathBuf,
}

impl Setup {
    fn new(options: &Options) -> Result<Setup, Failure> {
        let paths = Paths::from_env().map_err(|error| Failure::service(error.to_string(), None))?;
        let home = std::env::var_os(sited_proto::paths::HOME_ENV)
            .filter(|home| !home.is_empty())
            .map(|home| std::path::absolute(Path::new(&home)).unwrap_or_else(|_| home.into()));
        let dir = match &options.dir {
            Some(dir) => std::path::absolute(dir).unwrap_or_else(|_| dir.clone()),
            None => default_dir(options.manager)?,
        };
        Ok(Setup {
            sited: installed_sited()?,
            paths,
            home,
            dir,
        })
    }
}

/// The manager's per-user unit directory.
fn default_dir(manager: Manager) -> Result<PathBuf, Failure> {
    let dirs = directories::BaseDirs::new().ok_or_else(|| {
        Failure::service(
            "cannot find your home directory".into(),
            Some("set HOME, or SITED_SERVICE_DIR to the directory for the unit files".into()),
        )
    })?;
    Ok(match manager {
        // $XDG_CONFIG_HOME/systemd/user, where `systemctl --user` looks first.
        Manager::Systemd => dirs.config_dir().join("systemd/user"),
        Manager::Launchd => dirs.home_dir().join("Library/LaunchAgents"),
    })
}

/// The `sited` next to this `sitectl`, canonicalized: the unit must name a real file
/// that stays valid whatever the current directory or symlink it was called through.
fn installed_sited() -> Result<PathBuf, Failure> {
    let exe = std::env::current_exe()
        .map_err(|error| Failure::service(format!("cannot find this sitectl: {error}"), None))?;
    let candidate = exe
        .parent()
        .map(|dir| dir.join("sited"))
        .unwrap_or_else(|| PathBuf::from("sited"));
    candidate
        .canonicalize()
        .ok()
        .filter(|path| path.is_file())
        .ok_or_else(|| {
            Failure::service(
                format!(
                    "there is no sited next to this sitectl ({})",
                    candidate.display()
                ),
                Some("install both binaries into the same directory, then run this again".into()),
            )
        })
}

pub async fn install(options: &Options) -> Result<(), Failure> {
    let setup = Setup::new(options)?;
    match options.manager {
        Manager::Systemd => systemd::install(&setup).await,
        Manager::Launchd => launchd::install(&setup).await,
    }
}

pub fn uninstall(options: &Options) -> Result<(), Failure> {
    let dir = match &options.dir {
        Some(dir) => dir.clone(),
        None => default_dir(options.manager)?,
    };
    match options.manager {
        Manager::Systemd => systemd::uninstall(&dir),
        Manager::Launchd => launchd::uninstall(&dir),
    }
}

pub fn status(options: &Options) -> Result<(), Failure> {
    let setup = Setup::new(options)?;
    match options.manager {
        Manager::Systemd => systemd::status(&setup),
        Manager::Launchd => launchd::status(&setup),
    }
}

/// Whether a file was written or already said the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Written {
    Created,
    Updated,
    Unchanged,
}

/// Writes `contents` to `path` unless it already holds exactly that: atomically (temp
/// file, fsync, rename) so a crash never leaves half a unit, and idempotently.
/// Prints which `sited` the installed unit runs; `true` if it is the one next to this
/// `sitectl`.
fn print_runs(runs: Option<&Path>, sited: &Path) -> bool {
    let current = runs == Some(sited);
    println!(
        "runs:      {} ({})",
        runs.map_or("nothing".into(), |p| p.display().to_string()),
        if current {
            "the sited next to this sitectl".to_string()
        } else {
            format!("not this sitectl's sited, {}", sited.display())
        }
    );
    current
}

fn write_file(path: &Path, contents: &str) -> Result<Written, Failure> {
    let existing = fs::read_to_string(path).ok();
    if existing.as_deref() == Some(contents) {
        println!("unchanged {}", path.display());
        return Ok(Written::Unchanged);
    }
    let failed = |error: std::io::Error| {
        Failure::service(format!("cannot write {}: {error}", path.display()), None)
    };
    let dir = path.parent().expect("unit files live in a directory");
    fs::create_dir_all(dir).map_err(failed)?;
    let temp = dir.join(format!(
        ".{}.tmp",
        path.file_name().expect("a file name").to_string_lossy()
    ));
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .open(&temp)
        .map_err(failed)?;
    file.write_all(contents.as_bytes()).map_err(failed)?;
    file.sync_all().map_err(failed)?;
    fs::rename(&temp, path).map_err(failed)?;
    let written = if existing.is_some() {
        Written::Updated
    } else {
        Written::Created
    };
    println!(
        "{} {}",
        if written == Written::Created {
            "wrote"
        } else {
            "updated"
        },
        path.display()
    );
    Ok(written)
}

/// Removes `path` if it exists; says whether it did.
fn remove_file(path: &Path) -> Result<bool, Failure> {
    match fs::remove_file(path) {
        Ok(()) => {
            println!("removed {}", path.display());
            Ok(true)
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(error) => Err(Failure::service(
            format!("cannot remove {}: {error}", path.display()),
            None,
        )),
    }
}

/// Runs a service-manager command, capturing its output. `Err` only if it could not run.
fn run(program: &str, args: &[&str]) -> std::io::Result<Output> {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
}

/// Runs a command that must succeed, and reports it.
fn run_reported(program: &str, args: &[&str]) -> Result<(), Failure> {
    let shown = format!("{program} {}", args.join(" "));
    let output = run(program, args)
        .map_err(|error| Failure::service(format!("cannot run `{shown}`: {error}"), None))?;
    if !output.status.success() {
        return Err(Failure::service(
            format!("`{shown}` failed ({}): {}", output.status, said(&output)),
            None,
        ));
    }
    println!("ran {shown}");
    Ok(())
}

/// What a command said, stderr first, on one line.
fn said(output: &Output) -> String {
    let text = format!(
        "{} {}",
        String::from_utf8_lossy(&output.stderr),
        String::from_utf8_lossy(&output.stdout)
    );
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A daemon that `sitectl` started on its own (not the service manager) would keep the
/// socket and lock: stop it so the manager's daemon can take over.
async fn stop_unmanaged_daemon(paths: &Paths, manager: &str) -> Result<(), Failure> {
    if let Some(pid) = crate::transport::stop_daemon(paths).await? {
        println!(
            "stopped the sited that was running outside {manager} (pid {pid}), so that \
             {manager} runs it from now on"
        );
    }
    Ok(())
}

/// The path as a `str`: unit files are text.
fn utf8(path: &Path) -> Result<&str, Failure> {
    path.to_str().ok_or_else(|| {
        Failure::service(
            format!(
                "{} is not valid UTF-8, which unit files need",
                path.display()
            ),
            Some("install sited under a path with a UTF-8 name".into()),
        )
    })
}
