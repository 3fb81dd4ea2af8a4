//! `Range: bytes=…` (RFC 9110 §14): what part of a body a request asks for. One range is
//! served (`a-b`, open-ended `a-`, suffix `-n`); a list of several is answered with the
//! whole body, which the RFC allows and which is all a browser seeking in a video needs.
//! Anything unparseable is ignored the same way, as the RFC says to.

use http::HeaderValue;

/// What to send for a body of a given length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ranged {
    /// The whole body: no Range, or one to ignore.
    Full,
    /// Bytes `start..=end` (inclusive, as `Content-Range` writes them): 206.
    Part { start: u64, end: u64 },
    /// A range that starts past the end, or an empty suffix: 416.
    Unsatisfiable,
}

impl Ranged {
    /// Reads a `Range` header against a body of `len` bytes.
    pub fn parse(header: Option<&HeaderValue>, len: u64) -> Ranged {
        let Some(spec) = header
            .and_then(|h| h.to_str().ok())
            .and_then(|h| strip_prefix_ignore_case(h.trim(), "bytes="))
        else {
            return Ranged::Full;
        };
        if spec.contains(',') {
            return Ranged::Full;
        }
        let Some((first, last)) = spec.trim().split_once('-') else {
            return Ranged::Full;
        };
        let (first, last) = (first.trim(), last.trim());
        let number = |s: &str| {
            (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                .then(|| s.parse::<u64>().ok())
                .flatten()
        };
        match (first.is_empty(), last.is_empty()) {
            // `-n`: the last n bytes.
            (true, false) => match number(last) {
                None => Ranged::Full,
                Some(0) => Ranged::Unsatisfiable,
                Some(_) if len == 0 => Ranged::Unsatisfiable,
                Some(n) => Ranged::Part {
                    start: len.saturating_sub(n),
                    end: len - 1,
                },
            },
            // `a-`: from a to the end.
            (false, true) => match number(first) {
                Some(start) if start >= len => Ranged::Unsatisfiable,
                Some(start) => Ranged::Part {
                    start,
                    end: len - 1,
                },
                None => Ranged::Full,
            },
            // `a-b`
            (false, false) => match (number(first), number(last)) {
                (Some(start), Some(end)) if start > end => Ranged::Full,
                (Some(start), Some(_)) if start >= len => Ranged::Unsatisfiable,
                (Some(start), Some(end)) => Ranged::Part {
                    start,
                    end: end.min(len - 1),
                },
                _ => Ranged::Full,
            },
            (true, true) => Ranged::Full,
        }
    }
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    (text.len() >= prefix.len()
        && text.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes()))
    .then(|| &text[prefix.len()..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(value: &str, len: u64) -> Ranged {
        Ranged::parse(Some(&HeaderValue::from_str(value).unwrap()), len)
    }

    #[test]
    fn single_ranges_of_every_form() {
        assert_eq!(parse("bytes=0-9", 100), Ranged::Part { start: 0, end: 9 });
        assert_eq!(parse("bytes=90-", 100), Ranged::Part { start: 90, end: 99 });
        assert_eq!(parse("bytes=-10", 100), Ranged::Part { start: 90, end: 99 });
        assert_eq!(
            parse("bytes=-1000", 100),
            Ranged::Part { start: 0, end: 99 }
        );
        assert_eq!(
            parse("bytes=50-1000", 100),
            Ranged::Part { start: 50, end: 99 }
        );
        assert_eq!(parse("Bytes= 0-0", 100), Ranged::Part { start: 0, end: 0 });
        assert_eq!(
            parse("bytes=99-99", 100),
            Ranged::Part { start: 99, end: 99 }
        );
    }

    #[test]
    fn ranges_past_the_end_are_unsatisfiable() {
        assert_eq!(parse("bytes=100-", 100), Ranged::Unsatisfiable);
        assert_eq!(parse("bytes=100-200", 100), Ranged::Unsatisfiable);
        assert_eq!(parse("bytes=-0", 100), Ranged::Unsatisfiable);
        assert_eq!(parse("bytes=0-", 0), Ranged::Unsatisfiable);
        assert_eq!(parse("bytes=-5", 0), Ranged::Unsatisfiable);
    }

    #[test]
    fn malformed_or_multiple_ranges_get_the_whole_body() {
        assert_eq!(Ranged::parse(None, 100), Ranged::Full);
        for value in [
            "bytes=5-2",
            "bytes=0-9,20-29",
            "bytes=-",
            "bytes=a-b",
            "bytes=1",
            "bytes=+1-2",
            "items=0-9",
            "bytes=99999999999999999999999-",
            "",
        ] {
            assert_eq!(parse(value, 100), Ranged::Full, "{value}");
        }
    }
}
