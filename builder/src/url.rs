//! URL paths: the URL of a file served as it is, the file a URL is written to, slugs, and
//! percent-encoding both ways. Output maps are keyed by decoded paths (`/café/`); what goes
//! into an `href` is encoded (`/caf%C3%A9/`).

use std::path::{Component, Path, PathBuf};

/// The URL of a file served as it is: its path relative to the content or static dir.
pub fn file_url(rel: &Path) -> String {
    let mut url = String::new();
    for part in rel.components() {
        url.push('/');
        url.push_str(&part.as_os_str().to_string_lossy());
    }
    url
}

/// The relative file a URL is written to: `/a/b/` → `a/b/index.html`. `None` for
/// anything that could step outside the output directory.
pub fn url_to_file(url: &str) -> Option<PathBuf> {
    let trimmed = url.trim_start_matches('/');
    let mut rel = PathBuf::from(trimmed);
    if url.ends_with('/') {
        rel.push("index.html");
    }
    rel.components()
        .all(|c| matches!(c, Component::Normal(_)))
        .then_some(rel)
}

/// GitHub-style anchor: lowercase, alphanumerics kept (any script), spaces and dashes to
/// `-`, other punctuation dropped. Also the URL segment of a tag.
pub fn slugify(text: &str) -> String {
    let mut slug = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_alphanumeric() || c == '_' {
            slug.extend(c.to_lowercase());
        } else if c == ' ' || c == '-' {
            slug.push('-');
        }
    }
    slug
}

/// The URL segment of a file or folder name: lowercase, with each run of spaces a single
/// `-` (`Meeting Notes` → `meeting-notes`), and `?` and `#` (which would end the path)
/// left out. Everything else is kept as written, so `c++` and `[` stay themselves.
pub fn slugify_name(name: &str) -> String {
    let mut slug = String::with_capacity(name.len());
    let mut space = false;
    for c in name.trim().chars() {
        if c.is_whitespace() {
            space = true;
            continue;
        }
        if space {
            slug.push('-');
            space = false;
        }
        if !matches!(c, '?' | '#') {
            slug.extend(c.to_lowercase());
        }
    }
    slug
}

/// Decodes `%XX` escapes; `None` if the result is not UTF-8.
pub fn percent_decode(input: &str) -> Option<String> {
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = |b: u8| (b as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// Percent-encodes a URL path for an `href`: everything but unreserved characters,
/// `/` and a few harmless sub-delimiters.
pub fn encode_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for byte in path.bytes() {
        if byte.is_ascii_alphanumeric() || b"/-._~!$&'()*+,;=:@".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_map_to_files_inside_the_output() {
        assert_eq!(url_to_file("/"), Some(PathBuf::from("index.html")));
        assert_eq!(url_to_file("/a/b/"), Some(PathBuf::from("a/b/index.html")));
        assert_eq!(url_to_file("/theme.css"), Some(PathBuf::from("theme.css")));
        assert_eq!(url_to_file("/../x"), None);
        assert_eq!(url_to_file("/a/../../x/"), None);
    }

    #[test]
    fn slugify_keeps_letters_of_any_script() {
        assert_eq!(slugify("Héllo Wörld: 2!"), "héllo-wörld-2");
        assert_eq!(slugify("`Result<T, E>`"), "resultt-e");
    }

    #[test]
    fn file_names_become_url_segments() {
        assert_eq!(slugify_name("meeting notes"), "meeting-notes");
        assert_eq!(slugify_name(" Small  Idea "), "small-idea");
        assert_eq!(slugify_name("c++"), "c++");
        assert_eq!(slugify_name("["), "[");
        assert_eq!(slugify_name("what?#"), "what");
    }

    #[test]
    fn paths_are_encoded_and_decoded() {
        assert_eq!(encode_path("/café/a b/"), "/caf%C3%A9/a%20b/");
        assert_eq!(
            percent_decode("/caf%C3%A9/a%20b/").as_deref(),
            Some("/café/a b/")
        );
        assert_eq!(percent_decode("%FF"), None, "not UTF-8");
        assert_eq!(file_url(Path::new("img/a.png")), "/img/a.png");
    }
}
