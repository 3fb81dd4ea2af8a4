//! Paths on the wire, losslessly: a path that is valid UTF-8 travels as a JSON string
//! (as it always has), any other (Unix allows any bytes but `/` and NUL in a name) as
//! `{"bytes": [...]}`. serde_json refuses a non-UTF-8 path outright, which failed the
//! whole call: one oddly named file in a site broke `ps` for every site (S22).
//!
//! Use as `#[serde(with = "crate::wire_path")]` on a `PathBuf` field.

use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum Wire {
    Text(String),
    Bytes { bytes: Vec<u8> },
}

pub fn serialize<S: Serializer>(path: &Path, serializer: S) -> Result<S::Ok, S::Error> {
    match path.to_str() {
        Some(text) => serializer.serialize_str(text),
        None => Wire::Bytes {
            bytes: path.as_os_str().as_bytes().to_vec(),
        }
        .serialize(serializer),
    }
}

pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<PathBuf, D::Error> {
    Ok(match Wire::deserialize(deserializer)? {
        Wire::Text(text) => PathBuf::from(text),
        Wire::Bytes { bytes } => PathBuf::from(OsString::from_vec(bytes)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Holder(#[serde(with = "crate::wire_path")] PathBuf);

    #[test]
    fn utf8_paths_stay_strings_and_others_round_trip() {
        let plain = Holder(PathBuf::from("/srv/blog/a.md"));
        assert_eq!(serde_json::to_string(&plain).unwrap(), "\"/srv/blog/a.md\"");
        let odd = Holder(PathBuf::from(OsString::from_vec(
            b"/srv/bad\xff.md".to_vec(),
        )));
        let json = serde_json::to_string(&odd).unwrap();
        assert!(json.contains("bytes"), "{json}");
        assert_eq!(serde_json::from_str::<Holder>(&json).unwrap(), odd);
        assert_eq!(
            serde_json::from_str::<Holder>("\"/srv/blog/a.md\"").unwrap(),
            plain
        );
    }
}
