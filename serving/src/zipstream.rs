//! Zip downloads sent while they are written: a blocking thread writes the archive
//! (stored, not deflated: photos are compressed already) into a small bounded channel
//! that is the response body, so a download of 1,000 photos of 50 MiB holds a few
//! chunks in memory, not 50 GB. When the client goes away the channel closes, the next
//! write fails and the thread stops.
//!
//! Everything that can be refused (ids, ownership) is checked before the response
//! starts; a failure after that (a blob unreadable from disk) can only cut the body
//! short, and is logged.

use std::io::{self, Read, Write};

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, header};
use axum::response::Response;
use tokio::sync::mpsc;
use zip::write::{SimpleFileOptions, StreamWriter};

use crate::error::{Error, Result};

/// The archive a build function writes into.
pub(crate) type ZipOut = zip::ZipWriter<StreamWriter<ChannelWriter>>;

/// Bytes gathered before a chunk is handed to the body.
const CHUNK_BYTES: usize = 256 << 10;

/// Chunks in flight between the writing thread and the connection.
const CHUNKS_IN_FLIGHT: usize = 4;

/// How each entry is stored.
pub fn stored() -> SimpleFileOptions {
    SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .large_file(false)
}

/// Adds one entry, copying from `source` in pieces.
pub(crate) fn add_entry(zip: &mut ZipOut, name: &str, source: &mut impl Read) -> Result<()> {
    zip.start_file(name, stored())
        .map_err(|e| Error::internal("zip entry", e))?;
    io::copy(source, zip).map_err(|e| Error::internal("zip entry", e))?;
    Ok(())
}

/// A response streaming the zip that `build` writes on a blocking thread;
/// `disposition` is a static `attachment; filename=…` header.
pub(crate) fn streamed_zip(
    disposition: &'static str,
    build: impl FnOnce(&mut ZipOut) -> Result<()> + Send + 'static,
) -> Response {
    let (sender, receiver) = mpsc::channel::<io::Result<Bytes>>(CHUNKS_IN_FLIGHT);
    tokio::task::spawn_blocking(move || {
        let failure = sender.clone();
        let mut zip = zip::ZipWriter::new_stream(ChannelWriter::new(sender));
        let written = build(&mut zip).and_then(|()| {
            let mut out = zip.finish().map_err(|e| Error::internal("zip", e))?;
            out.flush().map_err(|e| Error::internal("zip", e))
        });
        if let Err(error) = written
            && !failure.is_closed()
        {
            tracing::error!(%error, "a zip download was cut short");
            let _ = failure.blocking_send(Err(io::Error::other("the zip could not be finished")));
        }
    });
    let stream = futures::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|chunk| (chunk, receiver))
    });
    let mut response = Response::new(Body::from_stream(stream));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/zip"),
    );
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static(disposition),
    );
    response
}

/// A `Write` whose bytes go to the response body in chunks; writing fails once the
/// client has gone.
pub(crate) struct ChannelWriter {
    sender: mpsc::Sender<io::Result<Bytes>>,
    pending: Vec<u8>,
}

impl ChannelWriter {
    fn new(sender: mpsc::Sender<io::Result<Bytes>>) -> Self {
        ChannelWriter {
            sender,
            pending: Vec::with_capacity(CHUNK_BYTES),
        }
    }

    fn send_pending(&mut self) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.pending, Vec::with_capacity(CHUNK_BYTES));
        self.sender
            .blocking_send(Ok(Bytes::from(chunk)))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client has gone"))
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let room = CHUNK_BYTES - self.pending.len();
        let taken = bytes.len().min(room);
        self.pending.extend_from_slice(&bytes[..taken]);
        if self.pending.len() == CHUNK_BYTES {
            self.send_pending()?;
        }
        Ok(taken)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send_pending()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_streamed_zip_reads_back_whole() {
        let big: Vec<u8> = (0..3 * CHUNK_BYTES as u32)
            .map(|i| (i % 251) as u8)
            .collect();
        let expected = big.clone();
        let response = streamed_zip("attachment; filename=\"t.zip\"", move |zip| {
            add_entry(zip, "a.bin", &mut big.as_slice())?;
            add_entry(zip, "b.txt", &mut &b"hello"[..])
        });
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let mut archive = zip::ZipArchive::new(io::Cursor::new(body.to_vec())).unwrap();
        let mut a = Vec::new();
        archive
            .by_name("a.bin")
            .unwrap()
            .read_to_end(&mut a)
            .unwrap();
        assert_eq!(a, expected);
        let mut b = String::new();
        archive
            .by_name("b.txt")
            .unwrap()
            .read_to_string(&mut b)
            .unwrap();
        assert_eq!(b, "hello");
    }

    #[tokio::test]
    async fn the_writer_stops_when_the_client_goes() {
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let response = streamed_zip("attachment; filename=\"t.zip\"", move |zip| {
            let endless = &mut io::repeat(7).take(u64::MAX);
            let outcome = add_entry(zip, "endless.bin", endless);
            done_tx.send(outcome.is_err()).unwrap();
            outcome
        });
        drop(response); // the client hung up before reading anything
        let stopped = tokio::task::spawn_blocking(move || {
            done_rx.recv_timeout(std::time::Duration::from_secs(30))
        })
        .await
        .unwrap();
        assert_eq!(
            stopped,
            Ok(true),
            "the writing thread must stop with an error"
        );
    }
}
