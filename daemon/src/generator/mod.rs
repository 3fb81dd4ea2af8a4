//! Sites built by another program (Hugo, Zola, mdBook or any `[build] command`): which
//! builder a site gets ([`choose`]), and the external build itself ([`External`]), with
//! the same call shape as [`sited_builder::Site`] so the site actor holds either.
//!
//! An external build runs the program as a supervised child ([`child`]) writing into a
//! fresh folder sited owns under its state dir (`generated/<site>/build-N`); a good build
//! is read into the builder's output shape ([`load`]) and becomes the folder kept, the
//! one before it is removed. A failed build (non-zero exit, over its time limit, output
//! unreadable) is a report with one error carrying the program's last lines, and the
//! output of the last good build, which keeps being served.

pub mod child;
pub mod command;
pub mod load;
pub mod reap;
pub mod shim;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use sited_builder::detect::{self, Detected, Generator};
use sited_builder::{BuildResult, Cancel, Changes, Diagnostic, Failure, Output, Reload, Report};

pub use command::Spec;

/// The folder under the state dir that holds every external build's output and the
/// records of running generator groups.
pub const STATE_SUBDIR: &str = "generated";
const PIDS_SUBDIR: &str = "pids";

/// Which builder a site gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    /// sited's own.
    Native,
    External(Spec),
}

/// A [`Choice`] and, when sited's builder takes a site that was written for a program
/// that is not installed, a warning saying what will differ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chosen {
    pub choice: Choice,
    pub warning: Option<String>,
}

/// The generators a site can be brought up `--with`, besides `native`.
pub const WITH_NAMES: &[&str] = &["native", "hugo", "zola", "mdbook"];

/// Decides who builds the site at `root`: `with` (`native`, `hugo`, `zola`, `mdbook`)
/// wins, then `[build]` in `site.toml`; otherwise sited's builder, except for a Hugo or
/// Zola site with templates of its own, which its generator builds when installed.
/// `installed` answers whether a program is on `PATH` (a parameter for the tests).
pub fn choose(
    root: &Path,
    with: Option<&str>,
    drafts: bool,
    installed: impl Fn(&str) -> bool,
) -> Result<Chosen, String> {
    let chosen = |choice| Chosen {
        choice,
        warning: None,
    };
    match with {
        Some("native") => return Ok(chosen(Choice::Native)),
        Some(name) => {
            let generator = Generator::from_name(name).ok_or_else(|| {
                format!(
                    "unknown generator {name:?}: --with takes {}",
                    WITH_NAMES.join(", ")
                )
            })?;
            if !installed(name) {
                return Err(format!(
                    "--with {name}: {name} is not installed (not found on the daemon's PATH)"
                ));
            }
            return Ok(chosen(Choice::External(Spec::preset(generator, drafts))));
        }
        None => {}
    }
    if let Some(section) = detect::build_section(root).map_err(|d| d.to_string())? {
        return Spec::from_section(&section)
            .map(|spec| chosen(Choice::External(spec)))
            .map_err(|error| format!("site.toml: {error}"));
    }
    let Some(Detected {
        generator,
        own_templates: Some(what),
    }) = detect::detect(root)
    else {
        return Ok(chosen(Choice::Native));
    };
    if generator == Generator::Mdbook {
        return Ok(chosen(Choice::Native));
    }
    let program = generator.program();
    if installed(program) {
        return Ok(chosen(Choice::External(Spec::preset(generator, drafts))));
    }
    let title = match generator {
        Generator::Hugo => "Hugo",
        Generator::Zola => "Zola",
        Generator::Mdbook => "mdBook",
    };
    Ok(Chosen {
        choice: Choice::Native,
        warning: Some(format!(
            "a {title} site with {what} of its own, but {program} is not installed: sited's \
             builder takes its content with sited's templates and theme instead, so pages will \
             look different; install {program}, or choose with `sitectl up --with \
             {program}|native`"
        )),
    })
}

/// Prepares the state dir at daemon start: kills generator groups an earlier daemon left
/// running and removes the build folders it left. Everything under
/// `state_dir/generated/` is sited's own.
pub fn clean_state(state_dir: &Path) {
    let base = state_dir.join(STATE_SUBDIR);
    reap::reap_recorded(&base.join(PIDS_SUBDIR));
    if base.exists()
        && let Err(error) = std::fs::remove_dir_all(&base)
    {
        tracing::warn!("cannot remove old builds in {}: {error}", base.display());
    }
}

/// A site built by another program.
#[derive(Debug)]
pub struct External {
    /// Canonical.
    root: PathBuf,
    spec: Spec,
    base_url: String,
    /// `state_dir/generated/<site>`: sited's, every `build-N` in it too.
    dir: PathBuf,
    pid_file: PathBuf,
    cancel: Cancel,
    /// Paths inside the site that are not part of it (the daemon's own state).
    exclude: Vec<PathBuf>,
    serial: u64,
    /// See [`child::Job::shim`].
    shim: Option<PathBuf>,
    /// The folder of the last good build, and what was read from it.
    current: Option<PathBuf>,
    last: Option<Arc<Output>>,
}

impl External {
    /// A site at `root` (canonical) to be built by `spec`, served at `base_url`, with its
    /// builds under `state_dir`.
    pub fn new(
        root: PathBuf,
        spec: Spec,
        base_url: String,
        state_dir: &Path,
        cancel: Cancel,
        exclude: Vec<PathBuf>,
    ) -> External {
        let key = site_key(&root);
        let base = state_dir.join(STATE_SUBDIR);
        External {
            dir: base.join(&key),
            pid_file: base.join(PIDS_SUBDIR).join(format!("{key}.pid")),
            root,
            spec,
            base_url,
            cancel,
            exclude,
            serial: 0,
            shim: None,
            current: None,
            last: None,
        }
    }

    /// Runs the generator under the daemon's binary `sited` ([`shim`]), so that its
    /// children die with the daemon too.
    pub fn with_shim(mut self, sited: Option<PathBuf>) -> External {
        self.shim = sited;
        self
    }

    /// What `ps` shows as the site's builder.
    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// The cancel flag every build of this site checks.
    pub fn cancel(&self) -> &Cancel {
        &self.cancel
    }

    /// Whether any of `paths` can change the output: anything in the site but hidden
    /// files, editors' temporary files, the generator's own output and caches, and
    /// excluded paths.
    pub fn affects_output(&self, paths: &[PathBuf]) -> bool {
        paths.iter().any(|path| self.is_source(path))
    }

    fn is_source(&self, path: &Path) -> bool {
        let Ok(relative) = path.strip_prefix(&self.root) else {
            return false;
        };
        if self.exclude.iter().any(|x| path.starts_with(x))
            || path.starts_with(&self.dir)
            || self
                .spec
                .in_place
                .as_ref()
                .is_some_and(|out| relative.starts_with(out))
        {
            return false;
        }
        let mut names = relative.iter().map(|n| n.to_string_lossy());
        let first = names.next();
        if matches!(first.as_deref(), Some("public" | "node_modules" | "target"))
            // Hugo's cache: it makes `resources/` (and `_gen/` in it) when it builds.
            || relative == Path::new("resources")
            || relative.starts_with("resources/_gen")
        {
            return false;
        }
        let hidden = relative
            .iter()
            .any(|name| name.to_string_lossy().starts_with('.'));
        let name = relative
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let temporary = name.ends_with('~')
            || name.ends_with(".swp")
            || name.ends_with(".swx")
            || name == "4913";
        !hidden && !temporary
    }

    /// Runs the program once and reads what it made; see the module docs. Only a
    /// cancelled build is an `Err`: a failed one is a report with an error.
    pub fn build(&mut self, _changes: Changes) -> Result<BuildResult, Failure> {
        let started = Instant::now();
        self.serial += 1;
        let out = self.dir.join(format!("build-{}", self.serial));
        if let Err(error) = self.prepare(&out) {
            return Ok(self.failed(
                format!("cannot prepare {}: {error}", out.display()),
                started,
            ));
        }
        let job = child::Job {
            argv: self.spec.argv_for(&out, &self.base_url, &self.root),
            cwd: self.root.clone(),
            timeout: self.spec.timeout,
            pid_file: Some(self.pid_file.clone()),
            shim: self.shim.clone(),
        };
        let outcome = child::run(&job, &self.cancel);
        let why = match outcome.ended {
            child::Ended::Cancelled => {
                remove(&out);
                return Err(Failure::Cancelled);
            }
            child::Ended::Exited(status) if status.success() => {
                let source = match &self.spec.in_place {
                    Some(dir) => self.root.join(dir),
                    None => out.clone(),
                };
                match load::read_output(&source) {
                    Ok(output) => return Ok(self.succeeded(out, output, started)),
                    Err(error) => format!(
                        "{} succeeded but its output {} cannot be read: {error}",
                        self.spec.name,
                        source.display()
                    ),
                }
            }
            child::Ended::Exited(status) => format!("{} failed ({status})", self.spec.name),
            child::Ended::TimedOut => format!(
                "{} ran past its limit of {}s and was killed ([build] timeout in site.toml)",
                self.spec.name,
                self.spec.timeout.as_secs()
            ),
            child::Ended::NotStarted(error) => {
                format!("cannot run {:?}: {error}", job.argv[0])
            }
        };
        remove(&out);
        let mut message = why;
        if !outcome.tail.is_empty() {
            message.push_str(":\n");
            message.push_str(&outcome.tail.join("\n"));
        }
        Ok(self.failed(message, started))
    }

    /// A fresh output folder (or its parent, for a program that makes it itself).
    fn prepare(&self, out: &Path) -> std::io::Result<()> {
        if self.serial == 1 && self.dir.exists() {
            // Left by an earlier life of this site: sited's own folder.
            std::fs::remove_dir_all(&self.dir)?;
        }
        if out.exists() {
            std::fs::remove_dir_all(out)?;
        }
        std::fs::create_dir_all(if self.spec.create_out { out } else { &self.dir })
    }

    fn succeeded(&mut self, out: PathBuf, output: Output, started: Instant) -> BuildResult {
        let output = Arc::new(output);
        let reload = match &self.last {
            None => Reload::Full,
            Some(last) => {
                let urls = output.changed_since(last);
                if urls.is_empty() {
                    Reload::Nothing
                } else if urls.iter().all(|url| url.ends_with(".css"))
                    && urls.iter().all(|url| output.get(url).is_some())
                {
                    Reload::Styles(urls)
                } else {
                    Reload::Pages(urls)
                }
            }
        };
        // Swapped: the new folder is the one kept; the one before goes.
        if let Some(old) = self.current.replace(out) {
            remove(&old);
        }
        if self.spec.in_place.is_some()
            && let Some(current) = &self.current
        {
            // The program wrote in place: the folder of ours it was given is unused.
            remove(current);
        }
        self.last = Some(output.clone());
        BuildResult {
            report: report(&output, started, Vec::new()),
            output,
            reload,
        }
    }

    fn failed(&self, message: String, started: Instant) -> BuildResult {
        let output = self.last.clone().unwrap_or_default();
        let error = Diagnostic::error(&self.spec.name, message);
        BuildResult {
            report: report(&output, started, vec![error]),
            output,
            reload: Reload::Nothing,
        }
    }
}

fn report(output: &Output, started: Instant, diagnostics: Vec<Diagnostic>) -> Report {
    let pages = output
        .resources
        .iter()
        .filter(|(url, r)| r.is_html() && !url.ends_with("/index.html"))
        .count();
    Report {
        pages,
        files: output.resources.values().filter(|r| !r.is_html()).count(),
        rendered: pages,
        duration: started.elapsed(),
        diagnostics,
        up_to_date: false,
    }
}

fn remove(dir: &Path) {
    if dir.exists()
        && let Err(error) = std::fs::remove_dir_all(dir)
    {
        tracing::warn!("cannot remove {}: {error}", dir.display());
    }
}

/// The folder name of a site's builds: its folder's name and a hash of its path.
fn site_key(root: &Path) -> String {
    use std::hash::{Hash, Hasher};
    let mut hasher = rustc_hash::FxHasher::default();
    root.hash(&mut hasher);
    let name: String = root
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
        .take(32)
        .collect();
    format!("{name}-{:016x}", hasher.finish())
}

#[cfg(test)]
mod tests;
