//! Large pages sent without the kernel copying them. Writing a 200 KB page from memory
//! costs the copy of every byte into the socket's buffers (a third of the daemon's time
//! under load, in `perf`); nginx sends such a file with `sendfile`, which hands the page
//! cache's pages to the socket instead. Here a large page the hot cache keeps inflated
//! ([`super::hot`]) is held in a sealed memory file (`memfd`), mapped read-only: its
//! [`Bytes`] are that mapping. hyper writes responses as vectored writes of slices of
//! such bytes; [`ZeroCopy`], the layer under hyper, recognises a slice lying in a mapped
//! page by its address and sends it from the file with `sendfile` (what comes before it,
//! the response head, goes out first with `MSG_MORE`, so the two still leave as one
//! stream of full segments). Anything else is written as before.
//!
//! On other systems, and whenever a memory file cannot be made, pages are plain bytes.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// Pages at least this large are held in a memory file: below it the copy costs less
/// than the extra system call.
pub const MIN_LEN: usize = 64 * 1024;

/// `page` as bytes a [`ZeroCopy`] stream sends from a file: in a memory file when it is
/// at least [`MIN_LEN`] long and one can be made, else copied onto the heap.
pub fn share(page: &[u8]) -> Bytes {
    #[cfg(target_os = "linux")]
    if page.len() >= MIN_LEN {
        match linux::Mapping::of(page) {
            Ok(mapping) => return Bytes::from_owner(mapping),
            Err(error) => tracing::debug!(%error, "cannot hold a page in a memory file"),
        }
    }
    Bytes::copy_from_slice(page)
}

/// A connection's socket that sends slices of [`share`]d pages with `sendfile`.
#[derive(Debug)]
pub struct ZeroCopy {
    stream: TcpStream,
    /// Bytes sent from memory files, for tests.
    #[cfg_attr(not(test), allow(dead_code))]
    from_files: u64,
}

impl ZeroCopy {
    pub fn new(stream: TcpStream) -> ZeroCopy {
        ZeroCopy {
            stream,
            from_files: 0,
        }
    }
}

impl AsyncRead for ZeroCopy {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for ZeroCopy {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.as_mut()
            .poll_write_vectored(cx, &[io::IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        #[cfg(target_os = "linux")]
        if let Some(found) = linux::find(bufs) {
            let this = &mut *self;
            let first = found.index == 0;
            let polled = linux::send(&this.stream, cx, bufs, found);
            if let (Poll::Ready(Ok(n)), true) = (&polled, first) {
                this.from_files += *n as u64;
            }
            return polled;
        }
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

// The one place in the server that maps memory: a mapping is made, read and unmapped
// only through `Mapping`.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
mod linux {
    use std::ffi::c_void;
    use std::io;
    use std::os::fd::{AsFd, OwnedFd};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, RwLock};
    use std::task::{Context, Poll, ready};

    use rustix::fs::{MemfdFlags, SealFlags};
    use rustix::mm::{MapFlags, ProtFlags};
    use rustix::net::{SendAncillaryBuffer, SendFlags};
    use tokio::io::Interest;
    use tokio::net::TcpStream;

    /// Every live mapping: where it lies in memory, and its file. A handful at a time
    /// (the hot cache holds a few megabytes), so a list.
    static MAPPINGS: RwLock<Vec<Region>> = RwLock::new(Vec::new());
    /// How many there are, so that writes skip the lock while there are none.
    static COUNT: AtomicUsize = AtomicUsize::new(0);

    #[derive(Clone)]
    struct Region {
        start: usize,
        len: usize,
        file: Arc<OwnedFd>,
    }

    /// A page in a sealed memory file, mapped read-only; unmapped and forgotten when the
    /// last [`bytes::Bytes`] of it goes.
    pub struct Mapping {
        ptr: *mut c_void,
        len: usize,
    }

    // SAFETY: the mapping is read-only and its file sealed against writes, so the bytes
    // never change while shared; the pointer is only read through `as_ref`.
    unsafe impl Send for Mapping {}
    unsafe impl Sync for Mapping {}

    impl Mapping {
        pub fn of(page: &[u8]) -> io::Result<Mapping> {
            let file = rustix::fs::memfd_create(
                "sited-page",
                MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING,
            )?;
            let mut written = 0;
            while written < page.len() {
                written += rustix::io::write(&file, &page[written..])?;
            }
            // Nothing can change the page from here on: not a write, not a resize.
            rustix::fs::fcntl_add_seals(
                &file,
                SealFlags::WRITE | SealFlags::SHRINK | SealFlags::GROW | SealFlags::SEAL,
            )?;
            // SAFETY: a fresh read-only shared mapping of the whole file at an address
            // the kernel picks; the file is sealed, so its length stays `page.len()`.
            let ptr = unsafe {
                rustix::mm::mmap(
                    std::ptr::null_mut(),
                    page.len(),
                    ProtFlags::READ,
                    MapFlags::SHARED,
                    &file,
                    0,
                )?
            };
            let mut mappings = MAPPINGS.write().expect("the mappings");
            mappings.push(Region {
                start: ptr as usize,
                len: page.len(),
                file: Arc::new(file),
            });
            COUNT.store(mappings.len(), Ordering::Release);
            Ok(Mapping {
                ptr,
                len: page.len(),
            })
        }
    }

    impl AsRef<[u8]> for Mapping {
        fn as_ref(&self) -> &[u8] {
            // SAFETY: `ptr` maps `len` readable bytes until `drop`.
            unsafe { std::slice::from_raw_parts(self.ptr.cast::<u8>(), self.len) }
        }
    }

    impl Drop for Mapping {
        fn drop(&mut self) {
            let mut mappings = MAPPINGS.write().expect("the mappings");
            mappings.retain(|region| region.start != self.ptr as usize);
            COUNT.store(mappings.len(), Ordering::Release);
            drop(mappings);
            // SAFETY: this mapping was made by `of` and nothing refers to it any more
            // (its last `Bytes` is being dropped).
            if let Err(error) = unsafe { rustix::mm::munmap(self.ptr, self.len) } {
                tracing::warn!(%error, "cannot unmap a page");
            }
        }
    }

    /// The first of `bufs` that lies in a mapped page: its index, its file and where in
    /// the file it starts.
    #[derive(Clone)]
    pub struct Found {
        pub index: usize,
        file: Arc<OwnedFd>,
        offset: u64,
    }

    /// Whether a mapping of `len` bytes starts at `start`.
    #[cfg(test)]
    pub fn mapped(start: usize, len: usize) -> bool {
        let mappings = MAPPINGS.read().expect("the mappings");
        mappings.iter().any(|r| r.start == start && r.len == len)
    }

    pub fn find(bufs: &[io::IoSlice<'_>]) -> Option<Found> {
        if COUNT.load(Ordering::Acquire) == 0 {
            return None;
        }
        let mappings = MAPPINGS.read().expect("the mappings");
        bufs.iter().enumerate().find_map(|(index, buf)| {
            if buf.is_empty() {
                return None;
            }
            let start = buf.as_ptr() as usize;
            let end = start + buf.len();
            let region = mappings
                .iter()
                .find(|r| r.start <= start && end <= r.start + r.len)?;
            Some(Found {
                index,
                file: region.file.clone(),
                offset: (start - region.start) as u64,
            })
        })
    }

    /// Sends `bufs` up to the mapped one found (then with `MSG_MORE`: more follows at
    /// once), or, when that is the first, as much of it as the socket takes, from its
    /// file.
    pub fn send(
        stream: &TcpStream,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
        found: Found,
    ) -> Poll<io::Result<usize>> {
        loop {
            ready!(stream.poll_write_ready(cx))?;
            let sent = stream.try_io(Interest::WRITABLE, || {
                let sent = if found.index > 0 {
                    rustix::net::sendmsg(
                        stream.as_fd(),
                        &bufs[..found.index],
                        &mut SendAncillaryBuffer::default(),
                        SendFlags::MORE | SendFlags::NOSIGNAL,
                    )
                } else {
                    // `sendfile` has no `MSG_NOSIGNAL`: a peer gone mid-page raises
                    // SIGPIPE, which Rust programs ignore, and the call fails with EPIPE.
                    let mut offset = found.offset;
                    rustix::fs::sendfile(
                        stream.as_fd(),
                        found.file.as_fd(),
                        Some(&mut offset),
                        bufs[0].len(),
                    )
                };
                sent.map_err(io::Error::from)
            });
            match sent {
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => continue,
                other => return Poll::Ready(other),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn page(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 % 251) as u8).collect()
    }

    #[test]
    fn a_shared_page_is_the_page() {
        for len in [0, 10, MIN_LEN - 1, MIN_LEN, 3 * MIN_LEN + 5] {
            let bytes = page(len);
            let shared = share(&bytes);
            assert_eq!(&shared[..], &bytes[..], "{len} bytes");
            assert_eq!(shared.slice(len / 3..), bytes[len / 3..], "{len} bytes");
        }
    }

    /// A head, a large page and a slice of it, written through hyper's kind of vectored
    /// writes over a real socket, arrive whole and in order; the page's bytes went from
    /// its file (on Linux), the rest did not.
    #[tokio::test]
    async fn pages_go_from_their_files_and_arrive_whole() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let client = tokio::spawn(async move {
            let mut stream = TcpStream::connect(address).await.unwrap();
            let mut received = Vec::new();
            stream.read_to_end(&mut received).await.unwrap();
            received
        });
        let (stream, _) = listener.accept().await.unwrap();
        let mut zero = ZeroCopy::new(stream);

        let body = page(5 * MIN_LEN + 123);
        let shared = share(&body);
        let head = b"HTTP/1.1 200 OK\r\ncontent-length: 12345\r\n\r\n".to_vec();
        let tail = shared.slice(MIN_LEN..2 * MIN_LEN);
        let mut expected = head.clone();
        expected.extend_from_slice(&body);
        expected.extend_from_slice(&body[MIN_LEN..2 * MIN_LEN]);
        expected.extend_from_slice(b"end");

        // As hyper flushes: vectored writes of what is left, advanced by what went.
        let pieces: Vec<&[u8]> = vec![&head, &shared, &tail, b"end"];
        let (mut piece, mut at) = (0, 0);
        while piece < pieces.len() {
            let slices: Vec<io::IoSlice<'_>> = std::iter::once(&pieces[piece][at..])
                .chain(pieces[piece + 1..].iter().copied())
                .map(io::IoSlice::new)
                .collect();
            let mut n =
                std::future::poll_fn(|cx| Pin::new(&mut zero).poll_write_vectored(cx, &slices))
                    .await
                    .unwrap();
            assert!(n > 0);
            while n > 0 {
                let left = pieces[piece].len() - at;
                if n < left {
                    at += n;
                    n = 0;
                } else {
                    n -= left;
                    piece += 1;
                    at = 0;
                }
            }
        }
        zero.shutdown().await.unwrap();
        let from_files = zero.from_files;
        drop(zero);
        let received = client.await.unwrap();
        assert_eq!(received.len(), expected.len());
        assert!(received == expected, "the bytes arrive as written");
        if cfg!(target_os = "linux") {
            assert_eq!(from_files, (body.len() + tail.len()) as u64);
        } else {
            assert_eq!(from_files, 0);
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_mapping_is_forgotten_with_its_last_bytes() {
        // A length no other test uses, so a mapping another test makes meanwhile at
        // the same address is not taken for this one.
        let len = MIN_LEN + 4321;
        let shared = share(&page(len));
        let start = shared.as_ptr() as usize;
        let slice = shared.slice(10..20);
        let found = |bytes: &[u8]| linux::find(&[io::IoSlice::new(bytes)]).map(|f| f.index);
        assert_eq!(found(&slice), Some(0));
        assert!(linux::mapped(start, len));
        drop(shared);
        assert_eq!(found(&slice), Some(0), "a slice keeps the mapping");
        drop(slice);
        assert!(!linux::mapped(start, len), "gone with its last bytes");
        let heap = vec![0u8; 16];
        assert_eq!(found(&heap), None);
        let small = share(&page(MIN_LEN - 1));
        assert_eq!(found(&small), None, "a small page stays on the heap");
    }
}
