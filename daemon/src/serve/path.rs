//! Turning a request path into the key of a built URL, and refusing every spelling that
//! could mean a different path than it shows: dot segments, encoded separators, NUL and
//! control bytes, invalid or overlong UTF-8. The result is only ever looked up in the
//! build's map, never joined onto the file system; the refusals make hostile requests
//! fail loudly (400) instead of quietly missing (404).

use std::borrow::Cow;

/// Why a path was refused. Every case is the client's fault: 400.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadPath {
    /// Not origin-form (`/…`).
    NotAbsolute,
    /// `.` or `..` as a segment, literally or percent-encoded.
    DotSegment,
    /// `%2f`, `%5c` or a raw backslash: a separator that is not one.
    EncodedSeparator,
    /// NUL or another control byte, raw or encoded.
    ControlByte,
    /// `%` not followed by two hex digits.
    BadEscape,
    /// The decoded bytes are not UTF-8 (this is where overlong forms such as `%c0%ae`
    /// end up: Rust's UTF-8 validation rejects them).
    NotUtf8,
}

/// The decoded path for `raw` (the path part of the request target, without the query).
/// Each segment is decoded exactly once: `%252e` stays the literal text `%2e`.
pub fn decode(raw: &str) -> Result<Cow<'_, str>, BadPath> {
    if !raw.starts_with('/') {
        return Err(BadPath::NotAbsolute);
    }
    if raw.contains('\\') {
        return Err(BadPath::EncodedSeparator);
    }
    if !raw.contains('%') {
        // The common case: nothing to decode, nothing to allocate.
        for segment in raw.split('/') {
            check_segment(segment.as_bytes())?;
        }
        return Ok(Cow::Borrowed(raw));
    }
    let mut out = Vec::with_capacity(raw.len());
    for (i, segment) in raw.split('/').enumerate() {
        if i > 0 {
            out.push(b'/');
        }
        let decoded_from = out.len();
        let bytes = segment.as_bytes();
        let mut j = 0;
        while j < bytes.len() {
            if bytes[j] == b'%' {
                let hex = |k: usize| bytes.get(k).and_then(|b| (*b as char).to_digit(16));
                let (Some(high), Some(low)) = (hex(j + 1), hex(j + 2)) else {
                    return Err(BadPath::BadEscape);
                };
                let byte = (high * 16 + low) as u8;
                if byte == b'/' || byte == b'\\' {
                    return Err(BadPath::EncodedSeparator);
                }
                out.push(byte);
                j += 3;
            } else {
                out.push(bytes[j]);
                j += 1;
            }
        }
        check_segment(&out[decoded_from..])?;
    }
    String::from_utf8(out)
        .map(Cow::Owned)
        .map_err(|_| BadPath::NotUtf8)
}

fn check_segment(segment: &[u8]) -> Result<(), BadPath> {
    if segment == b"." || segment == b".." {
        return Err(BadPath::DotSegment);
    }
    if segment.iter().any(|&b| b < 0x20 || b == 0x7f) {
        return Err(BadPath::ControlByte);
    }
    Ok(())
}

/// The one hidden folder served: where browsers and tools look for a site's
/// `security.txt`, `assetlinks.json`, ACME challenges and the like (RFC 8615).
pub const WELL_KNOWN: &str = "/.well-known/";

/// Whether a decoded path names something hidden (a segment starting with `.`:
/// `/.git/config`, `/a/.env`), which is never served even if a build produced it; only
/// [`WELL_KNOWN`] at the top is served (and hidden names inside it are not).
pub fn is_hidden(path: &str) -> bool {
    let rest = path.strip_prefix(WELL_KNOWN).unwrap_or(path);
    rest.split('/').any(|segment| segment.starts_with('.'))
}

/// Percent-encodes a decoded path for a `Location` header: everything but unreserved
/// characters, `/` and a few harmless sub-delimiters.
pub fn encode(path: &str) -> String {
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
    fn plain_paths_are_borrowed_and_encoded_ones_decoded_once() {
        assert!(matches!(
            decode("/posts/hello/"),
            Ok(Cow::Borrowed("/posts/hello/"))
        ));
        assert_eq!(decode("/a%20b.png").unwrap(), "/a b.png");
        assert_eq!(decode("/caf%C3%A9/").unwrap(), "/café/");
        // Double encoding is decoded once: the segment is the literal text `%2e%2e`,
        // which no build produces.
        assert_eq!(decode("/%252e%252e/etc").unwrap(), "/%2e%2e/etc");
        assert_eq!(decode("/").unwrap(), "/");
        assert_eq!(decode("/a//b").unwrap(), "/a//b");
        assert_eq!(decode("/a..b/.x/").unwrap(), "/a..b/.x/");
    }

    #[test]
    fn hidden_paths_are_told_apart_from_well_known() {
        for hidden in [
            "/.git/config",
            "/.env",
            "/a/.htaccess",
            "/.well-known",
            "/x/.well-known/y",
            "/.well-known/.secret",
            "/.well-known/a/.b/",
        ] {
            assert!(is_hidden(hidden), "{hidden}");
        }
        for shown in [
            "/",
            "/a/b.txt",
            "/.well-known/",
            "/.well-known/security.txt",
            "/.well-known/acme-challenge/abc",
            "/a..b/",
        ] {
            assert!(!is_hidden(shown), "{shown}");
        }
    }

    #[test]
    fn hostile_spellings_are_refused() {
        for (raw, why) in [
            ("/../etc/passwd", BadPath::DotSegment),
            ("/a/./b", BadPath::DotSegment),
            ("/a/..", BadPath::DotSegment),
            ("/%2e%2e/etc/passwd", BadPath::DotSegment),
            ("/%2E%2E/etc/passwd", BadPath::DotSegment),
            ("/.%2e/x", BadPath::DotSegment),
            ("/%2e/x", BadPath::DotSegment),
            ("/..%2fetc%2fpasswd", BadPath::EncodedSeparator),
            ("/a%2fb", BadPath::EncodedSeparator),
            ("/a%2Fb", BadPath::EncodedSeparator),
            ("/a%5cb", BadPath::EncodedSeparator),
            ("/..\\..\\etc", BadPath::EncodedSeparator),
            ("/a\\b", BadPath::EncodedSeparator),
            ("/a%00.html", BadPath::ControlByte),
            ("/a%0d%0aSet-Cookie:x", BadPath::ControlByte),
            ("/a%7f", BadPath::ControlByte),
            ("/%c0%ae%c0%ae/etc/passwd", BadPath::NotUtf8),
            ("/%c0%af", BadPath::NotUtf8),
            ("/%e0%80%ae", BadPath::NotUtf8),
            ("/%ff", BadPath::NotUtf8),
            ("/a%2", BadPath::BadEscape),
            ("/a%zz", BadPath::BadEscape),
            ("*", BadPath::NotAbsolute),
            ("", BadPath::NotAbsolute),
        ] {
            assert_eq!(decode(raw), Err(why), "{raw}");
        }
    }
}
