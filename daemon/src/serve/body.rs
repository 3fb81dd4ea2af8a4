//! Response bodies: bytes already in memory (a rendered page, a compressed copy, a slice
//! of one for a Range, a page and its live-reload tag sent as pieces), or a span of a file streamed in chunks, so a large video is
//! never read whole into memory for a request. Both report their exact length, so hyper
//! writes `Content-Length` rather than chunked framing.

use std::io;
use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{BufMut, Bytes, BytesMut};
use hyper::body::{Body, Frame, SizeHint};
use tokio::fs::File;

use super::Files;

/// Bytes read from a file per frame.
pub const FILE_CHUNK: usize = 64 * 1024;

/// Opens a file the build vetted, beneath the site's directory with no symlink on the
/// way ([`Files`]), off the async threads. Returns the file's metadata too: its
/// validators are taken from the file as opened, not as built.
pub async fn open(files: &Files, path: &Path) -> io::Result<(std::fs::File, std::fs::Metadata)> {
    let files = files.clone();
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let file = files.open(&path)?;
        let meta = file.metadata()?;
        Ok((file, meta))
    })
    .await
    .map_err(io::Error::other)?
}

/// Bytes held as a few pieces sent one after the other: a page with the live-reload tag
/// added is its two halves around the tag, so serving a page never copies it (a full
/// copy per page once cost as much memory as the build itself). A packed page sent as
/// gzip is five: header, head, tag, tail, trailer ([`sited_builder::output::Packed::gzip`]).
#[derive(Debug, Clone, Default)]
pub struct Pieces([Bytes; 5]);

impl Pieces {
    pub fn whole(bytes: Bytes) -> Pieces {
        Pieces([
            bytes,
            Bytes::new(),
            Bytes::new(),
            Bytes::new(),
            Bytes::new(),
        ])
    }

    /// `page` with `tag` inserted at byte `at`.
    pub fn inserted(page: &Bytes, at: usize, tag: &Bytes) -> Pieces {
        Pieces([
            page.slice(..at),
            tag.clone(),
            page.slice(at..),
            Bytes::new(),
            Bytes::new(),
        ])
    }

    pub fn from_array(pieces: [Bytes; 5]) -> Pieces {
        Pieces(pieces)
    }

    pub fn len(&self) -> usize {
        self.0.iter().map(Bytes::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `len` bytes from `start` (which must lie within), still without copying.
    pub fn slice(&self, start: usize, len: usize) -> Pieces {
        let mut out = Pieces::default();
        let (mut skip, mut want) = (start, len);
        for (piece, slot) in self.0.iter().zip(out.0.iter_mut()) {
            if skip >= piece.len() {
                skip -= piece.len();
                continue;
            }
            let take = (piece.len() - skip).min(want);
            *slot = piece.slice(skip..skip + take);
            skip = 0;
            want -= take;
        }
        out
    }

    /// The bytes in one piece: copied only if there are several.
    pub fn contiguous(&self) -> Bytes {
        if self.0[1..].iter().all(Bytes::is_empty) {
            self.0[0].clone()
        } else {
            Bytes::from(self.0.concat())
        }
    }
}

/// A response body.
#[derive(Debug)]
pub enum ReplyBody {
    /// Held in memory; `None` once sent (or for an empty body).
    Bytes(Option<Bytes>),
    /// Held in memory in pieces, sent in order; each is taken when sent.
    Pieces(Pieces),
    /// A span of a file; boxed, since a file handle is large and rare next to bytes.
    File(Box<FileSpan>),
    /// A stream with no known end: the live-reload events.
    Events(EventStream),
}

/// Chunks produced as they happen (Server-Sent Events).
pub struct EventStream(pub std::pin::Pin<Box<dyn futures::Stream<Item = Bytes> + Send>>);

impl std::fmt::Debug for EventStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EventStream")
    }
}

/// `remaining` bytes of `file` from its current position.
#[derive(Debug)]
pub struct FileSpan {
    file: File,
    remaining: u64,
    buf: BytesMut,
}

impl ReplyBody {
    pub fn empty() -> ReplyBody {
        ReplyBody::Bytes(None)
    }

    pub fn bytes(bytes: Bytes) -> ReplyBody {
        ReplyBody::Bytes((!bytes.is_empty()).then_some(bytes))
    }

    pub fn pieces(pieces: Pieces) -> ReplyBody {
        ReplyBody::Pieces(pieces)
    }

    /// The next `len` bytes of `file`, which is already positioned.
    pub fn file(file: File, len: u64) -> ReplyBody {
        ReplyBody::File(Box::new(FileSpan {
            file,
            remaining: len,
            buf: BytesMut::new(),
        }))
    }
}

impl From<&'static str> for ReplyBody {
    fn from(text: &'static str) -> ReplyBody {
        ReplyBody::bytes(Bytes::from_static(text.as_bytes()))
    }
}

impl Body for ReplyBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        match self.get_mut() {
            ReplyBody::Bytes(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            ReplyBody::Pieces(pieces) => Poll::Ready(
                pieces
                    .0
                    .iter_mut()
                    .find(|piece| !piece.is_empty())
                    .map(|piece| Ok(Frame::data(std::mem::take(piece)))),
            ),
            ReplyBody::Events(events) => events
                .0
                .as_mut()
                .poll_next(cx)
                .map(|chunk| chunk.map(|b| Ok(Frame::data(b)))),
            ReplyBody::File(span) => {
                let FileSpan {
                    file,
                    remaining,
                    buf,
                } = &mut **span;
                if *remaining == 0 {
                    return Poll::Ready(None);
                }
                let want = (*remaining).min(FILE_CHUNK as u64) as usize;
                if buf.capacity() < want {
                    buf.reserve(want);
                }
                let read = ready!(tokio_util::io::poll_read_buf(
                    Pin::new(file),
                    cx,
                    &mut (&mut *buf).limit(want)
                ));
                match read {
                    Ok(0) => {
                        // The file shrank under us: end the response short, which the
                        // client sees as an error rather than wrong bytes.
                        *remaining = 0;
                        Poll::Ready(Some(Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "file shrank while being sent",
                        ))))
                    }
                    Ok(n) => {
                        *remaining -= n as u64;
                        Poll::Ready(Some(Ok(Frame::data(buf.split().freeze()))))
                    }
                    Err(error) => {
                        *remaining = 0;
                        Poll::Ready(Some(Err(error)))
                    }
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ReplyBody::Bytes(bytes) => bytes.is_none(),
            ReplyBody::Pieces(pieces) => pieces.is_empty(),
            ReplyBody::File(span) => span.remaining == 0,
            ReplyBody::Events(_) => false,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ReplyBody::Bytes(bytes) => {
                SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64))
            }
            ReplyBody::Pieces(pieces) => SizeHint::with_exact(pieces.len() as u64),
            ReplyBody::File(span) => SizeHint::with_exact(span.remaining),
            ReplyBody::Events(_) => SizeHint::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use tokio::io::AsyncSeekExt;

    #[tokio::test]
    async fn pieces_are_sliced_and_sent_in_order_without_copying() {
        let page = Bytes::from_static(b"<p>hello</p></body>");
        let tag = Bytes::from_static(b"<script></script>");
        let pieces = Pieces::inserted(&page, 12, &tag);
        let whole = b"<p>hello</p><script></script></body>";
        assert_eq!(pieces.len(), whole.len());
        assert_eq!(&pieces.contiguous()[..], whole);
        // The first piece is the page's own memory.
        assert_eq!(pieces.0[0].as_ptr(), page.as_ptr());
        for start in 0..whole.len() {
            for len in 0..=whole.len() - start {
                let part = pieces.slice(start, len);
                assert_eq!(&part.contiguous()[..], &whole[start..start + len]);
            }
        }
        let mut body = ReplyBody::pieces(pieces.slice(3, 20));
        assert_eq!(body.size_hint().exact(), Some(20));
        let mut sent = Vec::new();
        while let Some(frame) = body.frame().await {
            sent.extend_from_slice(&frame.unwrap().into_data().unwrap());
        }
        assert_eq!(&sent[..], &whole[3..23]);
        assert!(body.is_end_stream());
    }

    #[tokio::test]
    async fn a_file_span_streams_in_bounded_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("clip.bin");
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        let mut file = File::open(&path).await.unwrap();
        file.seek(io::SeekFrom::Start(1000)).await.unwrap();
        let mut body = ReplyBody::file(file, 200_000);
        assert_eq!(body.size_hint().exact(), Some(200_000));
        let mut got = Vec::new();
        while let Some(frame) = body.frame().await {
            let chunk = frame.unwrap().into_data().unwrap();
            assert!(
                chunk.len() <= FILE_CHUNK,
                "a chunk of {} bytes",
                chunk.len()
            );
            got.extend_from_slice(&chunk);
        }
        assert_eq!(got, &data[1000..201_000]);
        assert!(body.is_end_stream());
    }

    #[tokio::test]
    async fn a_file_that_shrank_ends_in_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("short.bin");
        std::fs::write(&path, [1u8; 10]).unwrap();
        let mut body = ReplyBody::file(File::open(&path).await.unwrap(), 20);
        assert_eq!(
            body.frame()
                .await
                .unwrap()
                .unwrap()
                .into_data()
                .unwrap()
                .len(),
            10
        );
        assert!(body.frame().await.unwrap().is_err());
    }
}
