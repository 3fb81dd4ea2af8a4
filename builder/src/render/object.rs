//! `page` and `section` as templates read them: minijinja objects that answer each field
//! from the Rust struct when a template asks for it, instead of a copy of every field
//! (the page's body, its table of contents, its neighbours' summaries, a listing's 200
//! summaries) made through serde for every page whether the template reads it or not.
//!
//! What a template sees is the serde form of the same struct ([`PageView`],
//! [`SectionCtx`], [`Summary`]), field for field: the same keys in the same order
//! (`page|items`, `page|tojson`, iteration), `none` for an absent optional field,
//! undefined for a field the serde form skips. The tests hold the two side by side.

use std::sync::{Arc, OnceLock};

use minijinja::Value;
use minijinja::value::{Enumerator, Object, ObjectRepr, Serde};

use crate::context::{PageCtx, PageView, SectionCtx, SiteCtx, Summary};

/// `page`: a [`PageView`] answered field by field.
pub fn page(view: PageView) -> Value {
    Value::from_object(PageObject {
        view,
        extra: OnceLock::new(),
    })
}

/// `section`: a [`SectionCtx`] answered field by field, its listing a sequence of
/// shared summaries.
pub fn section(ctx: Arc<SectionCtx>) -> Value {
    Value::from_object(SectionObject {
        pages: Value::from_object(Listing(ctx.clone())),
        ctx,
        extra: OnceLock::new(),
    })
}

/// What a template renders from: `site`, `current_url`, and `page` or `section` (or
/// neither, for the 404 page), looked up by name rather than in a map made per page.
pub fn root(site: Value, current_url: String, own: Option<(&'static str, Value)>) -> Value {
    Value::from_object(Root {
        site,
        current_url: Value::from(current_url),
        own,
    })
}

#[derive(Debug)]
struct Root {
    site: Value,
    current_url: Value,
    /// `("page", …)` or `("section", …)`.
    own: Option<(&'static str, Value)>,
}

impl Object for Root {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        self.get_value_by_str(key.as_str()?)
    }

    fn get_value_by_str(self: &Arc<Self>, key: &str) -> Option<Value> {
        match (key, &self.own) {
            ("site", _) => Some(self.site.clone()),
            ("current_url", _) => Some(self.current_url.clone()),
            (key, Some((name, value))) if key == *name => Some(value.clone()),
            _ => None,
        }
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        // In the order the `context!` map that this replaces listed them.
        Enumerator::Str(match &self.own {
            Some(("page", _)) => &["site", "page", "current_url"],
            Some(_) => &["site", "section", "current_url"],
            None => &["site", "current_url"],
        })
    }
}

/// `site` once per worker thread of a render: every page reads it many times, and
/// reading a value shared by all threads bumps (and drops) reference counts that every
/// core then fights over.
#[derive(Debug)]
pub struct SitePerThread<'a> {
    site: &'a SiteCtx,
    /// For a job run outside the pool's threads.
    shared: &'a Value,
    values: Vec<OnceLock<Value>>,
}

impl<'a> SitePerThread<'a> {
    pub fn new(site: &'a SiteCtx, shared: &'a Value) -> SitePerThread<'a> {
        SitePerThread {
            site,
            shared,
            values: (0..rayon::current_num_threads())
                .map(|_| OnceLock::new())
                .collect(),
        }
    }

    /// `site` for the calling thread.
    pub fn get(&self) -> Value {
        match rayon::current_thread_index().and_then(|i| self.values.get(i)) {
            Some(slot) => slot.get_or_init(|| Value::from(Serde(self.site))).clone(),
            None => self.shared.clone(),
        }
    }
}

fn text(value: &str) -> Value {
    Value::from(value)
}

fn optional(value: Option<&str>) -> Value {
    value.map_or(Value::from(()), Value::from)
}

fn count(value: usize) -> Value {
    Value::from(value as u64)
}

fn summary(value: Option<&Arc<Summary>>) -> Value {
    value.map_or(Value::from(()), |summary| {
        Value::from_dyn_object(summary.clone())
    })
}

/// The keys of a page, in the order its serde form has them: `PageView` flattens its
/// page, which makes it a map, and minijinja keeps maps sorted.
const PAGE_KEYS: &[&str] = &[
    "content",
    "date",
    "description",
    "draft",
    "extra",
    "head_title",
    "next",
    "prev",
    "reading_time",
    "section",
    "summary",
    "tag_urls",
    "tags",
    "taxonomies",
    "title",
    "toc",
    "url",
    "weight",
    "word_count",
];

#[derive(Debug)]
struct PageObject {
    view: PageView,
    /// Made once: a template may read `page.extra.…` several times.
    extra: OnceLock<Value>,
}

impl Object for PageObject {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        self.get_value_by_str(key.as_str()?)
    }

    fn get_value_by_str(self: &Arc<Self>, key: &str) -> Option<Value> {
        let view = &self.view;
        let page: &PageCtx = &view.page;
        Some(match key {
            "content" => Value::from(page.content.get()),
            "date" => optional(page.date.as_deref()),
            "description" => optional(page.description.as_deref()),
            "draft" => Value::from(page.draft),
            "extra" => self
                .extra
                .get_or_init(|| Value::from(Serde(&*page.extra)))
                .clone(),
            "head_title" => optional(page.head_title.as_deref()),
            "next" => summary(view.next.as_ref()),
            "prev" => summary(view.prev.as_ref()),
            "reading_time" => count(page.reading_time),
            "section" => Value::from(Serde(&view.section)),
            "summary" => optional(page.summary.as_deref()),
            "tag_urls" => Value::from(Serde(&view.tag_urls)),
            "tags" => Value::from(Serde(&page.tags)),
            "taxonomies" => Value::from(Serde(&view.taxonomies)),
            "title" => text(&page.title),
            "toc" => Value::from_object(Toc(view.page.clone())),
            "url" => text(&page.url),
            "weight" => page.weight.map_or(Value::from(()), Value::from),
            "word_count" => count(page.word_count),
            _ => return None,
        })
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Str(PAGE_KEYS)
    }

    fn enumerator_len(self: &Arc<Self>) -> Option<usize> {
        Some(PAGE_KEYS.len())
    }
}

/// A page's table of contents, entry by entry.
#[derive(Debug)]
struct Toc(Arc<PageCtx>);

impl Object for Toc {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Seq
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let entry = self.0.toc.get(key.as_usize()?)?;
        Some(Value::from(Serde(entry)))
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Seq(self.0.toc.len())
    }
}

/// Field order of [`Summary`]'s serde form.
const SUMMARY_KEYS: &[&str] = &[
    "title",
    "url",
    "date",
    "description",
    "summary",
    "tags",
    "reading_time",
];

impl Object for Summary {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        self.get_value_by_str(key.as_str()?)
    }

    fn get_value_by_str(self: &Arc<Self>, key: &str) -> Option<Value> {
        Some(match key {
            "title" => text(&self.title),
            "url" => text(&self.url),
            "date" => optional(self.date.as_deref()),
            "description" => optional(self.description.as_deref()),
            "summary" => optional(self.summary.as_deref()),
            "tags" => Value::from(Serde(&self.tags)),
            "reading_time" => count(self.reading_time),
            _ => return None,
        })
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Str(SUMMARY_KEYS)
    }

    fn enumerator_len(self: &Arc<Self>) -> Option<usize> {
        Some(SUMMARY_KEYS.len())
    }
}

/// A listing's pages (`section.pages`), each a shared [`Summary`].
#[derive(Debug)]
struct Listing(Arc<SectionCtx>);

impl Object for Listing {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Seq
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let page = self.0.pages.get(key.as_usize()?)?;
        Some(Value::from_dyn_object(page.clone()))
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Seq(self.0.pages.len())
    }
}

#[derive(Debug)]
struct SectionObject {
    ctx: Arc<SectionCtx>,
    /// Made once: a listing template reads `section.pages` several times.
    pages: Value,
    extra: OnceLock<Value>,
}

/// Field order of [`SectionCtx`]'s serde form.
const SECTION_KEYS: &[&str] = &[
    "title",
    "url",
    "content",
    "description",
    "pages",
    "subsections",
    "extra",
    "paginator",
];

impl Object for SectionObject {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        self.get_value_by_str(key.as_str()?)
    }

    fn get_value_by_str(self: &Arc<Self>, key: &str) -> Option<Value> {
        let ctx = &self.ctx;
        Some(match key {
            "title" => text(&ctx.title),
            "url" => text(&ctx.url),
            "content" => Value::from(ctx.content.clone()),
            "description" => optional(ctx.description.as_deref()),
            "pages" => self.pages.clone(),
            "subsections" => Value::from(Serde(&ctx.subsections)),
            "extra" => self
                .extra
                .get_or_init(|| Value::from(Serde(&*ctx.extra)))
                .clone(),
            "paginator" => Value::from(Serde(&ctx.paginator)),
            _ => return None,
        })
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Str(SECTION_KEYS)
    }

    fn enumerator_len(self: &Arc<Self>) -> Option<usize> {
        Some(SECTION_KEYS.len())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use minijinja::Environment;

    use super::*;
    use crate::context::{Link, SubsectionCtx, TagLink, TocEntry};
    use crate::tree::paginate::Paginator;

    fn summary(n: usize, date: Option<&str>) -> Arc<Summary> {
        Arc::new(Summary::listed(
            &format!("Page <{n}>"),
            &format!("/s/p{n}/"),
            date,
            n.is_multiple_of(2).then(|| format!("about {n}")).as_deref(),
            Some(&format!("<p>first of {n}</p>")),
            vec!["a".into(), format!("t{n}")],
            n,
        ))
    }

    fn view(empty: bool) -> PageView {
        let extra: serde_json::Value = serde_json::json!({
            "zeta": [1, 2.5, "three", null, true],
            "alpha": {"nested": "yes", "n": -4},
        });
        let toc = |level, id: &str| TocEntry {
            level,
            id: id.into(),
            title: format!("Title of {id}"),
        };
        let page = PageCtx {
            title: "A \"quoted\" <title>".into(),
            url: "/s/a/".into(),
            content: crate::output::spill::Text::new("<p>Body &amp; more</p>"),
            summary: (!empty).then(|| "<p>Body</p>".into()),
            description: (!empty).then(|| "Desc".into()),
            date: (!empty).then(|| "2024-01-02T03:04:05Z".into()),
            tags: if empty {
                vec![]
            } else {
                vec!["rust".into(), "web".into()]
            },
            toc: if empty {
                vec![]
            } else {
                vec![toc(2, "one"), toc(3, "two"), toc(2, "three")]
            },
            word_count: 321,
            reading_time: 2,
            extra: Arc::new(if empty {
                serde_json::Map::new()
            } else {
                extra.as_object().unwrap().clone()
            }),
            draft: !empty,
            weight: (!empty).then_some(-7),
            template: Some("custom.html".into()),
            head_title: (!empty).then(|| "Head".into()),
            links: Vec::new(),
            anchors: vec!["one".into()],
            body_hash: 17,
        };
        let link = |name: &str| TagLink {
            name: name.into(),
            url: format!("/tags/{name}/"),
            count: 3,
        };
        let mut taxonomies = BTreeMap::new();
        if !empty {
            taxonomies.insert("categories".into(), vec![link("c1"), link("c2")]);
            taxonomies.insert("authors".into(), vec![link("me")]);
        }
        PageView {
            page: Arc::new(page),
            tag_urls: if empty {
                vec![]
            } else {
                vec![link("rust"), link("web")]
            },
            taxonomies,
            section: (!empty).then(|| {
                Arc::new(Link {
                    title: "Section".into(),
                    url: "/s/".into(),
                })
            }),
            prev: (!empty).then(|| summary(1, Some("2023-05-06"))),
            next: (!empty).then(|| summary(2, None)),
        }
    }

    fn section_ctx(paginated: bool) -> SectionCtx {
        SectionCtx {
            title: "Section & co".into(),
            url: "/s/".into(),
            content: Arc::from("<p>Intro</p>"),
            description: paginated.then(|| "All of it".into()),
            pages: (0..5)
                .map(|n| summary(n, n.is_multiple_of(3).then_some("2020-01-01")))
                .collect(),
            subsections: vec![SubsectionCtx {
                title: "Sub".into(),
                url: "/s/sub/".into(),
                page_count: 4,
            }],
            extra: Arc::new(serde_json::json!({"k": "v"}).as_object().unwrap().clone()),
            paginator: paginated.then(|| {
                Box::new(Paginator {
                    current: 2,
                    total: 3,
                    per_page: 5,
                    total_entries: 13,
                    first: "/s/".into(),
                    prev: Some("/s/".into()),
                    next: Some("/s/page/3/".into()),
                    last: "/s/page/3/".into(),
                })
            }),
        }
    }

    /// Renders `template` with `name` bound to `value`, as a page template would.
    fn render(template: &str, name: &str, value: Value) -> String {
        let mut env = Environment::new();
        env.add_template("t.html", template).unwrap();
        let ctx = Value::from(BTreeMap::from([(name.to_string(), value)]));
        env.get_template("t.html")
            .unwrap()
            .render(ctx)
            .unwrap_or_else(|e| format!("error: {e}"))
    }

    /// Every way a template reads `name`: each key (given and absent ones), how it
    /// tests, iteration, `items`, length, truth, printing the whole, and the nested
    /// values a theme loops over.
    fn probes(name: &str, keys: &[&str], nested: &[&str]) -> Vec<String> {
        let mut probes = vec![
            format!("{{{{ {name} }}}}"),
            format!("{{{{ {name}|length }}}} {{{{ {name} is mapping }}}} {{{{ {name} is true }}}}"),
            format!("{{% for k in {name} %}}{{{{ k }}}},{{% endfor %}}"),
            format!("{{% for k, v in {name}|items %}}{{{{ k }}}}={{{{ v }}}};{{% endfor %}}"),
            format!("{{{{ {name}|list }}}} {{{{ {name}|items|list }}}}"),
            format!("{{{{ {name}.template is defined }}}}"),
            format!("{{{{ {name}.links is defined }}}}"),
            format!("{{{{ {name}.nope is undefined }}}}"),
            format!("{{% if {name} %}}yes{{% endif %}}"),
        ];
        for key in keys {
            probes.push(format!(
                "{{{{ {name}.{key} }}}}|{{{{ {name}['{key}'] if '.' not in '{key}' }}}}|{{{{ {name}.{key} is defined }}}}|\
                 {{{{ {name}.{key} is none }}}}|{{{{ {name}.{key} is string }}}}|{{{{ {name}.{key} is number }}}}|\
                 {{% if {name}.{key} %}}t{{% else %}}f{{% endif %}}|{{{{ {name}.{key}|length if {name}.{key} is string or {name}.{key} is sequence or {name}.{key} is mapping else '-' }}}}|\
                 {{{{ {name}.{key}|safe }}}}"
            ));
        }
        for path in nested {
            probes.push(format!(
                "{{% for x in {name}.{path} %}}[{{{{ loop.index }}}}/{{{{ loop.length }}}} {{{{ x }}}} \
                 {{% if x is mapping %}}{{% for k, v in x|items %}}{{{{ k }}}}={{{{ v }}}},{{% endfor %}}{{% endif %}}]{{% endfor %}}\
                 {{{{ {name}.{path}|length }}}} {{{{ {name}.{path}|first }}}} {{{{ {name}.{path}|last }}}} \
                 {{{{ {name}.{path}|reverse|list }}}} {{{{ {name}.{path}[1:] }}}} {{{{ {name}.{path}[0] }}}}"
            ));
        }
        probes
    }

    fn assert_same(
        name: &str,
        serde: &dyn Fn() -> Value,
        lazy: &dyn Fn() -> Value,
        probes: &[String],
    ) {
        for probe in probes {
            let want = render(probe, name, serde());
            let got = render(probe, name, lazy());
            assert_eq!(got, want, "template: {probe}");
            assert!(!want.starts_with("error"), "{probe}: {want}");
            assert!(!want.trim().is_empty(), "{probe} shows nothing");
        }
    }

    #[test]
    fn page_reads_as_its_serde_form() {
        let nested = [
            "toc",
            "tags",
            "tag_urls",
            "taxonomies.categories",
            "extra.zeta",
            "prev.tags",
        ];
        let mut keys: Vec<&str> = PAGE_KEYS.to_vec();
        keys.extend([
            "prev.title",
            "prev.summary",
            "next.date",
            "section.url",
            "extra.alpha.nested",
            "toc[1].id",
        ]);
        for empty in [false, true] {
            let (keys, nested): (&[&str], &[&str]) = if empty {
                (PAGE_KEYS, &["toc", "tags"])
            } else {
                (&keys, &nested)
            };
            assert_same(
                "page",
                &|| Value::from(Serde(view(empty))),
                &|| page(view(empty)),
                &probes("page", keys, nested),
            );
        }
    }

    #[test]
    fn the_root_context_reads_as_the_map_it_replaces() {
        let site = || Value::from_iter([("title", "Site")].into_iter().collect::<BTreeMap<_, _>>());
        let template = "{{ site.title }} {{ current_url }} {{ page.title if page is defined }} \
                        {{ section.title if section is defined }} \
                        {{ page is defined }} {{ section is defined }} {{ nope is defined }}";
        let cases = [
            (
                root(site(), "/a/".into(), Some(("page", page(view(false))))),
                minijinja::context! {
                    site => site(), page => Value::from(Serde(view(false))), current_url => "/a/"
                },
            ),
            (
                root(
                    site(),
                    "/s/".into(),
                    Some(("section", section(Arc::new(section_ctx(false))))),
                ),
                minijinja::context! {
                    site => site(), section => Value::from(Serde(section_ctx(false))), current_url => "/s/"
                },
            ),
            (
                root(site(), "/404.html".into(), None),
                minijinja::context! {
                    site => site(), current_url => "/404.html"
                },
            ),
        ];
        for (lazy, map) in cases {
            let mut env = Environment::new();
            env.add_template("t.html", template).unwrap();
            let t = env.get_template("t.html").unwrap();
            assert_eq!(t.render(&lazy).unwrap(), t.render(&map).unwrap());
            let keys = |v: &Value| v.try_iter().unwrap().collect::<Vec<_>>();
            assert_eq!(keys(&lazy), keys(&map));
        }
    }

    #[test]
    fn section_reads_as_its_serde_form() {
        let mut keys: Vec<&str> = SECTION_KEYS.to_vec();
        keys.extend([
            "pages[0].title",
            "pages[3].date",
            "paginator.next",
            "extra.k",
            "subsections[0].page_count",
        ]);
        let nested = ["pages", "subsections", "pages[2].tags"];
        for paginated in [false, true] {
            assert_same(
                "section",
                &|| Value::from(Serde(section_ctx(paginated))),
                &|| section(Arc::new(section_ctx(paginated))),
                &probes("section", &keys, &nested),
            );
        }
        // What the theme's listing does with them.
        let template = "{% for p in section.pages|sort(attribute='title', reverse=true) %}{{ p.url }} \
                        {% endfor %}{{ section.pages|map(attribute='title')|join(', ') }} \
                        {{ section.pages|selectattr('date')|list|length }} {{ section.pages|groupby('date') }}";
        assert_eq!(
            render(template, "section", section(Arc::new(section_ctx(true)))),
            render(template, "section", Value::from(Serde(section_ctx(true)))),
        );
    }
}
