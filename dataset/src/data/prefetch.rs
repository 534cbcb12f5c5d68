//! Batches built ahead of the training step on a worker thread.
//!
//! The training thread only takes finished [`HostBatch`]es from a bounded queue and
//! copies them to its device; crops, flips and normalisation (parallel over the batch,
//! on rayon's pool) happen while the previous step runs. The queue holds `depth`
//! batches, so memory stays bounded whatever the speed difference. Order is the order
//! of the chunks given, so a seeded epoch is reproduced exactly.
//!
//! Dropping a [`Prefetcher`] early (a stopped run, an error) stops the worker: its next
//! send fails and it returns; the drop waits for it.

use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use super::loader::{HostBatch, ImageBatcher, ImageDataset};
use crate::{Error, Result};

/// Builds the batches of `chunks` (dataset indices, one chunk per batch) in order on a
/// worker thread, at most `depth` ahead of the consumer.
pub struct Prefetcher {
    receiver: Option<Receiver<Result<HostBatch>>>,
    worker: Option<JoinHandle<()>>,
}

impl Prefetcher {
    pub fn spawn(
        dataset: ImageDataset,
        batcher: ImageBatcher,
        chunks: Vec<Vec<usize>>,
        depth: usize,
    ) -> Result<Self> {
        let (sender, receiver) = sync_channel(depth.max(1));
        let worker = std::thread::Builder::new()
            .name("album-batches".into())
            .spawn(move || build_batches(&dataset, &batcher, chunks, &sender))
            .map_err(|e| Error::Data(format!("cannot start the batch worker thread: {e}")))?;
        Ok(Prefetcher {
            receiver: Some(receiver),
            worker: Some(worker),
        })
    }
}

fn build_batches(
    dataset: &ImageDataset,
    batcher: &ImageBatcher,
    chunks: Vec<Vec<usize>>,
    sender: &SyncSender<Result<HostBatch>>,
) {
    for chunk in chunks {
        let batch = chunk
            .iter()
            .map(|&i| dataset.item(i))
            .collect::<Result<Vec<_>>>()
            .and_then(|items| batcher.host_batch(&items));
        let failed = batch.is_err();
        // A closed queue means the consumer stopped: nothing more to build.
        if sender.send(batch).is_err() || failed {
            return;
        }
    }
}

impl Iterator for Prefetcher {
    type Item = Result<HostBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        self.receiver.as_ref()?.recv().ok()
    }
}

impl Drop for Prefetcher {
    fn drop(&mut self) {
        // Closing the queue first unblocks a worker waiting to send.
        self.receiver.take();
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{DecodedImages, PreprocessConfig};
    use crate::manifest::{Manifest, ManifestRecord};

    fn tiny_images(count: usize) -> ImageDataset {
        let dir = tempfile::tempdir().unwrap();
        let mut records = Vec::new();
        for i in 0..count {
            let path = dir.path().join(format!("{i}.png"));
            let shade = (i * 40) as u8;
            image::RgbImage::from_pixel(12, 10, image::Rgb([shade, 0, 255 - shade]))
                .save(&path)
                .unwrap();
            records.push(ManifestRecord {
                path: path.to_string_lossy().into_owned(),
                class: ["a", "b"][i % 2].into(),
                image_url: String::new(),
                page_url: String::new(),
                sha256: format!("{i}"),
                phash: 0,
                width: 12,
                height: 10,
                bytes: 0,
                fetched_at: String::new(),
            });
        }
        let manifest = Manifest {
            root: dir.path().to_path_buf(),
            records,
        };
        let images = DecodedImages::decode_in_memory(&manifest, 10).unwrap();
        ImageDataset::new(images.into_shared())
    }

    #[test]
    fn prefetched_batches_equal_batches_built_in_place_in_the_same_order() {
        let dataset = tiny_images(6);
        dataset.set_epoch(3);
        let batcher = ImageBatcher::train(&PreprocessConfig::sized(10, 8), 5).unwrap();
        let chunks = vec![vec![4, 1], vec![0, 5], vec![2, 3]];
        let expected: Vec<HostBatch> = chunks
            .iter()
            .map(|chunk| {
                let items: Vec<_> = chunk.iter().map(|&i| dataset.item(i).unwrap()).collect();
                batcher.host_batch(&items).unwrap()
            })
            .collect();
        let got: Vec<HostBatch> = Prefetcher::spawn(dataset, batcher, chunks, 1)
            .unwrap()
            .collect::<Result<_>>()
            .unwrap();
        assert_eq!(got.len(), 3);
        for (got, expected) in got.iter().zip(&expected) {
            assert_eq!(got.pixels, expected.pixels);
            assert_eq!(got.targets, expected.targets);
        }
    }

    #[test]
    fn a_bad_index_ends_the_stream_with_its_error_and_dropping_early_stops_the_worker() {
        let dataset = tiny_images(2);
        let batcher = ImageBatcher::eval(&PreprocessConfig::sized(10, 8)).unwrap();
        let mut stream =
            Prefetcher::spawn(dataset.clone(), batcher.clone(), vec![vec![0], vec![9]], 2).unwrap();
        assert!(stream.next().unwrap().is_ok());
        let error = stream.next().unwrap().unwrap_err().to_string();
        assert!(error.contains("out of range"), "{error}");
        assert!(stream.next().is_none());
        // Many chunks, a queue of 1, dropped after one batch: the drop must not hang.
        let many = vec![vec![0, 1]; 100];
        let mut stream = Prefetcher::spawn(dataset, batcher, many, 1).unwrap();
        assert!(stream.next().unwrap().is_ok());
        drop(stream);
    }
}
