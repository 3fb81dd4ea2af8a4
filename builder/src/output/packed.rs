//! A page held compressed (issue 17 item 3): what a long-lived build keeps of each page
//! it serves. Pages are most of a site's memory (26.7 MiB of HTML for the tldr corpus)
//! and shrink two- to threefold with the fastest deflate, and every browser asks for
//! gzip, so a server can send them as they are held.
//!
//! A page is kept as two raw deflate segments split at its [`injection_point`] (where a
//! development server puts its live-reload script): the head ends on a sync flush, not a
//! final block, so a server can send head, a segment of its own, then tail, wrapped in a
//! gzip header and trailer, and the client inflates one well-formed stream. The
//! checksums of both halves are kept so that trailer is made without reading the page.

use std::cell::RefCell;
use std::io;

use bytes::{Bytes, BytesMut};
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use super::spill::Blob;

/// Level 1: zlib-rs's fastest deflate. Pages are packed on the render workers, so the
/// level is paid in every build's render stage. On the tldr corpus (BENCHMARKS.md) level
/// 1 holds the pages in 11.5 MiB and levels 2 to 6 in 9.1 to 8.4 MiB, but the daemon's
/// render stage took 230-300 ms at level 1 against 440-460 ms at levels 2 and 6: two
/// fifths of `sitectl up`'s build, for 3 MiB a site.
const LEVEL: u32 = 1;

/// A tail up to this long (a page's `</body></html>`, most often) is kept as a stored
/// block: a deflate stream of its own would cost a compressor's reset, which clears
/// tables of hundreds of KiB, for a few bytes (BENCHMARKS.md).
const STORED_TAIL: usize = 1024;

/// One page, compressed.
pub struct Packed {
    /// The head's deflate segment followed by the tail's: in memory, or spilled by a
    /// server's build once the build is done ([`Packed::blob`]).
    deflated: Blob,
    /// Where the tail's segment starts in `deflated`.
    split: usize,
    /// Where the page is split (the injection point), in its own bytes.
    at: usize,
    /// The page's length.
    len: usize,
    crc_head: u32,
    crc_tail: u32,
}

/// Pages are equal when they are the same length and split at the same place with the
/// same checksums on both sides: told without reading either back.
impl PartialEq for Packed {
    fn eq(&self, other: &Packed) -> bool {
        (self.len, self.at, self.crc_head, self.crc_tail)
            == (other.len, other.at, other.crc_head, other.crc_tail)
    }
}

impl Eq for Packed {}

impl std::fmt::Debug for Packed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Packed")
            .field("len", &self.len)
            .field("packed", &self.deflated.len())
            .field("spilled", &self.deflated.is_spilled())
            .field("at", &self.at)
            .finish()
    }
}

/// The gzip header a server sends before a packed page: deflate, no name, no time,
/// unknown OS (RFC 1952).
pub const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

impl Packed {
    /// Packs `page`, split at its [`injection_point`], and holds it in memory.
    pub fn pack(page: &[u8]) -> Packed {
        let at = injection_point(page);
        let (head, tail) = page.split_at(at);
        let mut deflated = deflate(head, FlushCompress::Sync);
        let split = deflated.len();
        if tail.len() <= STORED_TAIL {
            stored_final_block(tail, &mut deflated);
        } else {
            deflated.extend_from_slice(&deflate(tail, FlushCompress::Finish));
        }
        deflated.shrink_to_fit();
        Packed {
            deflated: Blob::new(Bytes::from(deflated)),
            split,
            at,
            len: page.len(),
            crc_head: crc32fast::hash(head),
            crc_tail: crc32fast::hash(tail),
        }
    }

    /// The page's length, unpacked.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// What the page takes packed.
    pub fn packed_len(&self) -> usize {
        self.deflated.len()
    }

    /// Where the page is split: its [`injection_point`].
    pub fn at(&self) -> usize {
        self.at
    }

    /// Whether its bytes are in a spill file rather than the heap.
    pub fn is_spilled(&self) -> bool {
        self.deflated.is_spilled()
    }

    /// Where its bytes are held, to spill them ([`Blob::spill_all`]).
    pub fn blob(&self) -> &Blob {
        &self.deflated
    }

    /// The page's bytes. Only a spilled page can fail: when its file cannot be read.
    pub fn unpack(&self) -> io::Result<Bytes> {
        let deflated = self.deflated.bytes()?;
        // A byte to spare, so the end of the stream is read with room left.
        let mut out = BytesMut::zeroed(self.len + 1);
        // A packed page is only ever made by `pack`: it inflates to exactly `len` bytes.
        let (status, total) = inflate(&deflated, &mut out);
        assert_eq!(status, Status::StreamEnd, "a packed page ends");
        assert_eq!(total, self.len, "a packed page's length");
        out.truncate(self.len);
        Ok(out.freeze())
    }

    /// The page as one gzip member with `insert` placed at its split point: the pieces to
    /// send in order (header, head, `insert`'s segment, tail, trailer). `insert` is a
    /// [`Segment`] made once by whoever inserts (an empty one inserts nothing). Fails as
    /// [`Packed::unpack`] does.
    pub fn gzip(&self, insert: &Segment) -> io::Result<[Bytes; 5]> {
        let deflated = self.deflated.bytes()?;
        let mut crc = crc32fast::Hasher::new_with_initial_len(self.crc_head, self.at as u64);
        crc.combine(&crc32fast::Hasher::new_with_initial_len(
            insert.crc,
            insert.len as u64,
        ));
        crc.combine(&crc32fast::Hasher::new_with_initial_len(
            self.crc_tail,
            (self.len - self.at) as u64,
        ));
        let total = self.len + insert.len;
        let mut trailer = [0u8; 8];
        trailer[..4].copy_from_slice(&crc.finalize().to_le_bytes());
        // ISIZE is the length modulo 2^32 (RFC 1952).
        trailer[4..].copy_from_slice(&(total as u32).to_le_bytes());
        Ok([
            Bytes::from_static(&GZIP_HEADER),
            deflated.slice(..self.split),
            insert.deflated.clone(),
            deflated.slice(self.split..),
            Bytes::copy_from_slice(&trailer),
        ])
    }

    /// The length of [`Packed::gzip`]'s pieces with `insert`.
    pub fn gzip_len(&self, insert: &Segment) -> usize {
        GZIP_HEADER.len() + self.deflated.len() + insert.deflated.len() + 8
    }
}

/// Bytes to insert into packed pages (the live-reload tag): their own deflate segment,
/// ended by a sync flush, and their checksum.
#[derive(Debug, Clone)]
pub struct Segment {
    pub deflated: Bytes,
    pub crc: u32,
    pub len: usize,
}

impl Segment {
    pub fn new(bytes: &[u8]) -> Segment {
        Segment {
            deflated: Bytes::from(deflate(bytes, FlushCompress::Sync)),
            crc: crc32fast::hash(bytes),
            len: bytes.len(),
        }
    }

    /// Inserts nothing.
    pub fn empty() -> Segment {
        Segment {
            deflated: Bytes::new(),
            crc: 0,
            len: 0,
        }
    }
}

/// Where a development server inserts its live-reload script into a page: before the
/// last `</body>` (any case), else at the end.
pub fn injection_point(html: &[u8]) -> usize {
    const NEEDLE: &[u8] = b"</body>";
    if NEEDLE.len() > html.len() {
        return html.len();
    }
    (0..=html.len() - NEEDLE.len())
        .rev()
        .find(|&i| html[i..i + NEEDLE.len()].eq_ignore_ascii_case(NEEDLE))
        .unwrap_or(html.len())
}

/// Appends `data` as a final stored (uncompressed) deflate block (RFC 1951, 3.2.4),
/// which starts on a byte boundary, as every segment here does (a sync flush ends on
/// one).
fn stored_final_block(data: &[u8], out: &mut Vec<u8>) {
    let len = u16::try_from(data.len()).expect("a stored block holds at most 65,535 bytes");
    // BFINAL 1, BTYPE 00, then padding to the byte.
    out.push(0b001);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&(!len).to_le_bytes());
    out.extend_from_slice(data);
}

thread_local! {
    // One compressor and one decompressor per thread, reset for each page. zlib-rs's
    // are large (a deflate state is some hundreds of KiB): made and freed per page, on
    // the render workers and the serving threads, they left the daemon tens of MB of
    // allocator slack (BENCHMARKS.md).
    static COMPRESS: RefCell<Compress> =
        RefCell::new(Compress::new(Compression::new(LEVEL), false));
    static DECOMPRESS: RefCell<Decompress> = RefCell::new(Decompress::new(false));
}

/// Inflates raw deflate `data` into `out`: how it ended, and how many bytes it made.
fn inflate(data: &[u8], out: &mut [u8]) -> (Status, usize) {
    DECOMPRESS.with_borrow_mut(|inflate| {
        inflate.reset(false);
        let status = inflate
            .decompress(data, out, FlushDecompress::Finish)
            .expect("a packed page inflates");
        (status, inflate.total_out() as usize)
    })
}

/// `data` as raw deflate: ended by a sync flush (more segments may follow) or a final
/// block (`Finish`).
fn deflate(data: &[u8], flush: FlushCompress) -> Vec<u8> {
    COMPRESS.with_borrow_mut(|compress| {
        compress.reset();
        deflate_with(compress, data, flush)
    })
}

fn deflate_with(compress: &mut Compress, data: &[u8], flush: FlushCompress) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() / 3 + 64);
    loop {
        let consumed = compress.total_in() as usize;
        let status = compress
            .compress_vec(&data[consumed..], &mut out, flush)
            .map_err(io::Error::other)
            .expect("deflate into a growing buffer cannot fail");
        let all_in = compress.total_in() as usize == data.len();
        // Done when a final block is out, or (sync) when all input is in and the flush
        // left room in the buffer, which is how zlib says it has nothing pending.
        let done = match flush {
            FlushCompress::Finish => status == Status::StreamEnd,
            _ => all_in && out.len() < out.capacity(),
        };
        if done {
            return out;
        }
        out.reserve(out.capacity().max(64));
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    fn page(n: usize) -> Vec<u8> {
        let mut html = b"<!doctype html><html><body>".to_vec();
        for i in 0..n {
            html.extend_from_slice(format!("<p>paragraph {i} of the page</p>\n").as_bytes());
        }
        html.extend_from_slice(b"</BODY></html>\n");
        html
    }

    fn gunzip(pieces: &[Bytes]) -> Vec<u8> {
        let joined: Vec<u8> = pieces.iter().flat_map(|p| p.iter().copied()).collect();
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&joined[..])
            .read_to_end(&mut out)
            .expect("a valid gzip member");
        out
    }

    #[test]
    fn unpacks_to_the_page_and_is_smaller() {
        for n in [0, 1, 30, 5000] {
            let html = page(n);
            let packed = Packed::pack(&html);
            assert_eq!(&packed.unpack().unwrap()[..], &html[..]);
            assert_eq!(packed.len(), html.len());
            if n >= 30 {
                assert!(packed.packed_len() * 3 < html.len(), "{packed:?}");
            }
        }
    }

    #[test]
    fn gzip_with_an_insert_is_the_page_with_it_at_body_end() {
        let html = page(200);
        let packed = Packed::pack(&html);
        let at = packed.at();
        assert_eq!(&html[at..at + 7], b"</BODY>");
        let tag = b"<script src=\"/x.js\"></script>";
        let insert = Segment::new(tag);
        let pieces = packed.gzip(&insert).unwrap();
        let mut expected = html[..at].to_vec();
        expected.extend_from_slice(tag);
        expected.extend_from_slice(&html[at..]);
        assert_eq!(gunzip(&pieces), expected);
        let sent: usize = pieces.iter().map(Bytes::len).sum();
        assert_eq!(sent, packed.gzip_len(&insert));
        // Nothing inserted: the page itself.
        assert_eq!(gunzip(&packed.gzip(&Segment::empty()).unwrap()), html);
    }

    #[test]
    fn short_and_long_tails_both_make_one_stream_with_the_insert() {
        let head = page(300);
        let at = head.len() - b"</BODY></html>\n".len();
        for tail_len in [0, 15, STORED_TAIL, STORED_TAIL + 1, 70_000] {
            let mut html = head[..at].to_vec();
            html.extend_from_slice(b"</BODY>");
            html.extend(std::iter::repeat_n(b'x', tail_len));
            let packed = Packed::pack(&html);
            assert_eq!(
                &packed.unpack().unwrap()[..],
                &html[..],
                "tail of {tail_len}"
            );
            let insert = Segment::new(b"<script></script>");
            let mut expected = html[..at].to_vec();
            expected.extend_from_slice(b"<script></script>");
            expected.extend_from_slice(&html[at..]);
            assert_eq!(
                gunzip(&packed.gzip(&insert).unwrap()),
                expected,
                "tail of {tail_len}"
            );
        }
    }

    #[test]
    fn a_page_without_body_end_is_split_at_its_end() {
        let html = b"plain text, no closing body tag".repeat(40);
        let packed = Packed::pack(&html);
        assert_eq!(packed.at(), html.len());
        let insert = Segment::new(b"<!-- tail -->");
        let mut expected = html.clone();
        expected.extend_from_slice(b"<!-- tail -->");
        assert_eq!(gunzip(&packed.gzip(&insert).unwrap()), expected);
        assert_eq!(
            gunzip(&Packed::pack(b"").gzip(&insert).unwrap()),
            b"<!-- tail -->"
        );
    }
}
