//! The launchd side of `sitectl service`: renders the LaunchAgent plist for this machine
//! and drives `launchctl` (bootstrap into, and bootout of, the `gui/<uid>` domain).

use std::path::{Path, PathBuf};

use super::{Setup, Written};
use crate::failure::Failure;

/// The annotated original this module renders.
const TEMPLATE: &str = include_str!("../../../launchd/dev.sited.sited.plist");

const LABEL: &str = "dev.sited.sited";

fn plist_path(dir: &Path) -> PathBuf {
    dir.join(format!("{LABEL}.plist"))
}

/// The per-user launchd domain.
fn domain() -> String {
    format!("gui/{}", sited_proto::paths::current_uid())
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn xml_unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

fn render(setup: &Setup) -> Result<String, Failure> {
    // The template's comment holds the by-hand instructions; the rendered file says who
    // wrote it instead.
    let start = TEMPLATE.find("<!--").expect("the template has a comment");
    let end = TEMPLATE.find("-->").expect("the template has a comment") + "-->".len();
    let comment = format!(
        "<!-- Written by `sitectl service install` (sited {}) for this machine; `sitectl\n     \
         service uninstall` removes it. The annotated original is launchd/{LABEL}.plist in\n     \
         sited's sources. -->",
        sited_proto::VERSION
    );
    let mut out = format!("{}{comment}{}", &TEMPLATE[..start], &TEMPLATE[end..]);
    out = out
        .replace("@SITED@", &xml_escape(super::utf8(&setup.sited)?))
        .replace("@LOG@", &xml_escape(super::utf8(&setup.paths.log_file)?));
    if let Some(home) = &setup.home {
        let environment = format!(
            "  <key>EnvironmentVariables</key>\n  <dict>\n    <key>SITED_HOME</key>\n    \
             <string>{}</string>\n  </dict>\n",
            xml_escape(super::utf8(home)?)
        );
        let at = out
            .find("  <key>ProgramArguments</key>")
            .expect("the template has ProgramArguments");
        out.insert_str(at, &environment);
    }
    Ok(out)
}

/// The program a plist runs: the first string of `ProgramArguments`.
fn program(plist: &str) -> Option<PathBuf> {
    let rest = &plist[plist.find("<key>ProgramArguments</key>")?..];
    let start = rest.find("<string>")? + "<string>".len();
    let end = start + rest[start..].find("</string>")?;
    Some(PathBuf::from(xml_unescape(&rest[start..end])))
}

/// Why `launchctl` cannot be used here, if it cannot.
fn manager_unavailable() -> Option<String> {
    match super::run("launchctl", &["print", &domain()]) {
        Err(error) => Some(format!("cannot run launchctl: {error}")),
        Ok(output) if !output.status.success() => Some(format!(
            "no launchd session for you here (`launchctl print {}`: {})",
            domain(),
            super::said(&output)
        )),
        Ok(_) => None,
    }
}

fn is_loaded() -> bool {
    super::run("launchctl", &["print", &format!("{}/{LABEL}", domain())])
        .is_ok_and(|output| output.status.success())
}

pub async fn install(setup: &Setup) -> Result<(), Failure> {
    let plist = plist_path(&setup.dir);
    // launchd opens the log itself and does not create its directory.
    setup
        .paths
        .ensure_dirs()
        .map_err(|error| Failure::service(error.to_string(), None))?;
    let written = super::write_file(&plist, &render(setup)?)?;
    println!("  runs {}", setup.sited.display());
    println!("  logs to {}", setup.paths.log_file.display());
    let bootstrap = format!("launchctl bootstrap {} {}", domain(), plist.display());
    if let Some(reason) = manager_unavailable() {
        return Err(Failure::service(
            format!(
                "{reason}, so the agent is written but not loaded; it loads at your next login"
            ),
            Some(format!("to start it now, run: {bootstrap}")),
        ));
    }
    let target = format!("{}/{LABEL}", domain());
    let loaded = is_loaded();
    if loaded && written != Written::Unchanged {
        // launchd keeps the definition it loaded: unload it to load the new one.
        super::run_reported("launchctl", &["bootout", &target])?;
    }
    if !loaded {
        super::stop_unmanaged_daemon(&setup.paths, "launchd").await?;
    }
    // A job once disabled (`launchctl disable`) refuses to bootstrap.
    super::run_reported("launchctl", &["enable", &target])?;
    if !loaded || written != Written::Unchanged {
        let plist = super::utf8(&plist)?;
        super::run_reported("launchctl", &["bootstrap", &domain(), plist])?;
    }
    println!("autostart is on: launchd starts sited at login and restarts it if it fails");
    Ok(())
}

pub fn uninstall(dir: &Path) -> Result<(), Failure> {
    let plist = plist_path(dir);
    if !plist.exists() {
        println!(
            "{LABEL} is not installed in {}; nothing to do",
            dir.display()
        );
        return Ok(());
    }
    if manager_unavailable().is_none() && is_loaded() {
        // Stops the daemon too; its detached sites are stopped with it.
        if let Err(failure) =
            super::run_reported("launchctl", &["bootout", &format!("{}/{LABEL}", domain())])
        {
            crate::output::print_warning(&failure);
        }
    }
    super::remove_file(&plist)?;
    println!("autostart is off: sitectl starts the daemon on demand, as before");
    Ok(())
}

pub fn status(setup: &Setup) -> Result<(), Failure> {
    let plist = plist_path(&setup.dir);
    let Ok(text) = std::fs::read_to_string(&plist) else {
        println!("agent:     {} (not installed)", plist.display());
        return Err(Failure::service(
            format!("autostart is off: {LABEL} is not installed"),
            Some("`sitectl service install` installs and loads it".into()),
        ));
    };
    let runs = program(&text);
    println!("agent:     {}", plist.display());
    let current = super::print_runs(runs.as_deref(), &setup.sited);
    match manager_unavailable() {
        None => println!(
            "autostart: on (at login); the agent is {}",
            if is_loaded() { "loaded" } else { "not loaded" }
        ),
        Some(reason) => println!("autostart: on (at login); loaded now: unknown ({reason})"),
    }
    if !current {
        return Err(Failure::service(
            format!(
                "{LABEL} runs {}, not the sited next to this sitectl ({})",
                runs.as_deref()
                    .map_or("nothing".into(), |p| p.display().to_string()),
                setup.sited.display()
            ),
            Some("`sitectl service install` points it at this one".into()),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use sited_proto::Paths;

    fn setup(sited: &str, home: &str, relocated: bool) -> Setup {
        Setup {
            sited: PathBuf::from(sited),
            paths: Paths::under(Path::new(home)).unwrap(),
            home: relocated.then(|| PathBuf::from(home)),
            dir: PathBuf::from("/unused"),
        }
    }

    #[test]
    fn the_agent_runs_this_binary_and_logs_to_the_state_dir() {
        let plist = render(&setup("/Apps/S&S/sited", "/Users/me/h", false)).unwrap();
        assert!(
            plist.contains("<string>/Apps/S&amp;S/sited</string>"),
            "{plist}"
        );
        assert!(plist.contains("<string>/Users/me/h/state/sited.log</string>"));
        assert!(!plist.contains('@') && !plist.contains("EnvironmentVariables"));
        assert!(plist.contains("<!-- Written by `sitectl service install`"));
        assert_eq!(program(&plist), Some(PathBuf::from("/Apps/S&S/sited")));
    }

    #[test]
    fn a_relocated_home_is_passed_on() {
        let plist = render(&setup("/bin/sited", "/tmp/h", true)).unwrap();
        assert!(
            plist.contains("<key>SITED_HOME</key>\n    <string>/tmp/h</string>"),
            "{plist}"
        );
        assert_eq!(program(&plist), Some(PathBuf::from("/bin/sited")));
    }
}
