//! Framing on the Unix socket: length-delimited JSON frames with a hard size limit, the
//! same on both sides. A frame over the limit, or one that is not valid JSON for the
//! expected type, ends that connection only.

use std::path::Path;

use tarpc::serde_transport::Transport;
use tarpc::tokio_serde::formats::Json;
use tarpc::tokio_util::codec::{Framed, LengthDelimitedCodec};
use tokio::net::UnixStream;

/// Largest frame either side accepts. Control messages are small; a `ps` of hundreds of
/// sites is a few hundred KiB at most.
pub const MAX_FRAME_LEN: usize = 4 * 1024 * 1024;

/// A tarpc transport over a connected stream (a Unix socket, or a wrapper of one).
pub fn transport<S, Item, SinkItem>(stream: S) -> Transport<S, Item, SinkItem, Json<Item, SinkItem>>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite,
    Item: for<'de> serde::Deserialize<'de>,
    SinkItem: serde::Serialize,
{
    let codec = LengthDelimitedCodec::builder()
        .max_frame_length(MAX_FRAME_LEN)
        .new_codec();
    tarpc::serde_transport::new(Framed::new(stream, codec), Json::default())
}

/// Connects to the daemon's socket and returns a client (not yet handshaken).
pub async fn connect(socket: &Path) -> std::io::Result<crate::SitedClient> {
    let stream = UnixStream::connect(socket).await?;
    let client =
        crate::SitedClient::new(tarpc::client::Config::default(), transport(stream)).spawn();
    Ok(client)
}
