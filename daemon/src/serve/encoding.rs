//! Content codings: choosing gzip or brotli from `Accept-Encoding`, and the compressed
//! bodies a resource keeps once made. A body is compressed at most once per coding and
//! build (on the first request that wants it, off the async workers), never per request;
//! a new build brings new resources and so fresh caches.

use std::io::{self, Write};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, header};
use tokio::sync::OnceCell;

/// Bodies smaller than this are sent as they are: the coding's header and framing eat
/// most of the gain, and the client's time to decode is not free either.
const MIN_COMPRESS_BYTES: u64 = 512;
/// Bodies larger than this are sent as they are rather than held compressed in memory.
const MAX_COMPRESS_BYTES: u64 = 16 * 1024 * 1024;
/// flate2's default (6): the usual balance of ratio and time.
const GZIP_LEVEL: u32 = 6;
/// Brotli quality 5 beats gzip -9 on ratio at about gzip -6's speed; 11 is 50–100 times
/// slower, too slow for the first request after a rebuild.
const BROTLI_QUALITY: u32 = 5;
const BROTLI_WINDOW_BITS: u32 = 22;

/// A content coding the server can send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    Identity,
    Gzip,
    Brotli,
}

impl Coding {
    /// The coding to send, from the request's `Accept-Encoding`: the one with the highest
    /// q-value, brotli on a tie; identity when neither is acceptable.
    pub fn negotiate(headers: &HeaderMap) -> Coding {
        let (brotli, gzip) = Coding::accepted(headers);
        if brotli > 0.0 && brotli >= gzip {
            Coding::Brotli
        } else if gzip > 0.0 {
            Coding::Gzip
        } else {
            Coding::Identity
        }
    }

    /// The coding to send a packed page in: gzip, as it is held, whenever the client
    /// takes it (every browser does); identity otherwise, brotli never (making it would
    /// mean inflating the page and holding a second copy).
    pub fn negotiate_packed(headers: &HeaderMap) -> Coding {
        if Coding::accepted(headers).1 > 0.0 {
            Coding::Gzip
        } else {
            Coding::Identity
        }
    }

    /// The q-values of brotli and of gzip in `Accept-Encoding` (0 when not acceptable).
    fn accepted(headers: &HeaderMap) -> (f32, f32) {
        let mut brotli: Option<f32> = None;
        let mut gzip: Option<f32> = None;
        let mut any: Option<f32> = None;
        for value in headers.get_all(header::ACCEPT_ENCODING) {
            let Ok(value) = value.to_str() else { continue };
            for item in value.split(',') {
                let mut parts = item.split(';');
                let name = parts.next().unwrap_or("").trim();
                let mut q = 1.0f32;
                for param in parts {
                    if let Some((key, v)) = param.split_once('=')
                        && key.trim().eq_ignore_ascii_case("q")
                    {
                        q = v.trim().parse().unwrap_or(0.0);
                    }
                }
                let slot = if name.eq_ignore_ascii_case("br") {
                    &mut brotli
                } else if name.eq_ignore_ascii_case("gzip") || name.eq_ignore_ascii_case("x-gzip") {
                    &mut gzip
                } else if name == "*" {
                    &mut any
                } else {
                    continue;
                };
                *slot = Some(q);
            }
        }
        (brotli.or(any).unwrap_or(0.0), gzip.or(any).unwrap_or(0.0))
    }

    /// The `Content-Encoding` value, `None` for identity.
    pub fn header(self) -> Option<HeaderValue> {
        match self {
            Coding::Identity => None,
            Coding::Gzip => Some(HeaderValue::from_static("gzip")),
            Coding::Brotli => Some(HeaderValue::from_static("br")),
        }
    }

    fn tag_suffix(self) -> &'static str {
        match self {
            Coding::Identity => "",
            Coding::Gzip => "-gz",
            Coding::Brotli => "-br",
        }
    }

    /// The tag of the coded representation made from one tagged `base` (`"abc"` →
    /// `"abc-gz"`).
    pub fn etag(self, base: &str) -> String {
        let inner = base.strip_suffix('"').unwrap_or(base);
        format!("{inner}{}\"", self.tag_suffix())
    }

    /// Whether `tag` is this coding's tag for `base`, without allocating.
    pub fn etag_suffix_matches(self, base: &str, tag: &str) -> bool {
        let inner = base.strip_suffix('"').unwrap_or(base);
        tag.strip_prefix(inner)
            .and_then(|rest| rest.strip_prefix(self.tag_suffix()))
            == Some("\"")
            && self != Coding::Identity
    }
}

/// Whether a body of this type shrinks when compressed (text, scripts, data, SVG).
/// Images, audio, video, fonts in WOFF and archives are compressed already.
pub fn is_compressible(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence.starts_with("text/")
        || essence.ends_with("+json")
        || essence.ends_with("+xml")
        || matches!(
            essence.as_str(),
            "application/javascript"
                | "application/json"
                | "application/xml"
                | "application/wasm"
                | "application/x-ndjson"
                | "image/x-icon"
                | "image/vnd.microsoft.icon"
                | "image/bmp"
                | "font/ttf"
                | "font/otf"
        )
}

/// One coded body, made from the representation tagged `source_etag`.
#[derive(Debug, Clone)]
pub struct Encoded {
    pub body: Bytes,
    /// `ETag` of the coded representation.
    pub etag: HeaderValue,
    /// Tag of the identity body it was made from; for files, checked against the file
    /// as it is now, so an edit on disk is never answered with a stale compressed copy.
    pub source_etag: String,
}

/// Where the body to compress comes from.
#[derive(Debug, Clone, Copy)]
pub enum Source<'a> {
    Memory(&'a super::Pieces),
    /// A file opened for this request; read whole (it is at most [`MAX_COMPRESS_BYTES`])
    /// when first asked, from its start, without moving its position.
    File(&'a std::fs::File),
}

/// The compressed forms of one resource, each made on first demand.
#[derive(Debug, Clone, Default)]
pub struct Encodings {
    gzip: OnceCell<Option<Encoded>>,
    brotli: OnceCell<Option<Encoded>>,
}

impl Encodings {
    /// The body in `coding` for the representation currently tagged `etag`, making it
    /// on the first call. `None` when it would not be smaller, the body is too small or
    /// too large, or the cached copy was made from another version of the file.
    /// Concurrent first callers wait for one compression rather than each doing it.
    pub async fn get(
        &self,
        coding: Coding,
        etag: &str,
        len: u64,
        source: Source<'_>,
    ) -> Option<&Encoded> {
        if !(MIN_COMPRESS_BYTES..=MAX_COMPRESS_BYTES).contains(&len) {
            return None;
        }
        let cell = match coding {
            Coding::Identity => return None,
            Coding::Gzip => &self.gzip,
            Coding::Brotli => &self.brotli,
        };
        let encoded = cell
            .get_or_init(|| make(coding, etag.to_owned(), source.into()))
            .await
            .as_ref()?;
        (encoded.source_etag == etag).then_some(encoded)
    }

    /// The body in `coding` if it was made already, without making it.
    pub fn peek(&self, coding: Coding, etag: &str) -> Option<&Encoded> {
        let cell = match coding {
            Coding::Identity => return None,
            Coding::Gzip => &self.gzip,
            Coding::Brotli => &self.brotli,
        };
        cell.get()
            .and_then(Option::as_ref)
            .filter(|encoded| encoded.source_etag == etag)
    }
}

/// An owned [`Source`], to move onto a blocking thread.
enum OwnedSource {
    Memory(super::Pieces),
    File(io::Result<std::fs::File>),
}

impl From<Source<'_>> for OwnedSource {
    fn from(source: Source<'_>) -> OwnedSource {
        match source {
            Source::Memory(pieces) => OwnedSource::Memory(pieces.clone()),
            Source::File(file) => OwnedSource::File(file.try_clone()),
        }
    }
}

async fn make(coding: Coding, etag: String, source: OwnedSource) -> Option<Encoded> {
    let made = tokio::task::spawn_blocking(move || -> io::Result<Option<Encoded>> {
        let (etag, data) = match source {
            OwnedSource::Memory(pieces) => (etag, pieces.contiguous()),
            OwnedSource::File(file) => {
                let file = file?;
                let meta = file.metadata()?;
                // Tag what is actually read, which may be newer than the request's view.
                let etag = super::resource::file_etag(&meta);
                (
                    etag,
                    Bytes::from(read_from_start(&file, MAX_COMPRESS_BYTES + 1)?),
                )
            }
        };
        let compressed = compress(coding, &data)?;
        if compressed.len() >= data.len() {
            return Ok(None);
        }
        let tag = coding.etag(&etag);
        Ok(HeaderValue::from_str(&tag).ok().map(|tag| Encoded {
            body: Bytes::from(compressed),
            etag: tag,
            source_etag: etag,
        }))
    })
    .await;
    match made {
        Ok(Ok(encoded)) => encoded,
        Ok(Err(error)) => {
            tracing::warn!(%error, "cannot compress a response body; sending it as it is");
            None
        }
        Err(error) => {
            tracing::warn!(%error, "compression task failed");
            None
        }
    }
}

/// Up to `limit` bytes of `file` from its start, leaving its position where it is (the
/// request that opened it may still stream it).
fn read_from_start(file: &std::fs::File, limit: u64) -> io::Result<Vec<u8>> {
    use std::os::unix::fs::FileExt;
    let len = file.metadata()?.len().min(limit);
    let mut data = vec![0u8; len as usize];
    let mut filled = 0;
    while filled < data.len() {
        match file.read_at(&mut data[filled..], filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    data.truncate(filled);
    Ok(data)
}

/// `data` in `coding`.
pub fn compress(coding: Coding, data: &[u8]) -> io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(data.len() / 3 + 64);
    match coding {
        Coding::Identity => out.extend_from_slice(data),
        Coding::Gzip => {
            let mut encoder =
                flate2::write::GzEncoder::new(&mut out, flate2::Compression::new(GZIP_LEVEL));
            encoder.write_all(data)?;
            encoder.finish()?;
        }
        Coding::Brotli => {
            let mut encoder = brotli::CompressorWriter::new(
                &mut out,
                64 * 1024,
                BROTLI_QUALITY,
                BROTLI_WINDOW_BITS,
            );
            encoder.write_all(data)?;
            encoder.flush()?;
            drop(encoder);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn accept(value: &str) -> Coding {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_str(value).unwrap(),
        );
        Coding::negotiate(&headers)
    }

    #[test]
    fn negotiation_prefers_brotli_and_honours_q_values() {
        assert_eq!(Coding::negotiate(&HeaderMap::new()), Coding::Identity);
        assert_eq!(accept("gzip, deflate, br, zstd"), Coding::Brotli);
        assert_eq!(accept("gzip, deflate"), Coding::Gzip);
        assert_eq!(accept("GZIP"), Coding::Gzip);
        assert_eq!(accept("x-gzip"), Coding::Gzip);
        assert_eq!(accept("br;q=0, gzip"), Coding::Gzip);
        assert_eq!(accept("br;q=0.5, gzip;q=0.8"), Coding::Gzip);
        assert_eq!(accept("gzip;q=0, br;q=0"), Coding::Identity);
        assert_eq!(accept("*"), Coding::Brotli);
        assert_eq!(accept("*;q=0, gzip"), Coding::Gzip);
        assert_eq!(accept("identity"), Coding::Identity);
        assert_eq!(accept("deflate"), Coding::Identity);
        assert_eq!(accept("gzip;q=nonsense"), Coding::Identity);
    }

    #[test]
    fn coded_tags_are_distinct_and_recognised() {
        assert_eq!(Coding::Gzip.etag("\"abc\""), "\"abc-gz\"");
        assert_eq!(Coding::Brotli.etag("\"abc\""), "\"abc-br\"");
        assert!(Coding::Gzip.etag_suffix_matches("\"abc\"", "\"abc-gz\""));
        assert!(!Coding::Gzip.etag_suffix_matches("\"abc\"", "\"abc-br\""));
        assert!(!Coding::Gzip.etag_suffix_matches("\"abc\"", "\"abc\""));
        assert!(!Coding::Identity.etag_suffix_matches("\"abc\"", "\"abc\""));
    }

    #[test]
    fn text_is_compressible_and_media_is_not() {
        for t in [
            "text/html; charset=utf-8",
            "text/css",
            "text/javascript; charset=utf-8",
            "application/json",
            "image/svg+xml; charset=utf-8",
            "application/manifest+json",
            "application/wasm",
        ] {
            assert!(is_compressible(t), "{t}");
        }
        for t in [
            "image/png",
            "video/mp4",
            "font/woff2",
            "application/zip",
            "application/octet-stream",
        ] {
            assert!(!is_compressible(t), "{t}");
        }
    }

    #[test]
    fn both_codings_round_trip() {
        let data = "<p>hello, compressible world</p>\n"
            .repeat(200)
            .into_bytes();
        let gz = compress(Coding::Gzip, &data).unwrap();
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, data);
        assert!(gz.len() < data.len() / 10);
        let br = compress(Coding::Brotli, &data).unwrap();
        let mut back = Vec::new();
        brotli::Decompressor::new(&br[..], 4096)
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, data);
        assert!(br.len() < data.len() / 10);
    }

    #[tokio::test]
    async fn a_body_is_compressed_once_and_small_ones_not_at_all() {
        let body = super::super::Pieces::whole(Bytes::from(
            "<p>hello, compressible world</p>\n".repeat(200),
        ));
        let encodings = Encodings::default();
        let len = body.len() as u64;
        let first = encodings
            .get(Coding::Gzip, "\"t\"", len, Source::Memory(&body))
            .await
            .expect("compressed")
            .body
            .clone();
        let second = encodings
            .get(Coding::Gzip, "\"t\"", len, Source::Memory(&body))
            .await
            .unwrap()
            .body
            .clone();
        assert_eq!(first.as_ptr(), second.as_ptr(), "made twice");
        assert_eq!(
            encodings
                .get(Coding::Gzip, "\"t\"", len, Source::Memory(&body))
                .await
                .unwrap()
                .etag,
            "\"t-gz\""
        );
        // Another version of the body than the cached one: not served from the cache.
        assert!(
            encodings
                .get(Coding::Gzip, "\"other\"", len, Source::Memory(&body))
                .await
                .is_none()
        );
        let small = super::super::Pieces::whole(Bytes::from_static(b"<p>hi</p>"));
        assert!(
            Encodings::default()
                .get(
                    Coding::Gzip,
                    "\"s\"",
                    small.len() as u64,
                    Source::Memory(&small)
                )
                .await
                .is_none()
        );
        // Incompressible: not kept.
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let noise: Vec<u8> = (0..4096)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 24) as u8
            })
            .collect();
        let noise = super::super::Pieces::whole(Bytes::from(noise));
        assert!(
            Encodings::default()
                .get(
                    Coding::Brotli,
                    "\"n\"",
                    noise.len() as u64,
                    Source::Memory(&noise)
                )
                .await
                .is_none()
        );
    }
}
