//! A generator's output folder read into the output shape sited's own builder makes, so
//! serving (live-reload injection, ETags, Host checks, the 404 page) treats both alike.
//!
//! Every file is read into memory: the folder is replaced by the next build, and a
//! request must see one build whole, never a file of the next one. Tags are hashes of the
//! bytes, so a rebuild that leaves a file as it was leaves its URL unchanged (no reload).

use std::io;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use sited_builder::{Output, Resource};

/// Reads the folder `dir` into an output: `a/b.css` at `/a/b.css`, and each `index.html`
/// also at its folder's URL (`a/index.html` at `/a/`). Hidden files and symlinks are left
/// out: a generator's output is served, not whatever it links to.
pub fn read_output(dir: &Path) -> io::Result<Output> {
    let mut output = Output::default();
    read_dir(dir, "/", &mut output)?;
    Ok(output)
}

fn read_dir(dir: &Path, url: &str, output: &mut Output) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            tracing::warn!(
                "{}: not served, its name is not UTF-8",
                entry.path().display()
            );
            continue;
        };
        if name.starts_with('.') {
            continue;
        }
        let kind = entry.file_type()?;
        if kind.is_dir() {
            read_dir(&entry.path(), &format!("{url}{name}/"), output)?;
        } else if kind.is_file() {
            let path = entry.path();
            let bytes = Bytes::from(std::fs::read(&path)?);
            let content_type: Arc<str> = Arc::from(sited_builder::output::content_type_for(&path));
            let resource = Resource::memory(bytes, content_type);
            if name == "index.html" {
                output.resources.insert(url.to_string(), resource.clone());
            }
            output.resources.insert(format!("{url}{name}"), resource);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_served_at_their_paths_and_index_pages_at_their_folders() {
        let dir = tempfile::tempdir().unwrap();
        for (path, text) in [
            ("index.html", "<p>home"),
            ("posts/a/index.html", "<p>a"),
            ("site.css", "body{}"),
            ("404.html", "gone"),
            (".hidden/x.html", "no"),
            (".env", "SECRET"),
        ] {
            let path = dir.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("passwd")).unwrap();
        let output = read_output(dir.path()).unwrap();
        let mut urls: Vec<&str> = output.resources.keys().map(String::as_str).collect();
        urls.sort_unstable();
        assert_eq!(
            urls,
            [
                "/",
                "/404.html",
                "/index.html",
                "/posts/a/",
                "/posts/a/index.html",
                "/site.css"
            ]
        );
        let css = output.get("/site.css").unwrap();
        assert_eq!(&*css.content_type, "text/css; charset=utf-8");
        assert!(output.get("/posts/a/").unwrap().is_html());
        assert!(
            output
                .get("/")
                .unwrap()
                .same_as(output.get("/index.html").unwrap())
        );
    }
}
