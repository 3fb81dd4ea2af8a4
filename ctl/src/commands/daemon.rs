//! `sitectl daemon start|stop|restart|status`.

use sited_proto::Paths;

use crate::failure::Failure;
use crate::output;
use crate::transport::{self, Daemon};

/// `sitectl daemon start`.
pub async fn start() -> Result<(), Failure> {
    let paths = Paths::from_env().map_err(Failure::paths)?;
    if let Some(daemon) = Daemon::connect(&paths).await? {
        println!(
            "sited {} is already running (pid {})",
            daemon.hello.version, daemon.hello.pid
        );
        return Ok(());
    }
    match transport::launch(&paths) {
        Ok(said) => output::print_note(&said),
        Err(failure) => {
            let Some(daemon) = Daemon::started_by_another(&paths).await? else {
                return Err(failure);
            };
            println!(
                "sited {} is already running (pid {})",
                daemon.hello.version, daemon.hello.pid
            );
        }
    }
    Ok(())
}

/// `sitectl daemon stop`: asks for a clean shutdown and waits until the daemon is gone.
pub async fn stop() -> Result<(), Failure> {
    let paths = Paths::from_env().map_err(Failure::paths)?;
    match transport::stop_daemon(&paths).await? {
        Some(pid) => println!("sited stopped (pid {pid})"),
        None => println!("sited is not running"),
    }
    Ok(())
}

/// `sitectl daemon status`.
pub async fn status() -> Result<(), Failure> {
    let paths = Paths::from_env().map_err(Failure::paths)?;
    match Daemon::connect(&paths).await? {
        Some(daemon) => {
            let sites = daemon.ps().await?;
            println!(
                "sited {} running (pid {}), {} site(s)\n  socket: {}\n  log:    {}",
                daemon.hello.version,
                daemon.hello.pid,
                sites.len(),
                paths.socket.display(),
                paths.log_file.display()
            );
            Ok(())
        }
        None => Err(Failure::unreachable("sited is not running")
            .hint("`sitectl daemon start` starts it; `sitectl up` does too")),
    }
}
