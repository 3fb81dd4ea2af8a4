//! What the builder's integration tests share: finding the shared corpora, and reading
//! an output's pages.

#![allow(dead_code, reason = "each test binary uses its own part")]

use std::path::{Path, PathBuf};

use sited_builder::{Body, Output};

/// `../shared/corpus/NAME` (real content nobody here shaped for the builder), found from
/// this crate's folder. Panics with where it looked and how to get it when it is missing:
/// tests on real content are not skipped silently.
pub fn corpus(name: &str) -> PathBuf {
    let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus");
    let path = shared.join(name);
    assert!(
        path.is_dir(),
        "the {name} corpus is missing at {}: the shared corpora live in a `shared/corpus` \
         folder beside the checkout (see shared/corpus/README.md)",
        path.display()
    );
    path
}

/// The text of `url` in `output` (a file's contents for a file served as it is).
pub fn text(output: &Output, url: &str) -> Option<String> {
    match &output.get(url)?.body {
        Body::Memory(bytes) => Some(String::from_utf8_lossy(bytes).into_owned()),
        Body::Packed(packed) => {
            Some(String::from_utf8_lossy(&packed.unpack().unwrap()).into_owned())
        }
        Body::File(path) => std::fs::read_to_string(path).ok(),
    }
}

/// The bytes of `url` in `output`.
pub fn bytes(output: &Output, url: &str) -> Option<Vec<u8>> {
    match &output.get(url)?.body {
        Body::Memory(bytes) => Some(bytes.to_vec()),
        Body::Packed(packed) => Some(packed.unpack().unwrap().to_vec()),
        Body::File(path) => std::fs::read(path).ok(),
    }
}
