//! Per-image cost of the data pipeline on one real photo, single thread:
//! the cold path (JPEG bytes → `[3, C, C]` f32) and the warm path (resized RGB8 from the
//! decoded cache → `[3, C, C]`), at the CPU size 64/56 and the paper's 256/224.
//!
//! `cargo bench -p album-dataset --bench pipeline`. Needs the five-class photo set.

use std::hint::black_box;
use std::path::Path;

use album_dataset::data::{Augmentation, PreprocessConfig, Preprocessor, decode_and_resize};
use criterion::{Criterion, criterion_group, criterion_main};

const PHOTO: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/datasets/five-class/animals"
);

fn first_photo() -> Option<Vec<u8>> {
    let mut files: Vec<_> = std::fs::read_dir(Path::new(PHOTO))
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    files.sort();
    std::fs::read(files.first()?).ok()
}

fn pipeline(c: &mut Criterion) {
    let Some(bytes) = first_photo() else {
        eprintln!("no photo under {PHOTO}: nothing to measure");
        return;
    };
    for (resize, crop) in [(64, 56), (256, 224)] {
        let Ok(preprocessor) = Preprocessor::new(&PreprocessConfig::sized(resize, crop)) else {
            return;
        };
        let Ok(resized) = decode_and_resize(&bytes, resize, "photo") else {
            return;
        };
        let mut out = vec![0.0f32; preprocessor.item_len()];
        let train = Augmentation::Train { seed: 1 };
        let mut index = 0usize;
        c.bench_function(
            &format!("cold {resize}/{crop}: decode+resize+crop+flip+normalise"),
            |b| {
                b.iter(|| {
                    index += 1;
                    preprocessor.process_encoded_into(
                        black_box(&bytes),
                        "photo",
                        train,
                        0,
                        index,
                        &mut out,
                    )
                })
            },
        );
        c.bench_function(
            &format!("warm {resize}/{crop}: crop+flip+normalise from cache"),
            |b| {
                b.iter(|| {
                    index += 1;
                    preprocessor.process_resized_into(
                        black_box(resized.view()),
                        train,
                        0,
                        index,
                        &mut out,
                    )
                })
            },
        );
    }
}

criterion_group!(benches, pipeline);
criterion_main!(benches);
