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
//! The hot cache serves pages inflated to clients that take no gzip (scripts,
//! benchmarks, ranges, video players); a browser gets the packed page as gzip, from
//! memory.
//!
//! On other systems, whenever a memory file cannot be made, past [`MAX_MAPPINGS`] live
//! at once, and for good once `sendfile` refuses a memory file (a sandbox's syscall
//! filter, say), pages are plain bytes.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// Pages at least this large are held in a memory file: below it the copy costs less
/// than the extra system call.
pub const MIN_LEN: usize = 64 * 1024;

/// The most pages held in memory files at once, each one file descriptor: the hot cache
/// holds at most 64 of them (4 MiB of pages of 64 KiB or more); the rest are pages
/// evicted while a response still sends them. Past this, pages stay on the heap, so
/// slow readers cannot make the daemon hold descriptors without bound.
pub const MAX_MAPPINGS: usize = 256;

/// Slices shorter than this are written from memory even when they lie in a memory
/// file (the end of a page a partial send left): not worth a lookup and a `sendfile`.
const MIN_SEND: usize = 16 * 1024;

/// `page` as bytes a [`ZeroCopy`] stream sends from a file: in a memory file when it is
/// at least [`MIN_LEN`] long and one can be made, else `page` itself.
pub fn share(page: Bytes) -> Bytes {
    #[cfg(target_os = "linux")]
    if page.len() >= MIN_LEN
        && let Some(mapping) = linux::Mapping::of(&page)
    {
        return Bytes::from_owner(mapping);
    }
    page
}

/// A connection's socket that sends slices of [`share`]d pages with `sendfile`.
#[derive(Debug)]
pub struct ZeroCopy {
    stream: TcpStream,
}

impl ZeroCopy {
    pub fn new(stream: TcpStream) -> ZeroCopy {
        ZeroCopy { stream }
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
            let first = found.index == 0;
            match linux::send(&self.stream, cx, bufs, found) {
                Poll::Ready(Err(error)) if first && linux::refused(&error) => {
                    // Nothing was sent: the slice goes from memory, now and from now on.
                    linux::give_up(&error);
                }
                polled => return polled,
            }
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

/// Bytes sent from the memory file `page` lies in, by every connection, and in how many
/// `sendfile` calls; `None` when it lies in none.
#[cfg(test)]
pub fn sent_from_file_of(page: &[u8]) -> Option<(u64, u64)> {
    #[cfg(target_os = "linux")]
    return linux::sent_from(page);
    #[cfg(not(target_os = "linux"))]
    return None;
}

// The one place in the server that maps memory: a mapping is made, read and unmapped
// only through `Mapping`.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
mod linux {
    use std::ffi::c_void;
    use std::io;
    use std::os::fd::{AsFd, OwnedFd};
    use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
    use std::sync::{Arc, PoisonError, RwLock};
    use std::task::{Context, Poll, ready};

    use rustix::fs::{MemfdFlags, SealFlags};
    use rustix::mm::{MapFlags, ProtFlags};
    use rustix::net::{SendAncillaryBuffer, SendFlags};
    use tokio::io::Interest;
    use tokio::net::TcpStream;

    use super::{MAX_MAPPINGS, MIN_SEND};

    /// Every live mapping: where it lies in memory, and its file. At most
    /// [`MAX_MAPPINGS`], so a list.
    static MAPPINGS: RwLock<Vec<Region>> = RwLock::new(Vec::new());
    /// How many there are, so that writes skip the lock while there are none.
    static COUNT: AtomicUsize = AtomicUsize::new(0);
    /// Set once memory files cannot be made or sent: pages stay on the heap from then on.
    static OFF: AtomicBool = AtomicBool::new(false);

    #[derive(Clone)]
    struct Region {
        start: usize,
        len: usize,
        file: Arc<OwnedFd>,
        /// Bytes sent from it, and in how many calls (for tests).
        sent: Arc<Sent>,
    }

    #[derive(Default)]
    struct Sent {
        bytes: AtomicU64,
        calls: AtomicU64,
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
        /// `page` in a memory file of its own, or `None` (on the heap, then) when the
        /// mappings are at their bound or memory files do not work here.
        pub fn of(page: &[u8]) -> Option<Mapping> {
            if OFF.load(Ordering::Relaxed) || COUNT.load(Ordering::Relaxed) >= MAX_MAPPINGS {
                return None;
            }
            match Mapping::make(page) {
                Ok(mapping) => Some(mapping),
                Err(error) => {
                    give_up(&error);
                    None
                }
            }
        }

        fn make(page: &[u8]) -> io::Result<Mapping> {
            let flags = MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING;
            // Not executable, sealed so (Linux 6.3 and later; refused before, and
            // required where `vm.memfd_noexec` is 2).
            let file = match rustix::fs::memfd_create("sited-page", flags | MemfdFlags::NOEXEC_SEAL)
            {
                Err(rustix::io::Errno::INVAL) => rustix::fs::memfd_create("sited-page", flags)?,
                made => made?,
            };
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
            // Registered only once mapped (and, in `drop`, forgotten before unmapped):
            // an address listed is always this mapping's.
            let mut mappings = MAPPINGS.write().unwrap_or_else(PoisonError::into_inner);
            mappings.push(Region {
                start: ptr as usize,
                len: page.len(),
                file: Arc::new(file),
                sent: Arc::default(),
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
            let mut mappings = MAPPINGS.write().unwrap_or_else(PoisonError::into_inner);
            mappings.retain(|region| region.start != self.ptr as usize);
            COUNT.store(mappings.len(), Ordering::Release);
            drop(mappings);
            // SAFETY: this mapping was made by `make` and nothing refers to it any more
            // (its last `Bytes` is being dropped).
            if let Err(error) = unsafe { rustix::mm::munmap(self.ptr, self.len) } {
                tracing::warn!(%error, "cannot unmap a page");
            }
        }
    }

    /// Whether `error`, from `sendfile` on a memory file, says it never will work here
    /// (rather than that this connection is gone).
    pub fn refused(error: &io::Error) -> bool {
        use rustix::io::Errno;
        let errno = error.raw_os_error().map(Errno::from_raw_os_error);
        matches!(
            errno,
            Some(Errno::INVAL | Errno::NOSYS | Errno::PERM | Errno::ACCESS | Errno::OPNOTSUPP)
        )
    }

    /// Memory files are not made or sent from any more; said once.
    pub fn give_up(error: &io::Error) {
        if !OFF.swap(true, Ordering::Relaxed) {
            tracing::warn!(%error, "large pages are sent from memory: memory files do not work here");
        }
    }

    /// The first of `bufs` that lies in a mapped page: its index, its file and where in
    /// the file it starts.
    pub struct Found {
        pub index: usize,
        file: Arc<OwnedFd>,
        offset: u64,
        sent: Arc<Sent>,
    }

    pub fn find(bufs: &[io::IoSlice<'_>]) -> Option<Found> {
        if COUNT.load(Ordering::Acquire) == 0 || OFF.load(Ordering::Relaxed) {
            return None;
        }
        if !bufs.iter().any(|buf| buf.len() >= MIN_SEND) {
            return None;
        }
        let mappings = MAPPINGS.read().unwrap_or_else(PoisonError::into_inner);
        bufs.iter().enumerate().find_map(|(index, buf)| {
            if buf.len() < MIN_SEND {
                return None;
            }
            let region = region_of(&mappings, buf)?;
            Some(Found {
                index,
                file: region.file.clone(),
                offset: (buf.as_ptr() as usize - region.start) as u64,
                sent: region.sent.clone(),
            })
        })
    }

    fn region_of<'m>(mappings: &'m [Region], bytes: &[u8]) -> Option<&'m Region> {
        let start = bytes.as_ptr() as usize;
        let end = start + bytes.len();
        mappings
            .iter()
            .find(|r| r.start <= start && end <= r.start + r.len)
    }

    /// Bytes sent from the mapping `bytes` lie in, and in how many calls.
    #[cfg(test)]
    pub fn sent_from(bytes: &[u8]) -> Option<(u64, u64)> {
        let mappings = MAPPINGS.read().unwrap_or_else(PoisonError::into_inner);
        let sent = &region_of(&mappings, bytes)?.sent;
        Some((
            sent.bytes.load(Ordering::Relaxed),
            sent.calls.load(Ordering::Relaxed),
        ))
    }

    /// Whether a mapping of `len` bytes starts at `start`.
    #[cfg(test)]
    pub fn mapped(start: usize, len: usize) -> bool {
        let mappings = MAPPINGS.read().unwrap_or_else(PoisonError::into_inner);
        mappings.iter().any(|r| r.start == start && r.len == len)
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
                    let sent = rustix::fs::sendfile(
                        stream.as_fd(),
                        found.file.as_fd(),
                        Some(&mut offset),
                        bufs[0].len(),
                    );
                    if let Ok(n) = sent {
                        found.sent.bytes.fetch_add(n as u64, Ordering::Relaxed);
                        found.sent.calls.fetch_add(1, Ordering::Relaxed);
                    }
                    sent
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

    fn page(len: usize) -> Bytes {
        (0..len).map(|i| (i * 7 % 251) as u8).collect()
    }

    #[test]
    fn a_shared_page_is_the_page() {
        for len in [0, 10, MIN_LEN - 1, MIN_LEN, 3 * MIN_LEN + 5] {
            let bytes = page(len);
            let shared = share(bytes.clone());
            assert_eq!(shared, bytes, "{len} bytes");
            assert_eq!(
                shared.slice(len / 3..),
                bytes.slice(len / 3..),
                "{len} bytes"
            );
        }
    }

    /// A head, a large page and a slice of it, written as hyper writes (vectored writes
    /// of what is left, advanced by what went) to a socket that takes a few kilobytes at
    /// a time, arrive whole and in order; the page's bytes went from its file (on
    /// Linux), in many sends, the rest did not.
    #[tokio::test]
    async fn pages_go_from_their_files_and_arrive_whole() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let client = tokio::spawn(async move {
            let socket = tokio::net::TcpSocket::new_v4().unwrap();
            socket.set_recv_buffer_size(4096).unwrap();
            let mut stream = socket.connect(address).await.unwrap();
            let mut received = Vec::new();
            let mut chunk = [0u8; 1024];
            loop {
                match stream.read(&mut chunk).await.unwrap() {
                    0 => break received,
                    n => received.extend_from_slice(&chunk[..n]),
                }
            }
        });
        let (stream, _) = listener.accept().await.unwrap();
        rustix::net::sockopt::set_socket_send_buffer_size(&stream, 4096).unwrap();
        let mut zero = ZeroCopy::new(stream);

        let body = page(5 * MIN_LEN + 123);
        let shared = share(body.clone());
        let head = b"HTTP/1.1 200 OK\r\ncontent-length: 12345\r\n\r\n".to_vec();
        let tail = shared.slice(MIN_LEN..2 * MIN_LEN);
        let mut expected = head.clone();
        expected.extend_from_slice(&body);
        expected.extend_from_slice(&body[MIN_LEN..2 * MIN_LEN]);
        expected.extend_from_slice(b"end");

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
        drop(zero);
        let received = client.await.unwrap();
        assert_eq!(received.len(), expected.len());
        assert!(received == expected, "the bytes arrive as written");
        let sent = sent_from_file_of(&shared);
        if cfg!(target_os = "linux") {
            let (bytes, sends) = sent.expect("the page is in a memory file");
            // All but the ends a partial send left short of `MIN_SEND`.
            let page_bytes = (body.len() + tail.len()) as u64;
            assert!(
                bytes > page_bytes - 2 * MIN_SEND as u64,
                "{bytes} of {page_bytes}"
            );
            assert!(
                sends > 2,
                "a socket that takes a little at a time: {sends} sends"
            );
        } else {
            assert_eq!(sent, None);
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_mapping_is_forgotten_with_its_last_bytes() {
        // A length no other test uses, so a mapping another test makes meanwhile at
        // the same address is not taken for this one.
        let len = MIN_LEN + 4321;
        let shared = share(page(len));
        let start = shared.as_ptr() as usize;
        let slice = shared.slice(10..MIN_SEND + 20);
        let found = |bytes: &[u8]| linux::find(&[io::IoSlice::new(bytes)]).map(|f| f.index);
        assert_eq!(found(&slice), Some(0));
        assert_eq!(
            found(&slice[..MIN_SEND - 1]),
            None,
            "too short to send from the file"
        );
        assert!(linux::mapped(start, len));
        drop(shared);
        assert_eq!(found(&slice), Some(0), "a slice keeps the mapping");
        drop(slice);
        assert!(!linux::mapped(start, len), "gone with its last bytes");
        let heap = vec![0u8; MIN_LEN];
        assert_eq!(found(&heap), None);
        let small = share(page(MIN_LEN - 1));
        assert_eq!(
            sent_from_file_of(&small),
            None,
            "a small page stays on the heap"
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn only_errors_that_will_not_pass_turn_memory_files_off() {
        use rustix::io::Errno;
        let error = |errno: Errno| io::Error::from(errno);
        for errno in [Errno::INVAL, Errno::NOSYS, Errno::PERM, Errno::OPNOTSUPP] {
            assert!(linux::refused(&error(errno)), "{errno:?}");
        }
        for errno in [Errno::PIPE, Errno::CONNRESET, Errno::AGAIN, Errno::NOBUFS] {
            assert!(!linux::refused(&error(errno)), "{errno:?}");
        }
    }
}
