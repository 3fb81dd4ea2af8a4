//! What the benchmark harnesses in `src/bin/` share: the tldr corpus copied for both
//! sited and Hugo, the smallest Hugo site that renders it, `hugo server` as a child, free
//! ports and milliseconds.

use std::fs;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Copies a Markdown tree, escaping `{{<` and `{{%` (Hugo would read them as shortcodes)
/// the same way in every copy; other files are copied as they are. Returns the number of
/// Markdown files.
pub fn copy_escaped(from: &Path, to: &Path) -> usize {
    fs::create_dir_all(to).unwrap();
    let mut count = 0;
    for entry in fs::read_dir(from).unwrap().flatten() {
        let path = entry.path();
        let target = to.join(entry.file_name());
        if path.is_dir() {
            count += copy_escaped(&path, &target);
        } else if path.extension().is_some_and(|e| e == "md") {
            let text = fs::read_to_string(&path).unwrap();
            fs::write(&target, text.replace("{{<", "{ {<").replace("{{%", "{ {%")).unwrap();
            count += 1;
        } else {
            fs::copy(&path, &target).unwrap();
        }
    }
    count
}

/// The smallest Hugo site that renders every page: `hugo.toml` and two layouts. Without
/// `sitemap`, Hugo makes no sitemap (a dev-server comparison); with it, it makes one as
/// sited does (a build comparison).
pub fn write_hugo_site(root: &Path, sitemap: bool) {
    let disabled = if sitemap {
        r#"["taxonomy", "term", "RSS"]"#
    } else {
        r#"["taxonomy", "term", "RSS", "sitemap"]"#
    };
    fs::write(
        root.join("hugo.toml"),
        format!("baseURL = \"http://127.0.0.1/\"\ntitle = \"tldr\"\ndisableKinds = {disabled}\n"),
    )
    .unwrap();
    let layouts = root.join("layouts/_default");
    fs::create_dir_all(&layouts).unwrap();
    fs::write(
        layouts.join("single.html"),
        "<!doctype html><html><head><title>{{ .Title }}</title></head><body><h1>{{ .Title }}</h1>{{ .Content }}</body></html>\n",
    )
    .unwrap();
    fs::write(
        layouts.join("list.html"),
        "<!doctype html><html><head><title>{{ .Title }}</title></head><body><h1>{{ .Title }}</h1><ul>{{ range .Pages }}<li><a href=\"{{ .RelPermalink }}\">{{ .Title }}</a></li>{{ end }}</ul></body></html>\n",
    )
    .unwrap();
}

/// A port the OS has free now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind(("127.0.0.1", 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// `hugo server` as a child, stopped when dropped.
#[derive(Debug)]
pub struct HugoServer(Child);

impl HugoServer {
    pub fn start(root: &Path, port: u16) -> HugoServer {
        let child = Command::new("hugo")
            .args(["server", "--bind", "127.0.0.1", "--port", &port.to_string()])
            .arg("--source")
            .arg(root)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("run hugo (the bench/ scripts install it)");
        HugoServer(child)
    }

    pub fn stop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for HugoServer {
    fn drop(&mut self) {
        self.stop();
    }
}
