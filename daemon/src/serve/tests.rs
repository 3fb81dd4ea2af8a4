//! Tests of the serving rules through [`respond`] (in process, no sockets) and of the
//! server's bounds through a real listener on 127.0.0.1:0.

use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode, Version, header};
use http_body_util::BodyExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::*;

const PAGE: &str =
    "<!doctype html><title>Home</title><p>A home page long enough to be worth compressing.</p>";

fn page_body() -> String {
    PAGE.repeat(40)
}

/// A served resource of these parts, as the daemon makes one from a build's.
fn served(
    body: Body,
    content_type: Arc<str>,
    etag: Arc<str>,
    len: u64,
    modified: std::time::SystemTime,
) -> Resource {
    Resource::from(&sited_builder::Resource::new(
        body,
        content_type,
        etag,
        len,
        modified,
    ))
}

/// Resources tagged as a build tags them: bodies in memory by a hash of their bytes,
/// files by their size and modification time.
pub(super) fn memory(body: Bytes, content_type: &str) -> Resource {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    body.hash(&mut hasher);
    let etag = format!("\"{:016x}\"", hasher.finish());
    let len = body.len() as u64;
    let modified = std::time::SystemTime::now();
    served(
        Body::Memory(body),
        content_type.into(),
        etag.into(),
        len,
        modified,
    )
}

pub(super) fn html(body: String) -> Resource {
    memory(Bytes::from(body), "text/html; charset=utf-8")
}

fn file(path: std::path::PathBuf, content_type: &str) -> Resource {
    let meta = std::fs::metadata(&path).unwrap();
    let etag = resource::file_etag(&meta);
    let modified = meta.modified().unwrap();
    served(
        Body::File(path),
        content_type.into(),
        etag.into(),
        meta.len(),
        modified,
    )
}

/// A small build: pages in memory, a 404 page, a stylesheet, and files on disk.
fn site(dir: &Path) -> Output {
    let mut output = Output::default();
    let mut add = |url: &str, resource: Resource| {
        output.resources.insert(url.to_string(), resource);
    };
    add("/", html(page_body()));
    add("/posts/", html("<p>posts</p>".into()));
    add("/a b/", html("<p>spaced</p>".into()));
    add("/404.html", html("<h1>Not here</h1>".repeat(50)));
    add(
        "/app.css",
        memory(
            Bytes::from("body { color: black; }\n".repeat(100)),
            "text/css; charset=utf-8",
        ),
    );
    let clip: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(dir.join("clip.mp4"), &clip).unwrap();
    add("/clip.mp4", file(dir.join("clip.mp4"), "video/mp4"));
    std::fs::write(
        dir.join("notes.txt"),
        "plain notes, plain notes\n".repeat(200),
    )
    .unwrap();
    add(
        "/notes.txt",
        file(dir.join("notes.txt"), "text/plain; charset=utf-8"),
    );
    output
}

fn clip() -> Vec<u8> {
    (0..300_000u32).map(|i| (i % 251) as u8).collect()
}

fn request(method: &str, uri: &str, headers: &[(&str, &str)]) -> Request<()> {
    let mut builder = Request::builder().method(method).uri(uri);
    if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
        builder = builder.header(header::HOST, "localhost:5173");
    }
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(()).unwrap()
}

/// Status, headers and the whole body of the answer to `request`.
async fn call(output: &Output, request: Request<()>) -> (StatusCode, HeaderMap, Bytes) {
    call_with(output, &ServeConfig::default(), request).await
}

async fn call_with(
    output: &Output,
    config: &ServeConfig,
    request: Request<()>,
) -> (StatusCode, HeaderMap, Bytes) {
    let response = respond(&request, output, config).await;
    let (parts, body) = response.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    (parts.status, parts.headers, body)
}

async fn get(
    output: &Output,
    uri: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, HeaderMap, Bytes) {
    call(output, request("GET", uri, headers)).await
}

fn h(headers: &HeaderMap, name: header::HeaderName) -> &str {
    headers
        .get(&name)
        .unwrap_or_else(|| panic!("no {name} in {headers:?}"))
        .to_str()
        .unwrap()
}

#[tokio::test]
async fn a_page_carries_type_validators_and_dev_cache_headers_but_no_cors() {
    let dir = tempfile::tempdir().unwrap();
    let output = site(dir.path());
    let (status, headers, body) = get(&output, "/", &[("origin", "http://evil.example")]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, page_body().as_bytes());
    assert_eq!(
        h(&headers, header::CONTENT_TYPE),
        "text/html; charset=utf-8"
    );
    assert_eq!(h(&headers, header::ETAG), &*output.get("/").unwrap().etag);
    assert!(h(&headers, header::ETAG).starts_with('"'));
    let modified = httpdate::parse_http_date(h(&headers, header::LAST_MODIFIED)).unwrap();
    assert!(modified.elapsed().unwrap() < Duration::from_secs(60));
    assert_eq!(h(&headers, header::CACHE_CONTROL), "no-cache");
    assert_eq!(h(&headers, header::X_CONTENT_TYPE_OPTIONS), "nosniff");
    assert_eq!(h(&headers, header::ACCEPT_RANGES), "bytes");
    assert_eq!(h(&headers, header::VARY), "accept-encoding");
    assert!(headers.get(header::CONTENT_ENCODING).is_none());
    assert!(headers.get(header::ACCESS_CONTROL_ALLOW_ORIGIN).is_none());
    let (_, headers, _) = get(&output, "/clip.mp4", &[]).await;
    assert_eq!(h(&headers, header::CONTENT_TYPE), "video/mp4");
    assert!(headers.get(header::VARY).is_none(), "media does not vary");
    let (_, headers, _) = get(&output, "/app.css", &[]).await;
    assert_eq!(h(&headers, header::CONTENT_TYPE), "text/css; charset=utf-8");
}

#[tokio::test]
async fn a_matching_etag_or_date_gets_304_without_a_body() {
    let dir = tempfile::tempdir().unwrap();
    let output = site(dir.path());
    for uri in ["/", "/clip.mp4"] {
        let (_, first, _) = get(&output, uri, &[]).await;
        let etag = h(&first, header::ETAG).to_string();
        let modified = h(&first, header::LAST_MODIFIED).to_string();
        for (name, value) in [
            ("if-none-match", etag.clone()),
            ("if-none-match", format!("W/{etag}")),
            ("if-none-match", format!("\"nope\", {etag}")),
            ("if-modified-since", modified.clone()),
        ] {
            let (status, headers, body) = get(&output, uri, &[(name, &value)]).await;
            assert_eq!(status, StatusCode::NOT_MODIFIED, "{uri} {name}: {value}");
            assert!(body.is_empty());
            assert_eq!(h(&headers, header::ETAG), etag);
            assert_eq!(h(&headers, header::CACHE_CONTROL), "no-cache");
            assert!(headers.get(header::CONTENT_TYPE).is_none());
        }
        let (status, _, body) = get(&output, uri, &[("if-none-match", "\"stale\"")]).await;
        assert_eq!(status, StatusCode::OK, "{uri}");
        assert!(!body.is_empty());
        let (status, _, _) = get(
            &output,
            uri,
            &[("if-modified-since", "Mon, 01 Jan 2001 00:00:00 GMT")],
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{uri}");
    }
    // The 404 page is never "not modified".
    let (_, page, _) = get(&output, "/404.html", &[]).await;
    let tag = h(&page, header::ETAG).to_string();
    let (status, _, _) = get(&output, "/missing", &[("if-none-match", &tag)]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn head_has_get_headers_and_length_but_no_body() {
    let dir = tempfile::tempdir().unwrap();
    let output = site(dir.path());
    for (uri, len) in [("/", page_body().len()), ("/clip.mp4", 300_000)] {
        let (status, headers, body) = call(&output, request("HEAD", uri, &[])).await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.is_empty());
        assert_eq!(
            h(&headers, header::CONTENT_LENGTH),
            len.to_string(),
            "{uri}"
        );
        assert!(headers.get(header::ETAG).is_some());
    }
    let (status, headers, body) = call(
        &output,
        request("HEAD", "/", &[("accept-encoding", "gzip")]),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.is_empty());
    assert_eq!(h(&headers, header::CONTENT_ENCODING), "gzip");
    let (_, get_headers, gz) = get(&output, "/", &[("accept-encoding", "gzip")]).await;
    assert_eq!(h(&headers, header::CONTENT_LENGTH), gz.len().to_string());
    assert_eq!(h(&headers, header::ETAG), h(&get_headers, header::ETAG));
}

#[tokio::test]
async fn single_byte_ranges_are_served_from_memory_and_files() {
    let dir = tempfile::tempdir().unwrap();
    let output = site(dir.path());
    let page = page_body().into_bytes();
    let clip = clip();
    for (uri, full) in [("/", &page), ("/clip.mp4", &clip)] {
        let len = full.len();
        for (spec, start, end) in [
            ("bytes=0-9", 0, 9),
            ("bytes=100-", 100, len - 1),
            ("bytes=-50", len - 50, len - 1),
            ("bytes=10-99999999", 10, len - 1),
        ] {
            // Asking for gzip too: ranges are of the identity body.
            let (status, headers, body) = get(
                &output,
                uri,
                &[("range", spec), ("accept-encoding", "gzip")],
            )
            .await;
            assert_eq!(status, StatusCode::PARTIAL_CONTENT, "{uri} {spec}");
            assert_eq!(
                h(&headers, header::CONTENT_RANGE),
                format!("bytes {start}-{end}/{len}")
            );
            assert_eq!(&body[..], &full[start..=end], "{uri} {spec}");
            assert!(headers.get(header::CONTENT_ENCODING).is_none());
            assert_eq!(h(&headers, header::ACCEPT_RANGES), "bytes");
        }
        let (status, headers, _) = get(&output, uri, &[("range", &format!("bytes={len}-"))]).await;
        assert_eq!(status, StatusCode::RANGE_NOT_SATISFIABLE, "{uri}");
        assert_eq!(h(&headers, header::CONTENT_RANGE), format!("bytes */{len}"));
        let (status, _, body) = get(&output, uri, &[("range", "bytes=0-1,5-6")]).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body.len(), len);
        let (_, first, _) = get(&output, uri, &[]).await;
        let etag = h(&first, header::ETAG).to_string();
        let (status, _, body) =
            get(&output, uri, &[("range", "bytes=0-9"), ("if-range", &etag)]).await;
        assert_eq!((status, body.len()), (StatusCode::PARTIAL_CONTENT, 10));
        let (status, _, body) = get(
            &output,
            uri,
            &[("range", "bytes=0-9"), ("if-range", "\"old\"")],
        )
        .await;
        assert_eq!((status, body.len()), (StatusCode::OK, len), "{uri}");
    }
    let (status, headers, body) = call(
        &output,
        request("HEAD", "/clip.mp4", &[("range", "bytes=1000-1999")]),
    )
    .await;
    assert_eq!(status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(h(&headers, header::CONTENT_LENGTH), "1000");
    assert!(body.is_empty());
}

#[tokio::test]
async fn well_known_is_served_and_every_other_hidden_path_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let mut output = site(dir.path());
    let text = |t: &str| memory(Bytes::from(t.to_string()), "text/plain");
    for url in [
        "/.well-known/security.txt",
        "/.git/config",
        "/.env",
        "/posts/.secret",
        "/.well-known/.hidden",
        "/.hidden/",
    ] {
        output.resources.insert(url.into(), text("SECRET"));
    }
    output
        .resources
        .insert("/.well-known/security.txt".into(), text("Contact: x"));
    let (status, _, body) = get(&output, "/.well-known/security.txt", &[]).await;
    assert_eq!((status, &body[..]), (StatusCode::OK, &b"Contact: x"[..]));
    for uri in [
        "/.git/config",
        "/.env",
        "/posts/.secret",
        "/.well-known/.hidden",
        "/.hidden/",
        "/.hidden",
        "/%2egit/config",
    ] {
        let (status, _, body) = get(&output, uri, &[]).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{uri}");
        assert_eq!(body, "<h1>Not here</h1>".repeat(50).as_bytes(), "{uri}");
    }
}

#[tokio::test]
async fn directories_redirect_to_their_slash_and_unknown_urls_get_the_404_page() {
    let dir = tempfile::tempdir().unwrap();
    let output = site(dir.path());
    let (status, headers, _) = get(&output, "/posts", &[]).await;
    assert_eq!(status, StatusCode::MOVED_PERMANENTLY);
    assert_eq!(h(&headers, header::LOCATION), "/posts/");
    let (_, headers, _) = get(&output, "/posts?page=2", &[]).await;
    assert_eq!(h(&headers, header::LOCATION), "/posts/?page=2");
    let (_, headers, _) = get(&output, "/a%20b", &[]).await;
    assert_eq!(h(&headers, header::LOCATION), "/a%20b/");
    let (status, _, body) = get(&output, "/a%20b/", &[]).await;
    assert_eq!((status, &body[..]), (StatusCode::OK, &b"<p>spaced</p>"[..]));

    let (status, headers, body) = get(&output, "/no/such/page/", &[]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body, "<h1>Not here</h1>".repeat(50).as_bytes());
    assert_eq!(
        h(&headers, header::CONTENT_TYPE),
        "text/html; charset=utf-8"
    );
    let (status, headers, _) = get(&output, "/missing", &[("accept-encoding", "br")]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(h(&headers, header::CONTENT_ENCODING), "br");

    let mut bare = Output::default();
    bare.resources.insert("/".into(), html("home".into()));
    let (status, headers, body) = get(&bare, "/missing", &[]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(&body[..], b"404 not found\n");
    assert_eq!(
        h(&headers, header::CONTENT_TYPE),
        "text/plain; charset=utf-8"
    );
}

#[tokio::test]
async fn text_is_compressed_once_per_build_and_media_never() {
    let dir = tempfile::tempdir().unwrap();
    let output = site(dir.path());
    let resource = output.get("/").unwrap();
    assert!(
        resource
            .prepared()
            .encodings
            .peek(Coding::Gzip, &resource.etag)
            .is_none()
    );
    let (status, headers, gz) = get(&output, "/", &[("accept-encoding", "gzip, deflate")]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(h(&headers, header::CONTENT_ENCODING), "gzip");
    assert_eq!(h(&headers, header::VARY), "accept-encoding");
    assert_eq!(h(&headers, header::ETAG), Coding::Gzip.etag(&resource.etag));
    let mut plain = Vec::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_end(&mut plain)
        .unwrap();
    assert_eq!(plain, page_body().as_bytes());
    assert!(gz.len() < plain.len() / 4);
    // Made once, kept with the build: the cached body is what the next request gets.
    let cached = resource
        .prepared()
        .encodings
        .peek(Coding::Gzip, &resource.etag)
        .expect("kept")
        .body
        .clone();
    let (_, _, again) = get(&output, "/", &[("accept-encoding", "gzip")]).await;
    assert_eq!(again, cached);

    let (_, headers, br) = get(&output, "/", &[("accept-encoding", "gzip, deflate, br")]).await;
    assert_eq!(h(&headers, header::CONTENT_ENCODING), "br");
    let mut plain = Vec::new();
    brotli::Decompressor::new(&br[..], 4096)
        .read_to_end(&mut plain)
        .unwrap();
    assert_eq!(plain, page_body().as_bytes());
    // The coded tag revalidates.
    let tag = h(&headers, header::ETAG).to_string();
    let (status, headers, _) = get(
        &output,
        "/",
        &[("accept-encoding", "br"), ("if-none-match", &tag)],
    )
    .await;
    assert_eq!(status, StatusCode::NOT_MODIFIED);
    assert_eq!(h(&headers, header::ETAG), tag);

    let (_, headers, gz) = get(&output, "/notes.txt", &[("accept-encoding", "gzip")]).await;
    assert_eq!(h(&headers, header::CONTENT_ENCODING), "gzip");
    let mut plain = Vec::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_end(&mut plain)
        .unwrap();
    assert_eq!(plain, "plain notes, plain notes\n".repeat(200).as_bytes());

    let (_, headers, body) = get(&output, "/clip.mp4", &[("accept-encoding", "gzip, br")]).await;
    assert!(headers.get(header::CONTENT_ENCODING).is_none());
    assert_eq!(body.len(), 300_000);
    let (_, headers, _) = get(&output, "/", &[("accept-encoding", "gzip;q=0, br;q=0")]).await;
    assert!(headers.get(header::CONTENT_ENCODING).is_none());
    assert_eq!(h(&headers, header::VARY), "accept-encoding");
}

#[tokio::test]
async fn a_file_is_described_as_it_is_now_and_a_swapped_in_symlink_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let output = site(dir.path());
    let (_, before, _) = get(&output, "/notes.txt", &[]).await;
    std::fs::write(dir.path().join("notes.txt"), "edited\n").unwrap();
    let (status, after, body) = get(&output, "/notes.txt", &[("accept-encoding", "gzip")]).await;
    assert_eq!((status, &body[..]), (StatusCode::OK, &b"edited\n"[..]));
    assert_ne!(h(&before, header::ETAG), h(&after, header::ETAG));

    let secret = dir.path().join("secret.txt");
    std::fs::write(&secret, "TOP SECRET").unwrap();
    std::fs::remove_file(dir.path().join("clip.mp4")).unwrap();
    std::os::unix::fs::symlink(&secret, dir.path().join("clip.mp4")).unwrap();
    let (status, _, body) = get(&output, "/clip.mp4", &[]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(!String::from_utf8_lossy(&body).contains("SECRET"));
}

#[tokio::test]
async fn only_get_and_head_are_served() {
    let dir = tempfile::tempdir().unwrap();
    let output = site(dir.path());
    for method in ["POST", "PUT", "DELETE", "OPTIONS", "PATCH"] {
        let (status, headers, _) = call(&output, request(method, "/", &[])).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{method}");
        assert_eq!(h(&headers, header::ALLOW), "GET, HEAD");
    }
}

#[tokio::test]
async fn foreign_or_ambiguous_hosts_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let output = site(dir.path());
    for host in [
        "evil.example",
        "evil.example:5173",
        "localhost.evil.example",
        "10.0.0.8",
    ] {
        let (status, _, body) = get(&output, "/", &[("host", host)]).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{host}");
        assert!(!body.starts_with(b"<!doctype"));
    }
    for host in [
        "localhost:5173",
        "127.0.0.1:5173",
        "[::1]:5173",
        "docs.localhost",
    ] {
        let (status, _, _) = get(&output, "/", &[("host", host)]).await;
        assert_eq!(status, StatusCode::OK, "{host}");
    }
    // HTTP/1.1 must name its host; HTTP/1.0 may not.
    let mut no_host = Request::builder().uri("/").body(()).unwrap();
    let (status, _, _) = call(&output, no_host).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    no_host = Request::builder()
        .uri("/")
        .version(Version::HTTP_10)
        .body(())
        .unwrap();
    let (status, _, _) = call(&output, no_host).await;
    assert_eq!(status, StatusCode::OK);
    let two = Request::builder()
        .uri("/")
        .header("host", "localhost")
        .header("host", "evil.example")
        .body(())
        .unwrap();
    assert_eq!(call(&output, two).await.0, StatusCode::BAD_REQUEST);
    // Absolute-form targets: the authority is checked like a Host.
    for (uri, expected) in [
        ("http://localhost:5173/", StatusCode::OK),
        ("http://evil.example/", StatusCode::FORBIDDEN),
        ("http://user@localhost/", StatusCode::BAD_REQUEST),
        ("https://localhost/", StatusCode::BAD_REQUEST),
    ] {
        let (status, _, _) = get(&output, uri, &[]).await;
        assert_eq!(status, expected, "{uri}");
    }
    // A configured name is accepted.
    let config = ServeConfig {
        hosts: HostPolicy::new("127.0.0.1".parse().unwrap(), ["docs.test".to_string()]),
        ..ServeConfig::default()
    };
    let (status, _, _) = call_with(
        &output,
        &config,
        request("GET", "/", &[("host", "docs.test:80")]),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn hostile_paths_get_400_or_404_and_never_a_page() {
    let dir = tempfile::tempdir().unwrap();
    let output = site(dir.path());
    for uri in [
        "/../../etc/passwd",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/%2E%2E%2Fetc%2Fpasswd",
        "/posts/..%2f..%2fetc/passwd",
        "/%c0%ae%c0%ae/etc/passwd",
        "/notes.txt%00.html",
        "/./notes.txt",
    ] {
        let (status, _, _) = get(&output, uri, &[]).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}");
    }
    for uri in ["/%252e%252e/etc/passwd", "/etc/passwd", "//etc/passwd"] {
        let (status, _, _) = get(&output, uri, &[]).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{uri}");
    }
    let long = format!("/{}", "a".repeat(9000));
    assert_eq!(get(&output, &long, &[]).await.0, StatusCode::URI_TOO_LONG);
}

// ---- the real server ----

/// A server for `output` on 127.0.0.1:0 with `limits`; cancelled when the token drops.
async fn start(output: Output, limits: Limits) -> (u16, tokio_util::sync::DropGuard) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (_tx, rx) = watch::channel(Arc::new(output));
    let token = CancellationToken::new();
    let config = ServeConfig {
        hosts: HostPolicy::loopback(),
        limits,
        ..ServeConfig::default()
    };
    let server_token = token.clone();
    tokio::spawn(async move {
        let _tx = _tx;
        serve(listener, rx, config, server_token).await;
    });
    (port, token.drop_guard())
}

fn quick_limits() -> Limits {
    Limits {
        max_connections: 2,
        header_read_timeout: Duration::from_millis(300),
        write_stall_timeout: Duration::from_millis(300),
        ..Limits::default()
    }
}

/// Reads one response (head and a `Content-Length` body) from `stream`.
async fn read_response(stream: &mut TcpStream) -> (u16, String, Vec<u8>) {
    let mut raw = Vec::new();
    let mut byte = [0u8; 1];
    while !raw.ends_with(b"\r\n\r\n") {
        let n = stream.read(&mut byte).await.unwrap();
        assert!(
            n > 0,
            "connection closed mid-head: {:?}",
            String::from_utf8_lossy(&raw)
        );
        raw.push(byte[0]);
    }
    let head = String::from_utf8(raw).unwrap();
    let status = head[9..12].parse().unwrap();
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().unwrap())
        })
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    stream.read_exact(&mut body).await.unwrap();
    (status, head, body)
}

/// Whether the server closes `stream` within `within` (reads EOF or a reset).
async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let mut sink = [0u8; 1024];
    let deadline = Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline.into(), stream.read(&mut sink)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => continue,
        }
    }
}

/// A large page the hot cache holds in a memory file goes out over a real connection
/// with `sendfile`: whole, as a range, again and again on one keep-alive connection,
/// with a small response after it.
#[tokio::test]
async fn a_large_page_sent_from_its_memory_file_arrives_whole() {
    let dir = tempfile::tempdir().unwrap();
    let mut output = site(dir.path());
    let page = format!("<!doctype html><body>{}</body></html>", PAGE.repeat(2_500));
    assert!(page.len() >= super::zerocopy::MIN_LEN && super::hot::keeps(page.len()));
    let large = packed_html(&page);
    output.resources.insert("/large/".into(), large.clone());
    let (port, _server) = start(output, Limits::default()).await;
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    for round in 0..3 {
        let (status, _, body) = ask(&mut stream, "/large/", "").await;
        assert_eq!(status, 200, "round {round}");
        assert!(
            body == page.as_bytes(),
            "round {round}: the page arrives whole"
        );
        let (from, to) = (70_001, 140_000);
        let range = format!("Range: bytes={from}-{to}\r\n");
        let (status, _, body) = ask(&mut stream, "/large/", &range).await;
        assert_eq!(status, 206, "round {round}");
        assert!(
            body == page.as_bytes()[from..=to],
            "round {round}: the range"
        );
        let (status, _, body) = ask(&mut stream, "/posts/", "").await;
        assert_eq!((status, &body[..]), (200, &b"<p>posts</p>"[..]));
        // A client that leaves mid-page (its unread bytes make the close a reset) costs
        // only its own connection.
        let mut leaver = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        leaver
            .write_all(b"GET /large/ HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .await
            .unwrap();
        let mut some = [0u8; 1000];
        leaver.read_exact(&mut some).await.unwrap();
        drop(leaver);
    }
    // The page went from its memory file (the hot cache holds it there): the whole page
    // and the range, three times over, less what partial sends left short of a file send.
    let Body::Packed(packed) = &large.body else {
        panic!("a packed page")
    };
    let held = super::hot::inflated(packed, None).unwrap();
    let sent = super::zerocopy::sent_from_file_of(&held);
    if cfg!(target_os = "linux") {
        let least = 3 * (page.len() + 70_000 - 4 * 16 * 1024) as u64;
        assert!(
            sent.is_some_and(|(bytes, _)| bytes >= least),
            "{sent:?} of at least {least}"
        );
    } else {
        assert_eq!(sent, None);
    }
}

/// Sends a GET for `path` with `headers` (whole lines) on `stream`; reads the response.
async fn ask(stream: &mut TcpStream, path: &str, headers: &str) -> (u16, String, Vec<u8>) {
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n{headers}\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    read_response(stream).await
}

#[tokio::test]
async fn oversized_heads_get_431_and_long_targets_414() {
    let dir = tempfile::tempdir().unwrap();
    let (port, _server) = start(site(dir.path()), Limits::default()).await;
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let big = format!(
        "GET / HTTP/1.1\r\nHost: localhost\r\nX-Big: {}\r\n\r\n",
        "a".repeat(20 * 1024)
    );
    stream.write_all(big.as_bytes()).await.unwrap();
    let (status, _, _) = read_response(&mut stream).await;
    assert_eq!(status, 431);

    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let many: String = (0..100).map(|i| format!("X-H{i}: v\r\n")).collect();
    let request = format!("GET / HTTP/1.1\r\nHost: localhost\r\n{many}\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    assert_eq!(read_response(&mut stream).await.0, 431);

    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let request = format!(
        "GET /{} HTTP/1.1\r\nHost: localhost\r\n\r\n",
        "a".repeat(10 * 1024)
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    assert_eq!(read_response(&mut stream).await.0, 414);
}

#[tokio::test]
async fn keep_alive_serves_several_requests_then_idles_out() {
    let dir = tempfile::tempdir().unwrap();
    let (port, _server) = start(site(dir.path()), quick_limits()).await;
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    for _ in 0..3 {
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .await
            .unwrap();
        let (status, head, body) = read_response(&mut stream).await;
        assert_eq!(status, 200);
        assert!(
            head.to_ascii_lowercase().contains("content-length"),
            "{head}"
        );
        assert_eq!(body, page_body().as_bytes());
    }
    stream
        .write_all(b"HEAD /clip.mp4 HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    // HEAD: the length is announced, no body follows; the next response proves it.
    let mut raw = Vec::new();
    let mut byte = [0u8; 1];
    while !raw.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).await.unwrap();
        raw.push(byte[0]);
    }
    assert!(
        String::from_utf8_lossy(&raw)
            .to_ascii_lowercase()
            .contains("content-length: 300000")
    );
    stream
        .write_all(b"GET /posts/ HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let (status, _, body) = read_response(&mut stream).await;
    assert_eq!((status, &body[..]), (200, &b"<p>posts</p>"[..]));
    assert!(
        closed_within(&mut stream, Duration::from_secs(5)).await,
        "an idle keep-alive connection stays open"
    );
}

#[tokio::test]
async fn slow_clients_cannot_hold_every_connection() {
    let dir = tempfile::tempdir().unwrap();
    let (port, _server) = start(site(dir.path()), quick_limits()).await;
    // Slowloris: take every slot and trickle a head that never ends.
    let mut slow = Vec::new();
    for _ in 0..2 {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: loc")
            .await
            .unwrap();
        slow.push(stream);
    }
    // A real client still gets its page once the slow ones time out.
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let (status, _, _) = tokio::time::timeout(Duration::from_secs(10), read_response(&mut stream))
        .await
        .expect("served while slow clients hold the slots");
    assert_eq!(status, 200);
    for mut stream in slow {
        assert!(closed_within(&mut stream, Duration::from_secs(5)).await);
    }
}

#[tokio::test]
async fn a_client_that_stops_reading_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let mut output = site(dir.path());
    // Far more than the socket buffers on both ends hold.
    output.resources.insert(
        "/big.bin".into(),
        memory(
            Bytes::from(vec![b'x'; 64 * 1024 * 1024]),
            "application/octet-stream",
        ),
    );
    let limits = Limits {
        max_connections: 1,
        reserve_connections: 0,
        ..quick_limits()
    };
    let (port, _server) = start(output, limits).await;
    let mut stalled = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    stalled
        .write_all(b"GET /big.bin HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    // The only slot is taken by a client that never reads; the next one is served once
    // the stalled write times out.
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    stream
        .write_all(b"GET /posts/ HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let (status, _, _) = tokio::time::timeout(Duration::from_secs(10), read_response(&mut stream))
        .await
        .expect("served after the stalled client was dropped");
    assert_eq!(status, 200);
    drop(stalled);
}

#[tokio::test]
async fn pages_with_the_live_reload_tag_are_whole_in_every_form() {
    let mut output = Output::default();
    let page = format!("<!doctype html><body>{}</body></html>", page_body());
    output.resources.insert("/".into(), html(page.clone()));
    let (_live_tx, live) = watch::channel(livereload::LiveState::initial("s".into(), vec![]));
    let (_output_tx, published) = watch::channel(Arc::new(Output::default()));
    let config = ServeConfig {
        live: Some(livereload::Live::new(live, published)),
        ..ServeConfig::default()
    };
    let resource = output.get("/").unwrap();
    let expected = livereload::inject(page.as_bytes(), &livereload::script_tag(&resource.etag));
    let response = respond(&request("GET", "/", &[]), &output, &config).await;
    assert_eq!(response.status(), StatusCode::OK);
    // hyper writes Content-Length from the body's exact size.
    assert_eq!(
        hyper::body::Body::size_hint(response.body()).exact(),
        Some(expected.len() as u64)
    );
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, expected);
    // Served around the tag, not from a copy of the page.
    let (at, _) = resource.prepared().live_reload.get().unwrap();
    assert_eq!(&expected[..*at], &page.as_bytes()[..*at]);

    let (_, headers, _) = call_with(&output, &config, request("HEAD", "/", &[])).await;
    assert_eq!(
        h(&headers, header::CONTENT_LENGTH),
        expected.len().to_string()
    );
    // A range across the tag.
    let (from, to) = (at - 10, at + 30);
    let (status, _, body) = call_with(
        &output,
        &config,
        request("GET", "/", &[("range", &format!("bytes={from}-{to}"))]),
    )
    .await;
    assert_eq!(status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(body, expected.slice(from..=to));
    // Compressed: the same bytes once decoded.
    let (_, headers, body) = call_with(
        &output,
        &config,
        request("GET", "/", &[("accept-encoding", "gzip")]),
    )
    .await;
    assert_eq!(h(&headers, header::CONTENT_ENCODING), "gzip");
    let mut decoded = Vec::new();
    flate2::read::GzDecoder::new(&body[..])
        .read_to_end(&mut decoded)
        .unwrap();
    assert_eq!(decoded, expected);
}

/// The same page held packed, as a site's builds hold pages.
fn packed_html(body: &str) -> Resource {
    let memory = html(body.to_string());
    served(
        Body::Packed(Arc::new(sited_builder::output::Packed::pack(
            body.as_bytes(),
        ))),
        memory.content_type.clone(),
        memory.etag.clone(),
        memory.len,
        memory.modified,
    )
}

/// A body as it was before its `Content-Encoding`.
fn decoded(headers: &HeaderMap, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    match headers
        .get(header::CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap())
    {
        None => out.extend_from_slice(body),
        Some("gzip") => out = gunzip(body),
        Some("br") => {
            brotli::Decompressor::new(body, 4096)
                .read_to_end(&mut out)
                .unwrap();
        }
        Some(other) => panic!("unexpected coding {other}"),
    }
    out
}

fn gunzip(body: &[u8]) -> Vec<u8> {
    let mut decoded = Vec::new();
    flate2::read::GzDecoder::new(body)
        .read_to_end(&mut decoded)
        .expect("a whole gzip member");
    decoded
}

#[tokio::test]
async fn a_packed_page_is_sent_as_the_same_page_in_every_form() {
    // A page the hot cache keeps (sent with its live-reload tag in place, one piece) and
    // one larger than it keeps (sent around its tag).
    let small = format!("<!doctype html><body>{}</BODY></html>", page_body());
    let large = format!("<!doctype html><body>{}</BODY></html>", PAGE.repeat(12_000));
    assert!(super::hot::keeps(small.len()) && !super::hot::keeps(large.len()));
    // One the cache keeps in a memory file, sent without a copy.
    let mapped = format!("<!doctype html><body>{}</BODY></html>", PAGE.repeat(2_000));
    assert!(super::hot::keeps(mapped.len()) && mapped.len() >= super::zerocopy::MIN_LEN);
    for page in [small, mapped, large] {
        same_page_in_every_form(page).await;
    }
}

async fn same_page_in_every_form(page: String) {
    let output = |resource: Resource| {
        let mut output = Output::default();
        output.resources.insert("/".into(), resource.clone());
        output.resources.insert("/404.html".into(), resource);
        output
    };
    let (_live_tx, live) = watch::channel(livereload::LiveState::initial("s".into(), vec![]));
    let (_output_tx, published) = watch::channel(Arc::new(Output::default()));
    let live = ServeConfig {
        live: Some(livereload::Live::new(live, published)),
        ..ServeConfig::default()
    };
    let etag = html(page.clone()).etag.to_string();
    let gz_tag = encoding::Coding::Gzip.etag(&etag);
    type Asked<'a> = (&'a str, &'a str, Vec<(&'a str, &'a str)>);
    let requests: Vec<Asked> = vec![
        ("GET", "/", vec![]),
        ("GET", "/", vec![("accept-encoding", "gzip")]),
        (
            "GET",
            "/",
            vec![("accept-encoding", "gzip, deflate, br, zstd")],
        ),
        ("GET", "/", vec![("accept-encoding", "br")]),
        ("GET", "/", vec![("accept-encoding", "gzip;q=0, identity")]),
        ("HEAD", "/", vec![]),
        ("HEAD", "/", vec![("accept-encoding", "gzip")]),
        ("GET", "/", vec![("range", "bytes=100-2000")]),
        (
            "GET",
            "/",
            vec![("range", "bytes=-40"), ("accept-encoding", "gzip")],
        ),
        ("GET", "/", vec![("if-none-match", &etag)]),
        (
            "GET",
            "/",
            vec![("if-none-match", &gz_tag), ("accept-encoding", "gzip")],
        ),
        (
            "GET",
            "/",
            vec![("if-none-match", "\"stale\""), ("accept-encoding", "gzip")],
        ),
        ("GET", "/missing", vec![("accept-encoding", "gzip")]),
        ("GET", "/missing", vec![]),
    ];
    for config in [&ServeConfig::default(), &live] {
        // Fresh for each server: what a resource prepares assumes one way of serving it.
        let (memory, packed) = (output(html(page.clone())), output(packed_html(&page)));
        for (method, uri, headers) in &requests {
            let asked = || request(method, uri, headers);
            let (m_status, m_headers, m_body) = call_with(&memory, config, asked()).await;
            let (p_status, p_headers, p_body) = call_with(&packed, config, asked()).await;
            let what = format!("{method} {uri} {headers:?} live {}", config.live.is_some());
            assert_eq!(p_status, m_status, "{what}");
            let gzip = p_headers.get(header::CONTENT_ENCODING).is_some();
            // Packed pages go as gzip to whoever takes it, never as brotli.
            let takes_gzip = headers
                .iter()
                .any(|(n, v)| *n == "accept-encoding" && v.contains("gzip") && !v.contains("q=0"));
            let ranged = headers.iter().any(|(n, _)| *n == "range");
            assert_eq!(gzip, takes_gzip && !ranged && p_status != 304, "{what}");
            if *method == "GET" {
                let same = decoded(&p_headers, &p_body) == decoded(&m_headers, &m_body);
                assert!(same, "{what}: bodies differ");
            } else {
                assert!(p_body.is_empty());
            }
            for name in [
                header::CONTENT_TYPE,
                header::LAST_MODIFIED,
                header::CONTENT_RANGE,
                header::CACHE_CONTROL,
                header::VARY,
            ] {
                assert_eq!(p_headers.get(&name), m_headers.get(&name), "{what} {name}");
            }
            // The tag names the coding sent, as for any compressed body.
            if let Some(tag) = p_headers.get(header::ETAG) {
                let expected = if gzip || (p_status == 304 && takes_gzip) {
                    &gz_tag
                } else {
                    &etag
                };
                assert_eq!(tag, expected.as_str(), "{what}");
            }
            if *method == "HEAD" {
                let (_, _, got) = call_with(&packed, config, request("GET", uri, headers)).await;
                assert_eq!(h(&p_headers, header::CONTENT_LENGTH), got.len().to_string());
            }
        }
    }
}
