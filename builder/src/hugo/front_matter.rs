//! The front matter keys Hugo gives meaning to, mapped onto sited's: `url` and `slug`
//! (lowercased, as Hugo makes URLs), `aliases`, `publishDate`/`expiryDate` (a page not
//! yet published or expired is left out unless drafts are asked for, as Hugo does with
//! `--buildFuture`/`--buildExpired`), `headless` and `build` options. `linkTitle` and
//! everything else stay in `page.extra`.

use serde_json::{Map, Value};

use crate::load::frontmatter::FrontMatter;

/// What a page's front matter says beyond sited's own keys.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageMeta {
    /// The page's URL as written in front matter (`/news/first-light/`), lowercased.
    pub url: Option<String>,
    /// Old URLs of the page: each gets a page redirecting to it.
    pub aliases: Vec<String>,
    /// Not built at all (`headless: true` on a leaf bundle, `build.render: never`).
    pub skip: bool,
    /// Built but in no listing (`build.list: never`).
    pub unlisted: bool,
}

/// Maps Hugo's keys of `fm` (found in `fm.extra`). `is_bundle_index`: the file is a leaf
/// bundle's `index.md`, the only kind `headless` applies to. `today` is `YYYY-MM-DD`.
pub fn apply(fm: &mut FrontMatter, is_bundle_index: bool, today: &str) -> PageMeta {
    let extra = &mut fm.extra;
    let mut meta = PageMeta {
        url: text(extra, "url").map(|url| url.to_lowercase()),
        aliases: list(extra, "aliases"),
        ..PageMeta::default()
    };
    if let Some(slug) = &fm.slug {
        fm.slug = Some(slug.to_lowercase());
    }
    if let Some(title) = text(extra, "linkTitle") {
        extra.insert("link_title".into(), Value::String(title));
    }
    let date = |key: &str| text(extra, key).map(|d| d.get(..10).unwrap_or(&d).to_string());
    if date("publishDate").is_some_and(|d| d.as_str() > today)
        || date("expiryDate").is_some_and(|d| d.as_str() <= today)
    {
        fm.draft = true;
    }
    if is_bundle_index && extra.get("headless") == Some(&Value::Bool(true)) {
        meta.skip = true;
    }
    if let Some(Value::Object(build)) = extra.get("build") {
        let never = |key: &str| {
            matches!(build.get(key), Some(Value::Bool(false)))
                || build.get(key).and_then(Value::as_str) == Some("never")
        };
        meta.skip |= never("render");
        meta.unlisted = never("list");
    }
    meta
}

/// A URL written in front matter as a page's own URL: rooted, and ending in `/` unless
/// it names a file (`/docs/old.html`).
pub fn page_url(url: &str) -> String {
    let mut url = format!("/{}", url.trim().trim_start_matches('/'));
    let last = url.rsplit('/').next().unwrap_or("");
    if !last.is_empty() && !last.contains('.') {
        url.push('/');
    }
    url
}

fn text(map: &Map<String, Value>, key: &str) -> Option<String> {
    map.get(key).and_then(Value::as_str).map(str::to_string)
}

fn list(map: &Map<String, Value>, key: &str) -> Vec<String> {
    match map.get(key) {
        Some(Value::String(one)) => vec![one.to_lowercase()],
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_lowercase)
            .collect(),
        _ => Vec::new(),
    }
}

/// Today's date (UTC) as `YYYY-MM-DD`.
pub fn today() -> String {
    let days = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 86_400) as i64;
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Howard Hinnant's days-to-civil algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_civil() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_454), (2026, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }

    fn fm(yaml: &str) -> FrontMatter {
        crate::load::frontmatter::split(&format!("---\n{yaml}\n---\n"))
            .unwrap()
            .front_matter
    }

    #[test]
    fn hugo_keys_map_onto_sited() {
        let mut page = fm("slug: Install-Guide\nurl: /News/X/\naliases: [/Old/]\nlinkTitle: Short");
        let meta = apply(&mut page, false, "2026-01-01");
        assert_eq!(page.slug.as_deref(), Some("install-guide"));
        assert_eq!(meta.url.as_deref(), Some("/news/x/"));
        assert_eq!(meta.aliases, ["/old/"]);
        assert_eq!(page.extra["link_title"], "Short");
        let mut future = fm("publishDate: 2999-01-01");
        apply(&mut future, false, "2026-01-01");
        assert!(future.draft, "left out unless asked, like a draft");
        let mut expired = fm("expiryDate: 2001-01-01");
        apply(&mut expired, false, "2026-01-01");
        assert!(expired.draft);
        let mut current = fm("publishDate: 2020-01-01\nexpiryDate: 2999-01-01");
        apply(&mut current, false, "2026-01-01");
        assert!(!current.draft);
        assert!(apply(&mut fm("headless: true"), true, "2026-01-01").skip);
        assert!(
            !apply(&mut fm("headless: true"), false, "2026-01-01").skip,
            "only leaf bundles"
        );
        let built = apply(
            &mut fm("build: {list: never, render: always}"),
            false,
            "2026-01-01",
        );
        assert!(built.unlisted && !built.skip);
        assert!(apply(&mut fm("build: {render: never}"), false, "2026-01-01").skip);
    }
}
