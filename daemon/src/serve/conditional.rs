//! Conditional requests (RFC 9110 §13): `If-None-Match` and `If-Modified-Since` decide
//! whether a GET or HEAD gets a 304, `If-Range` whether a Range is honoured.
//!
//! An `ETag` names one representation, so the compressed forms of a body carry their own
//! tags (`"abc-gz"`); `If-None-Match` uses the weak comparison and accepts any of them,
//! since they all stand for the same content. `Last-Modified` has whole-second precision:
//! a body replaced twice within one second looks unchanged to a client that sends only
//! `If-Modified-Since` (every browser sends `If-None-Match` too, which wins).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{HeaderMap, header};

use super::encoding::Coding;

/// What a response can be validated by.
#[derive(Debug, Clone, Copy)]
pub struct Validators<'a> {
    /// The identity representation's strong tag, quoted.
    pub etag: &'a str,
    pub modified: SystemTime,
}

impl Validators<'_> {
    /// Whether the client's copy is current: answer 304.
    pub fn not_modified(&self, headers: &HeaderMap) -> bool {
        let mut tags = headers.get_all(header::IF_NONE_MATCH).iter().peekable();
        if tags.peek().is_some() {
            // Present, so If-Modified-Since is ignored (RFC 9110 §13.1.3).
            return tags
                .filter_map(|value| value.to_str().ok())
                .flat_map(|value| value.split(','))
                .any(|tag| {
                    let tag = tag.trim();
                    tag == "*" || self.matches_weakly(tag)
                });
        }
        headers
            .get(header::IF_MODIFIED_SINCE)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| httpdate::parse_http_date(value).ok())
            .is_some_and(|since| whole_seconds(self.modified) <= since)
    }

    /// Whether a `Range` may be honoured: no `If-Range`, or one naming this very
    /// representation (strong comparison; a date must equal `Last-Modified`).
    pub fn range_applies(&self, headers: &HeaderMap) -> bool {
        let Some(value) = headers.get(header::IF_RANGE).and_then(|v| v.to_str().ok()) else {
            return headers.get(header::IF_RANGE).is_none();
        };
        let value = value.trim();
        if value.starts_with('"') || value.starts_with("W/") {
            return value == self.etag;
        }
        httpdate::parse_http_date(value).is_ok_and(|date| date == whole_seconds(self.modified))
    }

    fn matches_weakly(&self, tag: &str) -> bool {
        let tag = tag.strip_prefix("W/").unwrap_or(tag);
        tag == self.etag
            || [Coding::Gzip, Coding::Brotli]
                .iter()
                .any(|coding| coding.etag_suffix_matches(self.etag, tag))
    }
}

/// `time` without its sub-second part, as `Last-Modified` carries it.
pub fn whole_seconds(time: SystemTime) -> SystemTime {
    let secs = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    UNIX_EPOCH + Duration::from_secs(secs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(name.clone(), HeaderValue::from_str(value).unwrap());
        }
        map
    }

    fn validators() -> Validators<'static> {
        Validators {
            etag: "\"abc\"",
            modified: UNIX_EPOCH + Duration::from_millis(1_700_000_000_700),
        }
    }

    #[test]
    fn if_none_match_uses_weak_comparison_and_knows_the_coded_tags() {
        let v = validators();
        for value in [
            "\"abc\"",
            "W/\"abc\"",
            "\"x\", \"abc\"",
            "*",
            "\"abc-gz\"",
            "W/\"abc-br\"",
        ] {
            assert!(
                v.not_modified(&headers(&[(header::IF_NONE_MATCH, value)])),
                "{value}"
            );
        }
        for value in ["\"abd\"", "abc", "\"abc-zz\"", "\"ab\"", ""] {
            assert!(
                !v.not_modified(&headers(&[(header::IF_NONE_MATCH, value)])),
                "{value}"
            );
        }
        // Several header lines count as one list.
        let two = headers(&[
            (header::IF_NONE_MATCH, "\"x\""),
            (header::IF_NONE_MATCH, "\"abc\""),
        ]);
        assert!(v.not_modified(&two));
    }

    #[test]
    fn if_modified_since_compares_whole_seconds_and_yields_to_if_none_match() {
        let v = validators();
        let same = httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(1_700_000_000));
        let earlier = httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(1_699_999_999));
        let later = httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(1_700_000_100));
        assert!(v.not_modified(&headers(&[(header::IF_MODIFIED_SINCE, &same)])));
        assert!(v.not_modified(&headers(&[(header::IF_MODIFIED_SINCE, &later)])));
        assert!(!v.not_modified(&headers(&[(header::IF_MODIFIED_SINCE, &earlier)])));
        assert!(!v.not_modified(&headers(&[(header::IF_MODIFIED_SINCE, "yesterday")])));
        let both = headers(&[
            (header::IF_NONE_MATCH, "\"other\""),
            (header::IF_MODIFIED_SINCE, &later),
        ]);
        assert!(!v.not_modified(&both), "If-None-Match must win");
        assert!(!v.not_modified(&HeaderMap::new()));
    }

    #[test]
    fn if_range_needs_the_exact_tag_or_date() {
        let v = validators();
        let same = httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(1_700_000_000));
        assert!(v.range_applies(&HeaderMap::new()));
        assert!(v.range_applies(&headers(&[(header::IF_RANGE, "\"abc\"")])));
        assert!(v.range_applies(&headers(&[(header::IF_RANGE, &same)])));
        assert!(!v.range_applies(&headers(&[(header::IF_RANGE, "W/\"abc\"")])));
        assert!(!v.range_applies(&headers(&[(header::IF_RANGE, "\"old\"")])));
        assert!(!v.range_applies(&headers(&[(
            header::IF_RANGE,
            "Mon, 01 Jan 2001 00:00:00 GMT"
        )])));
    }
}
