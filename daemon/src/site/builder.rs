//! Who builds a site: sited's own builder or another program ([`crate::generator`]),
//! behind one call shape, chosen once when the site starts.

use std::path::PathBuf;
use std::sync::Arc;

use sited_builder::{BuildResult, Cancel, Changes, Failure, Progress, Site, Wanted};

use super::SiteConfig;
use crate::generator::{self, Choice, External};

/// A site's builder, keeping what its last build made.
#[derive(Debug)]
pub enum Builder {
    Native(Box<Site>),
    External(Box<External>),
}

impl Builder {
    /// The builder `config` asks for or the site calls for, and a warning when sited's
    /// builder takes a site it cannot build as its author meant. An error when the
    /// choice cannot be met (`--with` a program that is not installed, a bad `[build]`).
    pub fn choose(
        config: &SiteConfig,
        progress: &Arc<Progress>,
        cancel: &Cancel,
        panic_function: bool,
        exclude: &[PathBuf],
        wanted: Option<&Wanted>,
    ) -> Result<(Builder, Option<String>), String> {
        let chosen = generator::choose(
            &config.root,
            config.with.as_deref(),
            config.drafts,
            generator::child::installed,
        )?;
        let builder = match chosen.choice {
            Choice::Native => {
                Builder::native(config, progress, cancel, panic_function, exclude, wanted)
            }
            Choice::External(spec) => {
                let state_dir = config.work_dir();
                Builder::External(Box::new(
                    External::new(
                        config.root.clone(),
                        spec,
                        config.host.url(config.port),
                        &state_dir,
                        cancel.clone(),
                        exclude.iter().cloned().chain([state_dir.clone()]).collect(),
                    )
                    .with_shim(sited_binary()),
                ))
            }
        };
        Ok((builder, chosen.warning))
    }

    /// sited's own builder for the site of `config`; it renders first what `wanted`
    /// asks for (another program builds in its own order).
    pub fn native(
        config: &SiteConfig,
        progress: &Arc<Progress>,
        cancel: &Cancel,
        panic_function: bool,
        exclude: &[PathBuf],
        wanted: Option<&Wanted>,
    ) -> Builder {
        let options = super::publish::options(
            config,
            progress,
            cancel,
            panic_function,
            exclude.to_vec(),
            wanted,
        );
        Builder::Native(Box::new(Site::open(config.root.clone(), options)))
    }

    /// What `ps` shows: `native`, or the program's name.
    pub fn name(&self) -> &str {
        match self {
            Builder::Native(_) => "native",
            Builder::External(external) => external.name(),
        }
    }

    /// Whether a build's `Reload::Pages` lists every URL whose resource differs from
    /// the last build's, and `Reload::Nothing` means none does, so that publishing may
    /// apply just those. sited's own builder promises it; another program's build is a
    /// new folder each time, whose every file is a new resource.
    pub fn lists_its_changes(&self) -> bool {
        matches!(self, Builder::Native(_))
    }

    pub fn affects_output(&self, paths: &[PathBuf]) -> bool {
        match self {
            Builder::Native(site) => site.affects_output(paths),
            Builder::External(external) => external.affects_output(paths),
        }
    }

    /// Blocking: run it off the async runtime. An external build must run on a thread
    /// that outlives its child (the parent-death signal is tied to the spawning thread).
    pub fn build(&mut self, changes: Changes) -> Result<BuildResult, Failure> {
        match self {
            Builder::Native(site) => site.build(changes),
            Builder::External(external) => external.build(changes),
        }
    }
}

/// The running `sited` binary, which doubles as the generators' shim; `None` when this
/// is not it (the library's own tests).
fn sited_binary() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    (exe.file_name()? == "sited").then_some(exe)
}
