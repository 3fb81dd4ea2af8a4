//! Where each page goes, before any Markdown is rendered: which file is a section's own
//! text, which sections exist, and every page's URL (Markdown links need them all).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustc_hash::FxHashMap as HashMap;

use crate::load::Parsed;
use crate::load::layout::Layout;
use crate::report::Diagnostic;
use crate::url::slugify_name;

/// What a parsed Markdown file is to its directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// `_index.md` (or `index.md`/`README.md` without one): the section's own text.
    SectionIndex,
    Page,
}

/// A directory of content, as a listing.
#[derive(Debug, Clone, Default)]
pub struct Section {
    /// Relative to the content directory; empty for the home page.
    pub dir: PathBuf,
    pub url: String,
    /// Filled in once titles are known (after Markdown).
    pub title: String,
    /// The page (index into the build's pages) holding the section's own text, if any.
    pub index: Option<usize>,
    /// Its pages, in listing order once arranged.
    pub pages: Vec<usize>,
    pub subsections: Vec<PathBuf>,
}

impl Section {
    pub fn is_home(&self) -> bool {
        self.dir.as_os_str().is_empty()
    }
}

/// Pages and sections with their URLs.
#[derive(Debug)]
pub struct Placed {
    /// Every page to build (drafts left out unless asked for), in source order.
    pub pages: Vec<Arc<Parsed>>,
    pub roles: Vec<Role>,
    /// Each page's decoded URL; empty for a page that got none (a diagnostic says why).
    pub urls: Vec<String>,
    pub sections: BTreeMap<PathBuf, Section>,
}

/// Gives every page and section its place and URL. A page whose URL cannot be made or
/// is taken by another gets a diagnostic and no URL.
pub fn place(
    pages: Vec<Arc<Parsed>>,
    layout: &Layout,
    diagnostics: &mut Vec<Diagnostic>,
) -> Placed {
    let roles = assign_roles(&pages);
    let mut sections: BTreeMap<PathBuf, Section> = BTreeMap::new();
    ensure_section(&mut sections, Path::new(""));
    let mut urls: Vec<String> = vec![String::new(); pages.len()];
    let mut owner: HashMap<String, usize> = HashMap::default();
    for (i, page) in pages.iter().enumerate() {
        let dir = page.dir().to_path_buf();
        ensure_section(&mut sections, &dir);
        let error =
            |message: String| Diagnostic::error(layout.display_path(&page.source.path), message);
        let url = match roles[i] {
            Role::SectionIndex => {
                let section = sections.get_mut(&dir).expect("ensured above");
                section.index = Some(i);
                section.url.clone()
            }
            Role::Page => match page_url(page, &sections[&dir].url) {
                Ok(url) => url,
                Err(message) => {
                    diagnostics.push(error(message));
                    continue;
                }
            },
        };
        if let Some(&other) = owner.get(&url) {
            let other = layout.display_path(&pages[other].source.path);
            diagnostics.push(error(format!(
                "URL {url} is already taken by {}",
                other.display()
            )));
            continue;
        }
        owner.insert(url.clone(), i);
        if roles[i] == Role::Page {
            sections.get_mut(&dir).expect("ensured above").pages.push(i);
        }
        urls[i] = url;
    }
    Placed {
        pages,
        roles,
        urls,
        sections,
    }
}

/// A page's URL: its section's, then its slug (from front matter, else its file name).
fn page_url(page: &Parsed, section_url: &str) -> Result<String, String> {
    let slug = match &page.fm.slug {
        Some(slug) => slug.clone(),
        None => slugify_name(&page.stem()),
    }
    .replace(['/', '\\'], "-");
    // `.` and `..` cannot be URL segments (browsers resolve them away, even
    // percent-encoded): the `.` command's page is served at `_./`.
    let slug = if matches!(slug.as_str(), "." | "..") {
        format!("_{slug}")
    } else {
        slug
    };
    if slug.is_empty() {
        return Err(format!("slug {slug:?} is not usable in a URL"));
    }
    Ok(format!("{section_url}{slug}/"))
}

/// `_index.md` is its directory's own text; without one, `index.md` or `README.md`.
fn assign_roles(pages: &[Arc<Parsed>]) -> Vec<Role> {
    let mut index_of_dir: HashMap<&Path, (u8, usize)> = HashMap::default();
    for (i, page) in pages.iter().enumerate() {
        let rank = match page.source.rel.file_stem().and_then(|s| s.to_str()) {
            Some("_index") => 0,
            Some("index") => 1,
            Some("README" | "readme" | "Readme") => 2,
            _ => continue,
        };
        let entry = index_of_dir.entry(page.dir()).or_insert((rank, i));
        if rank < entry.0 {
            *entry = (rank, i);
        }
    }
    let mut roles = vec![Role::Page; pages.len()];
    for (_, i) in index_of_dir.into_values() {
        roles[i] = Role::SectionIndex;
    }
    roles
}

/// Adds the section of `dir` and of every ancestor, if missing.
fn ensure_section(sections: &mut BTreeMap<PathBuf, Section>, dir: &Path) {
    if sections.contains_key(dir) {
        return;
    }
    if let Some(parent) = dir.parent() {
        ensure_section(sections, parent);
    }
    let mut url = String::from("/");
    for part in dir.components() {
        url.push_str(&slugify_name(&part.as_os_str().to_string_lossy()));
        url.push('/');
    }
    sections.insert(
        dir.to_path_buf(),
        Section {
            dir: dir.to_path_buf(),
            url,
            ..Section::default()
        },
    );
}

impl Placed {
    /// Source path (relative to the content directory) → URL, of every page with one:
    /// what relative Markdown links resolve against.
    pub fn md_urls(&self) -> HashMap<PathBuf, String> {
        self.pages
            .iter()
            .zip(&self.urls)
            .filter(|(_, url)| !url.is_empty())
            .map(|(page, url)| (page.source.rel.clone(), url.clone()))
            .collect()
    }

    /// A hash of every page's source and URL: a page whose links were resolved when it
    /// was different is stale.
    pub fn links_hash(&self) -> u64 {
        let mut hasher = rustc_hash::FxHasher::default();
        for (page, url) in self.pages.iter().zip(&self.urls) {
            std::hash::Hash::hash(page.source.rel.as_os_str().as_encoded_bytes(), &mut hasher);
            std::hash::Hash::hash(url, &mut hasher);
        }
        std::hash::Hasher::finish(&hasher)
    }
}
