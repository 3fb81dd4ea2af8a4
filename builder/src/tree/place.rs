//! Where each page goes, before any Markdown is rendered: which file is a section's own
//! text, which sections exist, and every page's URL (Markdown links need them all).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rayon::prelude::*;
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
    let hugo = layout.flavor == crate::load::layout::Flavor::Hugo;
    let roles = assign_roles(&pages, hugo);
    let mut sections: BTreeMap<PathBuf, Section> = BTreeMap::new();
    ensure_section(&mut sections, Path::new(""));
    let mut urls: Vec<String> = vec![String::new(); pages.len()];
    let mut owner: HashMap<String, usize> =
        HashMap::with_capacity_and_hasher(pages.len(), Default::default());
    // Pages come in path order, so most follow one of their folder: the section is
    // looked up (paths compare component by component) once per run of a folder's
    // pages, which are listed when the run ends.
    let mut run = Run {
        dir: PathBuf::new(),
        listed: Vec::new(),
    };
    // Each page's section folder and URL, on every core: a section's URL is a function
    // of its folder alone. What is left in order below is who owns which URL.
    let planned: Vec<(&Path, Result<String, String>)> = (pages.par_iter().enumerate())
        .map(|(i, page)| {
            // A Hugo leaf bundle (`dir/index.md` with its files) is a page of the section
            // above its folder.
            let bundle = hugo && roles[i] == Role::Page && page.stem() == "index";
            let dir = match page.dir().parent() {
                Some(parent) if bundle => parent,
                _ => page.dir(),
            };
            let url = match roles[i] {
                // Its section's URL, set below once the section is there.
                Role::SectionIndex => Ok(String::new()),
                Role::Page => page_url(page, &section_url(dir), bundle),
            };
            (dir, url)
        })
        .collect();
    for ((i, page), (dir, url)) in pages.iter().enumerate().zip(planned) {
        if run.dir.as_os_str() != dir.as_os_str() {
            run.end(&mut sections);
            ensure_section(&mut sections, dir);
            run = Run {
                dir: dir.to_path_buf(),
                listed: Vec::new(),
            };
        }
        let error =
            |message: String| Diagnostic::error(layout.display_path(&page.source.path), message);
        let url = match roles[i] {
            Role::SectionIndex => {
                let section = sections.get_mut(dir).expect("ensured above");
                section.index = Some(i);
                section.url.clone()
            }
            Role::Page => match url {
                Ok(url) => url,
                Err(message) => {
                    diagnostics.push(error(message));
                    continue;
                }
            },
        };
        match owner.entry(url) {
            std::collections::hash_map::Entry::Occupied(taken) => {
                let other = layout.display_path(&pages[*taken.get()].source.path);
                diagnostics.push(error(format!(
                    "URL {} is already taken by {}",
                    taken.key(),
                    other.display()
                )));
                continue;
            }
            std::collections::hash_map::Entry::Vacant(free) => {
                urls[i] = free.key().clone();
                free.insert(i);
            }
        }
        if roles[i] == Role::Page && !page.meta.unlisted {
            run.listed.push(i);
        }
    }
    run.end(&mut sections);
    Placed {
        pages,
        roles,
        urls,
        sections,
    }
}

/// Consecutive pages of one section, while [`place`] goes through them.
struct Run {
    dir: PathBuf,
    /// Pages to list in the section, in order.
    listed: Vec<usize>,
}

impl Run {
    /// Lists the run's pages in its section.
    fn end(&mut self, sections: &mut BTreeMap<PathBuf, Section>) {
        if !self.listed.is_empty() {
            let section = sections.get_mut(&self.dir).expect("ensured for the run");
            section.pages.append(&mut self.listed);
        }
    }
}

/// A page's URL: `url` of its front matter (Hugo) as written, else its section's, then
/// its slug (from front matter, else its file name, or its folder's for a leaf bundle).
fn page_url(page: &Parsed, section_url: &str, bundle: bool) -> Result<String, String> {
    if let Some(url) = &page.meta.url {
        return Ok(crate::hugo::front_matter::page_url(url));
    }
    let name = match page.dir().file_name() {
        Some(folder) if bundle => folder.to_string_lossy(),
        _ => page.stem(),
    };
    let slug = match &page.fm.slug {
        Some(slug) => slug.clone(),
        None => slugify_name(&name),
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

/// `_index.md` is its directory's own text; without one, `index.md` or `README.md`
/// (not in a Hugo site, where `index.md` is a leaf bundle's page).
fn assign_roles(pages: &[Arc<Parsed>], hugo: bool) -> Vec<Role> {
    let mut index_of_dir: HashMap<&Path, (u8, usize)> = HashMap::default();
    for (i, page) in pages.iter().enumerate() {
        let rank = match page.source.rel.file_stem().and_then(|s| s.to_str()) {
            Some("_index") => 0,
            Some("index") if !hugo => 1,
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
    sections.insert(
        dir.to_path_buf(),
        Section {
            dir: dir.to_path_buf(),
            url: section_url(dir),
            ..Section::default()
        },
    );
}

/// The URL of the section of folder `dir` (relative to the content folder).
fn section_url(dir: &Path) -> String {
    let mut url = String::from("/");
    for part in dir.components() {
        url.push_str(&slugify_name(&part.as_os_str().to_string_lossy()));
        url.push('/');
    }
    url
}

impl Placed {
    /// Source path (relative to the content directory) → URL, of every page with one:
    /// what relative Markdown links resolve against.
    pub fn md_urls(&self) -> HashMap<Arc<Path>, String> {
        let mut urls = HashMap::with_capacity_and_hasher(self.pages.len(), Default::default());
        urls.extend(
            (self.pages.iter().zip(&self.urls))
                .filter(|(_, url)| !url.is_empty())
                .map(|(page, url)| (page.source.rel.clone(), url.clone())),
        );
        urls
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
