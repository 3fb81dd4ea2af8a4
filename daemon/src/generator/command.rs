//! What to run for a site built by another program: the well-known generators' presets,
//! a `[build] command` from `site.toml` split the way a shell splits words (but run
//! without one, so nothing in it is expanded or executed beyond the program itself), and
//! the placeholders `{out}`, `{base_url}` and `{root}`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sited_builder::detect::{BuildSection, CommandLine, Generator};

/// How long a build may run unless `[build] timeout` says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// One site's external build, fixed for the site's life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    /// What `ps` shows: the generator's name or the command's program.
    pub name: String,
    /// The command, placeholders not yet filled in.
    pub argv: Vec<String>,
    /// Where the program writes, relative to the site, when it writes in place; `None`:
    /// into `{out}`, a fresh directory of sited's.
    pub in_place: Option<PathBuf>,
    /// Whether `{out}` exists (empty) when the program starts. Zola refuses to build into
    /// an existing directory; everything else is handed one.
    pub create_out: bool,
    pub timeout: Duration,
}

impl Spec {
    /// The preset for a well-known generator.
    pub fn preset(generator: Generator, drafts: bool) -> Spec {
        let words: &[&str] = match generator {
            Generator::Hugo => &[
                "hugo",
                "--destination",
                "{out}",
                "--baseURL",
                "{base_url}",
                // Hugo otherwise leaves .hugo_build.lock in the site.
                "--noBuildLock",
            ],
            Generator::Zola => &[
                "zola",
                "build",
                "--output-dir",
                "{out}",
                "--base-url",
                "{base_url}",
            ],
            Generator::Mdbook => &["mdbook", "build", "--dest-dir", "{out}"],
        };
        let mut argv: Vec<String> = words.iter().map(|w| w.to_string()).collect();
        if drafts {
            match generator {
                Generator::Hugo => argv.push("--buildDrafts".into()),
                Generator::Zola => argv.push("--drafts".into()),
                // A book has no drafts: SUMMARY.md decides what is in it.
                Generator::Mdbook => {}
            }
        }
        Spec {
            name: generator.program().to_string(),
            argv,
            in_place: None,
            create_out: generator != Generator::Zola,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// The build `site.toml` asks for.
    pub fn from_section(section: &BuildSection) -> Result<Spec, String> {
        let argv = match &section.command {
            Some(CommandLine::Line(line)) => split(line)?,
            Some(CommandLine::Argv(argv)) => argv.clone(),
            None => return Err("[build] needs a `command`".into()),
        };
        let Some(program) = argv.first().filter(|p| !p.is_empty()) else {
            return Err("[build] command is empty".into());
        };
        if let Some(output) = &section.output
            && (output.is_absolute() || output.components().any(|c| c.as_os_str() == ".."))
        {
            return Err(format!(
                "[build] output = {:?} must be a folder inside the site",
                output.display()
            ));
        }
        let name = Path::new(program)
            .file_name()
            .map_or_else(|| program.clone(), |n| n.to_string_lossy().into_owned());
        Ok(Spec {
            name,
            argv: argv.clone(),
            in_place: section.output.clone(),
            create_out: true,
            timeout: section.timeout.map_or(DEFAULT_TIMEOUT, Duration::from_secs),
        })
    }

    /// The command with its placeholders filled in.
    pub fn argv_for(&self, out: &Path, base_url: &str, root: &Path) -> Vec<String> {
        self.argv
            .iter()
            .map(|word| {
                word.replace("{out}", &out.to_string_lossy())
                    .replace("{base_url}", base_url)
                    .replace("{root}", &root.to_string_lossy())
            })
            .collect()
    }
}

/// Splits a command line into words as a POSIX shell does, without expanding anything:
/// blanks separate words, `'...'` is literal, `"..."` is literal but for `\"`, `\\`,
/// `\$` and `` \` ``, and a backslash outside quotes escapes the next character.
pub fn split(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\n' => {
                if let Some(done) = word.take() {
                    words.push(done);
                }
            }
            '\'' => {
                let word = word.get_or_insert_default();
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err(format!("unclosed ' in {line:?}")),
                    }
                }
            }
            '"' => {
                let word = word.get_or_insert_default();
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => word.push(c),
                            Some(c) => {
                                word.push('\\');
                                word.push(c);
                            }
                            None => return Err(format!("unclosed \" in {line:?}")),
                        },
                        Some(c) => word.push(c),
                        None => return Err(format!("unclosed \" in {line:?}")),
                    }
                }
            }
            '\\' => match chars.next() {
                Some(c) => word.get_or_insert_default().push(c),
                None => return Err(format!("a trailing backslash in {line:?}")),
            },
            c => word.get_or_insert_default().push(c),
        }
    }
    words.extend(word);
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_lines_split_as_a_shell_would_with_nothing_expanded() {
        assert_eq!(
            split("hugo  --destination {out}\t--baseURL {base_url}").unwrap(),
            ["hugo", "--destination", "{out}", "--baseURL", "{base_url}"]
        );
        assert_eq!(
            split(r#"sh -c 'echo $HOME; rm -rf x' "a \"b\" \$c" d\ e '' x"y"z"#).unwrap(),
            [
                "sh",
                "-c",
                "echo $HOME; rm -rf x",
                "a \"b\" $c",
                "d e",
                "",
                "xyz"
            ]
        );
        assert!(split("echo 'open").unwrap_err().contains("unclosed '"));
        assert!(split("echo \"open").unwrap_err().contains("unclosed \""));
        assert!(split("echo \\").is_err());
    }

    #[test]
    fn placeholders_are_filled_in_every_word() {
        let spec = Spec::preset(Generator::Hugo, true);
        assert_eq!(
            spec.argv_for(
                Path::new("/s/out-1"),
                "http://127.0.0.1:4000/",
                Path::new("/r")
            ),
            [
                "hugo",
                "--destination",
                "/s/out-1",
                "--baseURL",
                "http://127.0.0.1:4000/",
                "--noBuildLock",
                "--buildDrafts"
            ]
        );
        let section = BuildSection {
            command: Some(CommandLine::Line("make OUT={out} ROOT={root}".into())),
            output: None,
            timeout: Some(5),
        };
        let spec = Spec::from_section(&section).unwrap();
        assert_eq!(spec.name, "make");
        assert_eq!(spec.timeout, Duration::from_secs(5));
        assert_eq!(
            spec.argv_for(Path::new("/o"), "u", Path::new("/r")),
            ["make", "OUT=/o", "ROOT=/r"]
        );
    }

    #[test]
    fn presets_of_the_well_known_three() {
        let zola = Spec::preset(Generator::Zola, true);
        assert_eq!(
            zola.argv,
            [
                "zola",
                "build",
                "--output-dir",
                "{out}",
                "--base-url",
                "{base_url}",
                "--drafts"
            ]
        );
        assert!(!zola.create_out, "zola refuses an existing output dir");
        let book = Spec::preset(Generator::Mdbook, true);
        assert_eq!(book.argv, ["mdbook", "build", "--dest-dir", "{out}"]);
        assert!(Spec::preset(Generator::Hugo, false).create_out);
    }

    #[test]
    fn an_output_outside_the_site_is_refused() {
        for output in ["/tmp/x", "../x", "a/../../x"] {
            let section = BuildSection {
                command: Some(CommandLine::Argv(vec!["mdbook".into(), "build".into()])),
                output: Some(output.into()),
                timeout: None,
            };
            let error = Spec::from_section(&section).unwrap_err();
            assert!(error.contains("inside the site"), "{output}: {error}");
        }
        let empty = BuildSection {
            command: Some(CommandLine::Line("  ".into())),
            output: None,
            timeout: None,
        };
        assert!(Spec::from_section(&empty).unwrap_err().contains("empty"));
    }
}
