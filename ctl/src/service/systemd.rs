//! The systemd side of `sitectl service`: renders `sited.service` (Type=notify) and
//! `sited.socket` (socket activation) for this machine, and drives `systemctl --user`.

use std::path::{Path, PathBuf};

use super::{Setup, Written};
use crate::failure::Failure;

/// The annotated originals this module renders.
const SERVICE_TEMPLATE: &str = include_str!("../../../systemd/sited.service");
const SOCKET_TEMPLATE: &str = include_str!("../../../systemd/sited.socket");

const SERVICE: &str = "sited.service";
const SOCKET: &str = "sited.socket";
/// Where the sockets of a user manager live: `%t` is `$XDG_RUNTIME_DIR`, which is also
/// where sitectl looks when `SITED_HOME` is unset.
const DEFAULT_LISTEN: &str = "ListenStream=%t/sited/sited.sock";

/// The command that finishes the job by hand.
const FINISH: &str =
    "systemctl --user daemon-reload && systemctl --user enable --now sited.socket sited.service";

/// Escapes `%` (systemd specifiers) in a unit-file value.
fn specifiers(value: &str) -> String {
    value.replace('%', "%%")
}

/// One `ExecStart=` word: specifiers and `$` escaped, quoted if it has blanks or quotes.
fn exec_word(value: &str) -> String {
    let escaped = specifiers(value).replace('$', "$$");
    if escaped
        .chars()
        .any(|c| c.is_whitespace() || matches!(c, '"' | '\'' | '\\' | ';'))
    {
        format!("\"{}\"", escaped.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        escaped
    }
}

/// The first word of an `ExecStart=` value, unescaped: the program it runs.
fn exec_program(value: &str) -> String {
    let value = value.trim_start();
    let word = if let Some(quoted) = value.strip_prefix('"') {
        let mut word = String::new();
        let mut chars = quoted.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => word.extend(chars.next()),
                '"' => break,
                c => word.push(c),
            }
        }
        word
    } else {
        value.split_whitespace().next().unwrap_or("").to_string()
    };
    word.replace("$$", "$").replace("%%", "%")
}

/// The header that replaces the template's install instructions.
fn header(name: &str) -> String {
    format!(
        "# Written by `sitectl service install` (sited {}) for this machine; `sitectl service\n\
         # uninstall` removes it. The annotated original is systemd/{name} in sited's sources.\n",
        sited_proto::VERSION
    )
}

/// The template without its leading comment block.
fn body(template: &str) -> impl Iterator<Item = &str> {
    template
        .lines()
        .skip_while(|line| line.starts_with('#') || line.trim().is_empty())
}

fn render_service(setup: &Setup) -> Result<String, Failure> {
    let sited = exec_word(super::utf8(&setup.sited)?);
    let mut out = header(SERVICE);
    for line in body(SERVICE_TEMPLATE) {
        out.push_str(&line.replace("@SITED@", &sited));
        out.push('\n');
        if line == "[Service]"
            && let Some(home) = &setup.home
        {
            let home = specifiers(super::utf8(home)?)
                .replace('\\', "\\\\")
                .replace('"', "\\\"");
            out.push_str(&format!("Environment=\"SITED_HOME={home}\"\n"));
        }
    }
    Ok(out)
}

fn render_socket(setup: &Setup) -> Result<String, Failure> {
    let mut out = header(SOCKET);
    for line in body(SOCKET_TEMPLATE) {
        if line == DEFAULT_LISTEN && setup.home.is_some() {
            // A relocated home keeps its socket under it; sitectl looks there.
            let socket = specifiers(super::utf8(&setup.paths.socket)?);
            out.push_str(&format!("ListenStream={socket}\n"));
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    Ok(out)
}

/// Why `systemctl --user` cannot be used here, if it cannot.
fn manager_unavailable() -> Option<String> {
    match super::run("systemctl", &["--user", "is-system-running"]) {
        Err(error) => Some(format!("cannot run systemctl: {error}")),
        Ok(output) => {
            let state = String::from_utf8_lossy(&output.stdout).trim().to_string();
            // Degraded means some unit failed, not that the manager is gone.
            if matches!(
                state.as_str(),
                "running" | "degraded" | "starting" | "initializing" | "maintenance"
            ) {
                None
            } else {
                Some(format!(
                    "no systemd user manager is running here (`systemctl --user \
                     is-system-running`: {})",
                    super::said(&output)
                ))
            }
        }
    }
}

/// `systemctl --user is-active UNIT` says it is up (or coming up).
fn is_active(unit: &str) -> bool {
    super::run("systemctl", &["--user", "is-active", unit]).is_ok_and(|output| {
        matches!(
            String::from_utf8_lossy(&output.stdout).trim(),
            "active" | "activating" | "reloading"
        )
    })
}

/// The symlink `systemctl enable` makes for a unit with `WantedBy=TARGET`.
fn wants_link(dir: &Path, target: &str, unit: &str) -> PathBuf {
    dir.join(format!("{target}.wants")).join(unit)
}

pub async fn install(setup: &Setup) -> Result<(), Failure> {
    let service = setup.dir.join(SERVICE);
    let socket = setup.dir.join(SOCKET);
    let changed = [
        super::write_file(&service, &render_service(setup)?)?,
        super::write_file(&socket, &render_socket(setup)?)?,
    ]
    .iter()
    .any(|written| *written != Written::Unchanged);
    println!("  runs {}", setup.sited.display());
    if let Some(reason) = manager_unavailable() {
        return Err(Failure::service(
            format!("{reason}, so the units are written but not enabled: autostart is off"),
            Some(format!(
                "in a login session with systemd (or after `loginctl enable-linger`), run: {FINISH}"
            )),
        ));
    }
    super::run_reported("systemctl", &["--user", "daemon-reload"])?;
    let managed = is_active(SERVICE) || is_active(SOCKET);
    if !managed {
        super::stop_unmanaged_daemon(&setup.paths, "systemd").await?;
    }
    super::run_reported("systemctl", &["--user", "enable", "--now", SOCKET, SERVICE])?;
    if managed && changed {
        // The running daemon is the old binary or settings: swap it. Calls made
        // meanwhile wait in the socket's queue.
        super::run_reported("systemctl", &["--user", "restart", SERVICE])?;
    }
    println!(
        "autostart is on: systemd starts sited at login, restarts it if it fails, and \
         starts it on the first sitectl call after a stop"
    );
    Ok(())
}

pub fn uninstall(dir: &Path) -> Result<(), Failure> {
    let service = dir.join(SERVICE);
    let socket = dir.join(SOCKET);
    let unavailable = manager_unavailable();
    if unavailable.is_none() && (service.exists() || socket.exists()) {
        // Stops the daemon too; its detached sites are stopped with it. A failure (say,
        // one of the two files was already deleted by hand) must not keep the rest from
        // being removed.
        if let Err(failure) = super::run_reported(
            "systemctl",
            &["--user", "disable", "--now", SOCKET, SERVICE],
        ) {
            crate::output::print_warning(&failure);
        }
    }
    // What `disable` removes, in case no manager was there to do it.
    let mut removed = false;
    for link in [
        wants_link(dir, "default.target", SERVICE),
        wants_link(dir, "sockets.target", SOCKET),
    ] {
        if link.is_symlink() {
            removed |= super::remove_file(&link)?;
        }
    }
    removed |= super::remove_file(&service)?;
    removed |= super::remove_file(&socket)?;
    if !removed {
        println!(
            "sited.service is not installed in {}; nothing to do",
            dir.display()
        );
        return Ok(());
    }
    if unavailable.is_none() {
        super::run_reported("systemctl", &["--user", "daemon-reload"])?;
    }
    println!("autostart is off: sitectl starts the daemon on demand, as before");
    Ok(())
}

pub fn status(setup: &Setup) -> Result<(), Failure> {
    let service = setup.dir.join(SERVICE);
    let Ok(unit) = std::fs::read_to_string(&service) else {
        println!("unit:      {} (not installed)", service.display());
        return Err(Failure::service(
            "autostart is off: sited.service is not installed".into(),
            Some("`sitectl service install` installs and enables it".into()),
        ));
    };
    let runs = unit
        .lines()
        .find_map(|line| line.strip_prefix("ExecStart="))
        .map(|value| PathBuf::from(exec_program(value)));
    println!("unit:      {}", service.display());
    let current = super::print_runs(runs.as_deref(), &setup.sited);
    let socket = setup.dir.join(SOCKET);
    println!(
        "socket:    {} ({})",
        socket.display(),
        if socket.exists() {
            "installed"
        } else {
            "missing: no socket activation"
        }
    );
    let unavailable = manager_unavailable();
    let enabled = match &unavailable {
        None => super::run("systemctl", &["--user", "is-enabled", SERVICE]).is_ok_and(|out| {
            matches!(
                String::from_utf8_lossy(&out.stdout).trim(),
                "enabled" | "enabled-runtime" | "linked" | "alias"
            )
        }),
        Some(_) => wants_link(&setup.dir, "default.target", SERVICE).exists(),
    };
    match &unavailable {
        None => println!(
            "autostart: {}; the service is {}",
            if enabled {
                "on (enabled)"
            } else {
                "off (not enabled)"
            },
            if is_active(SERVICE) {
                "active"
            } else {
                "not active"
            }
        ),
        Some(reason) => println!(
            "autostart: {} ({reason})",
            if enabled {
                "on (enabled)"
            } else {
                "off (not enabled)"
            }
        ),
    }
    if !current {
        return Err(Failure::service(
            format!(
                "sited.service runs {}, not the sited next to this sitectl ({})",
                runs.as_deref()
                    .map_or("nothing".into(), |p| p.display().to_string()),
                setup.sited.display()
            ),
            Some("`sitectl service install` points it at this one".into()),
        ));
    }
    if !enabled {
        return Err(Failure::service(
            "autostart is off: sited.service is installed but not enabled".into(),
            Some(match unavailable {
                None => "`sitectl service install` enables it".into(),
                Some(_) => format!("in a login session with systemd, run: {FINISH}"),
            }),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use sited_proto::Paths;

    fn setup(sited: &str, home: Option<&str>) -> Setup {
        Setup {
            sited: PathBuf::from(sited),
            paths: match home {
                Some(home) => Paths::under(Path::new(home)).unwrap(),
                None => Paths::under(Path::new("/unused")).unwrap(),
            },
            home: home.map(PathBuf::from),
            dir: PathBuf::from("/unused"),
        }
    }

    #[test]
    fn the_unit_runs_this_binary_under_notify_and_restarts_on_failure() {
        let unit = render_service(&setup("/opt/sited/bin/sited", None)).unwrap();
        assert!(
            unit.contains("\nExecStart=/opt/sited/bin/sited\n"),
            "{unit}"
        );
        for line in [
            "Type=notify",
            "Restart=on-failure",
            "RestartPreventExitStatus=3",
            "WantedBy=default.target",
        ] {
            assert!(unit.lines().any(|l| l == line), "{line} missing:\n{unit}");
        }
        assert!(!unit.contains("@SITED@") && !unit.contains("Environment="));
        assert!(unit.starts_with("# Written by `sitectl service install`"));
        assert!(
            !unit.contains("sed \""),
            "the by-hand instructions are dropped"
        );
    }

    #[test]
    fn a_relocated_home_is_passed_on_and_its_socket_listened_on() {
        let setup = setup("/bin/sited", Some("/home/me/sited 100%"));
        let unit = render_service(&setup).unwrap();
        assert!(
            unit.contains("[Service]\nEnvironment=\"SITED_HOME=/home/me/sited 100%%\"\n"),
            "{unit}"
        );
        let socket = render_socket(&setup).unwrap();
        assert!(
            socket.contains("\nListenStream=/home/me/sited 100%%/run/sited.sock\n"),
            "{socket}"
        );
        let default = render_socket(&self::setup("/bin/sited", None)).unwrap();
        assert!(
            default.contains(&format!("\n{DEFAULT_LISTEN}\n")),
            "{default}"
        );
        assert!(default.contains("\nSocketMode=0600\n"));
    }

    #[test]
    fn exec_start_words_round_trip() {
        for path in [
            "/usr/local/bin/sited",
            "/home/me/my tools/sited",
            "/odd/100%/$HOME/\"q\"/sited",
        ] {
            let word = exec_word(path);
            assert_eq!(exec_program(&format!("{word} --flag")), path, "{word}");
        }
        assert_eq!(exec_word("/a b/sited"), "\"/a b/sited\"");
    }
}
