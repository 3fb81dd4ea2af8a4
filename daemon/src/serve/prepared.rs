//! What the server derives from a built resource once per build rather than per request:
//! its header values, whether it is worth compressing, and the compressed bodies made so
//! far. The hot path of a request then only clones these.

use std::time::SystemTime;

use http::HeaderValue;
use sited_builder::output::packed::Segment;

use super::encoding::{Encodings, is_compressible};

/// Header values and compressed bodies of one resource.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub content_type: HeaderValue,
    pub etag: HeaderValue,
    pub last_modified: HeaderValue,
    /// Whether the type shrinks when compressed; its responses vary on `Accept-Encoding`.
    pub compressible: bool,
    pub encodings: Encodings,
    /// Where the live-reload script goes into a page and the tag itself, found on its
    /// first request (the page is sent around it, never copied).
    pub live_reload: std::sync::OnceLock<(usize, bytes::Bytes)>,
    /// For a packed page: the live-reload tag as its own deflate segment, made on the
    /// first gzip request that injects it.
    pub packed_insert: std::sync::OnceLock<Segment>,
    /// For a packed page: its tag as sent in gzip.
    pub gzip_etag: std::sync::OnceLock<HeaderValue>,
}

impl Prepared {
    pub fn new(content_type: &str, etag: &str, modified: SystemTime) -> Prepared {
        Prepared {
            content_type: HeaderValue::from_str(content_type)
                .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream")),
            etag: HeaderValue::from_str(etag).unwrap_or_else(|_| HeaderValue::from_static("\"\"")),
            last_modified: http_date(modified),
            compressible: is_compressible(content_type),
            encodings: Encodings::default(),
            live_reload: std::sync::OnceLock::new(),
            packed_insert: std::sync::OnceLock::new(),
            gzip_etag: std::sync::OnceLock::new(),
        }
    }
}

/// `time` as an HTTP date (`Sun, 06 Nov 1994 08:49:37 GMT`).
pub fn http_date(time: SystemTime) -> HeaderValue {
    HeaderValue::from_str(&httpdate::fmt_http_date(time))
        .expect("an HTTP date is a valid header value")
}
