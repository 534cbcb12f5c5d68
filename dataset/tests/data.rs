//! The data pipeline on real photos from the five-class set: shapes, value ranges,
//! determinism of augmentation, flips, the memory-mapped cache, and broken files.
//!
//! Each test copies a few photos (two per class) into a temporary folder and writes a
//! manifest for them with honest sha256 and perceptual hashes.

use std::path::{Path, PathBuf};

use album_dataset::data::*;
use album_dataset::manifest::{Manifest, ManifestRecord, write_manifest};
use album_dataset::{Error, phash};
use burn::data::dataloader::DataLoaderBuilder;
use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::Dataset;
use burn::tensor::Device;
use sha2::{Digest, Sha256};

const PHOTOS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/datasets/five-class"
);
const CLASSES: [&str; 5] = ["animals", "buildings", "landscape", "people", "vehicles"];
const PER_CLASS: usize = 2;

/// A temporary store: photos under `images/<class>/`, `manifest.parquet` beside them.
struct Store {
    dir: tempfile::TempDir,
    manifest: Manifest,
}

impl Store {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut records = Vec::new();
        for class in CLASSES {
            for source in first_photos(class, PER_CLASS) {
                records.push(copy_into_store(dir.path(), class, &source));
            }
        }
        let path = dir.path().join("manifest.parquet");
        write_manifest(&path, &records).unwrap();
        let manifest = Manifest::load(&path).unwrap();
        Store { dir, manifest }
    }

    fn cache_dir(&self) -> PathBuf {
        self.dir.path().join("cache")
    }
}

fn first_photos(class: &str, count: usize) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(Path::new(PHOTOS).join(class))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jpg"))
        .collect();
    files.sort();
    files.truncate(count);
    files
}

fn copy_into_store(root: &Path, class: &str, source: &Path) -> ManifestRecord {
    let name = source.file_name().unwrap().to_string_lossy().into_owned();
    let relative = format!("images/{class}/{name}");
    let target = root.join(&relative);
    std::fs::create_dir_all(target.parent().unwrap()).unwrap();
    let bytes = std::fs::read(source).unwrap();
    std::fs::write(&target, &bytes).unwrap();
    let decoded = image::load_from_memory(&bytes).unwrap();
    ManifestRecord {
        path: relative,
        class: class.into(),
        image_url: format!("file://{}", source.display()),
        page_url: format!("file://{PHOTOS}/{class}/"),
        sha256: hex::encode(Sha256::digest(&bytes)),
        phash: phash::phash(&decoded),
        width: decoded.width(),
        height: decoded.height(),
        bytes: bytes.len() as u64,
        fetched_at: "2026-01-01T00:00:00Z".into(),
    }
}

fn small_config() -> PreprocessConfig {
    PreprocessConfig::sized(64, 56)
}

fn dataset(store: &Store, resize: u32) -> ImageDataset {
    ImageDataset::new(
        DecodedImages::decode_in_memory(&store.manifest, resize)
            .unwrap()
            .into_shared(),
    )
}

fn all_items(dataset: &ImageDataset) -> Vec<ImageItem> {
    (0..dataset.len())
        .map(|i| dataset.get(i).unwrap())
        .collect()
}

fn batch_values(batcher: &ImageBatcher, items: &[ImageItem]) -> Vec<f32> {
    batcher
        .batch(items.to_vec(), &Device::default())
        .images
        .into_data()
        .try_to_vec::<f32>()
        .unwrap()
}

#[test]
fn batches_have_shape_b_3_crop_crop_and_class_index_targets() {
    let store = Store::new();
    let dataset = dataset(&store, 64);
    let items = all_items(&dataset);
    let batch = ImageBatcher::eval(&small_config())
        .unwrap()
        .batch(items, &Device::default());
    assert_eq!(batch.images.dims(), [10, 3, 56, 56]);
    assert_eq!(batch.targets.dims(), [10]);
    let targets: Vec<i64> = batch
        .targets
        .into_data()
        .convert::<i64>()
        .try_to_vec()
        .unwrap();
    let expected: Vec<i64> = store
        .manifest
        .records
        .iter()
        .map(|r| CLASSES.iter().position(|c| *c == r.class).unwrap() as i64)
        .collect();
    assert_eq!(targets, expected);
    assert_eq!(dataset.images().class_names(), CLASSES);
}

#[test]
fn normalised_values_lie_in_each_channels_range_and_are_finite() {
    let store = Store::new();
    let config = small_config();
    let items = all_items(&dataset(&store, 64));
    let values = batch_values(&ImageBatcher::train(&config, 7).unwrap(), &items);
    let plane = 56 * 56;
    for (i, value) in values.iter().enumerate() {
        let (low, high) = config.channel_range(i / plane % 3);
        assert!(value.is_finite(), "value {i} is {value}");
        assert!(
            (low..=high).contains(value),
            "value {i} = {value} outside [{low}, {high}]"
        );
    }
    // Real photos use most of the range: not all black, not constant.
    let (min, max) = values
        .iter()
        .fold((f32::MAX, f32::MIN), |(a, b), v| (a.min(*v), b.max(*v)));
    assert!(max - min > 3.0, "range {min}..{max}");
}

#[test]
fn eval_batches_are_identical_across_calls_and_epochs() {
    let store = Store::new();
    let dataset = dataset(&store, 64);
    let batcher = ImageBatcher::eval(&small_config()).unwrap();
    let first = batch_values(&batcher, &all_items(&dataset));
    dataset.set_epoch(5);
    assert_eq!(batch_values(&batcher, &all_items(&dataset)), first);
}

#[test]
fn train_batches_repeat_for_seed_and_epoch_and_change_with_either() {
    let store = Store::new();
    let dataset = dataset(&store, 72);
    let config = PreprocessConfig::sized(72, 56);
    let seeded = |seed| ImageBatcher::train(&config, seed).unwrap();
    let items = all_items(&dataset);
    let reference = batch_values(&seeded(1), &items);
    assert_eq!(
        batch_values(&seeded(1), &items),
        reference,
        "same seed, same epoch"
    );
    assert_ne!(batch_values(&seeded(2), &items), reference, "another seed");
    dataset.set_epoch(1);
    let next_epoch = all_items(&dataset);
    assert_ne!(
        batch_values(&seeded(1), &next_epoch),
        reference,
        "another epoch"
    );
    // Order and batch composition do not matter: each item's crop is its own.
    let one_by_one: Vec<f32> = items
        .iter()
        .flat_map(|item| batch_values(&seeded(1), std::slice::from_ref(item)))
        .collect();
    assert_eq!(one_by_one, reference);
    let reversed: Vec<ImageItem> = items.iter().rev().cloned().collect();
    let backwards = batch_values(&seeded(1), &reversed);
    let item_len = config.item_len();
    let restored: Vec<f32> = backwards
        .chunks(item_len)
        .rev()
        .flatten()
        .copied()
        .collect();
    assert_eq!(restored, reference);
}

#[test]
fn training_crops_vary_across_positions_and_flip_about_half_the_time() {
    let plans: Vec<CropPlan> = (0..400)
        .map(|i| Augmentation::Train { seed: 3 }.plan(96, 72, 64, 0, i))
        .collect();
    let flips = plans.iter().filter(|p| p.flip).count();
    assert!((140..=260).contains(&flips), "{flips} flips of 400");
    assert!(plans.iter().all(|p| p.top <= 8 && p.left <= 32));
    assert!(plans.iter().any(|p| p.top == 0) && plans.iter().any(|p| p.top == 8));
    assert!(plans.iter().any(|p| p.left == 0) && plans.iter().any(|p| p.left == 32));
}

/// The expected crop computed directly from the definition, one pixel at a time.
fn reference_crop(image: ImageView<'_>, plan: CropPlan, config: &PreprocessConfig) -> Vec<f32> {
    let crop = config.crop as usize;
    let mut out = vec![0.0; config.item_len()];
    for c in 0..3 {
        for y in 0..crop {
            for x in 0..crop {
                let source_x = plan.left as usize + if plan.flip { crop - 1 - x } else { x };
                let source_y = plan.top as usize + y;
                let byte = image.pixels[(source_y * image.width as usize + source_x) * 3 + c];
                out[(c * crop + y) * crop + x] =
                    (f32::from(byte) / 255.0 - config.mean[c]) / config.std[c];
            }
        }
    }
    out
}

#[test]
fn horizontal_flip_mirrors_the_crop_and_batches_match_a_direct_reference() {
    let store = Store::new();
    let dataset = dataset(&store, 72);
    let config = PreprocessConfig::sized(72, 64);
    let items = all_items(&dataset);
    let batcher = ImageBatcher::train(&config, 11).unwrap();
    let values = batch_values(&batcher, &items);
    let mut flipped_seen = [false, false];
    for (item, got) in items.iter().zip(values.chunks(config.item_len())) {
        let image = item.image().unwrap();
        let plan = batcher.augmentation().plan(
            image.width,
            image.height,
            config.crop,
            item.epoch,
            item.index,
        );
        flipped_seen[usize::from(plan.flip)] = true;
        assert_eq!(
            got,
            reference_crop(image, plan, &config).as_slice(),
            "item {}",
            item.index
        );
    }
    assert_eq!(
        flipped_seen,
        [true, true],
        "seed 11 should give both flipped and unflipped items"
    );

    // The same crop with and without the flip are mirror images of each other.
    let preprocessor = Preprocessor::new(&config).unwrap();
    let image = items[0].image().unwrap();
    let (mut plain, mut mirrored) = (vec![0.0; config.item_len()], vec![0.0; config.item_len()]);
    preprocessor
        .crop_into(
            image,
            CropPlan {
                top: 3,
                left: 5,
                flip: false,
            },
            &mut plain,
        )
        .unwrap();
    preprocessor
        .crop_into(
            image,
            CropPlan {
                top: 3,
                left: 5,
                flip: true,
            },
            &mut mirrored,
        )
        .unwrap();
    let side = config.crop as usize;
    for (row_plain, row_mirrored) in plain.chunks(side).zip(mirrored.chunks(side)) {
        let reversed: Vec<f32> = row_plain.iter().rev().copied().collect();
        assert_eq!(row_mirrored, reversed.as_slice());
    }
    assert_ne!(plain, mirrored);
}

#[test]
fn eval_crop_is_centred_like_torchvision() {
    // round((size - crop) / 2) with halves to even: 96-64=32 → 16, 73-64=9 → 4, 75-64=11 → 6.
    assert_eq!(
        Augmentation::Eval.plan(96, 64, 64, 0, 0),
        CropPlan {
            top: 0,
            left: 16,
            flip: false
        }
    );
    assert_eq!(
        Augmentation::Eval.plan(64, 73, 64, 0, 0),
        CropPlan {
            top: 4,
            left: 0,
            flip: false
        }
    );
    assert_eq!(
        Augmentation::Eval.plan(75, 64, 64, 0, 0),
        CropPlan {
            top: 0,
            left: 6,
            flip: false
        }
    );
}

#[test]
fn resized_images_have_short_side_resize_and_truncated_long_side() {
    let store = Store::new();
    let images = DecodedImages::decode_in_memory(&store.manifest, 64).unwrap();
    for (i, record) in store.manifest.records.iter().enumerate() {
        let image = images.image(i).unwrap();
        let (short, long) = (
            record.width.min(record.height),
            record.width.max(record.height),
        );
        let expected_long = (64.0 * f64::from(long) / f64::from(short)) as u32;
        assert_eq!(image.width.min(image.height), 64, "{}", record.path);
        assert_eq!(
            image.width.max(image.height),
            expected_long,
            "{}",
            record.path
        );
        assert_eq!(
            image.pixels.len(),
            image.width as usize * image.height as usize * 3
        );
    }
}

#[test]
fn the_direct_file_pipeline_matches_the_cached_pipeline() {
    let store = Store::new();
    let config = small_config();
    let items = all_items(&dataset(&store, 64));
    let paths: Vec<PathBuf> = store
        .manifest
        .records
        .iter()
        .map(|r| store.manifest.file_path(r))
        .collect();
    let preprocessor = Preprocessor::new(&config).unwrap();
    for augmentation in [Augmentation::Eval, Augmentation::Train { seed: 9 }] {
        let mut direct = vec![0.0; paths.len() * config.item_len()];
        with_threads(2, || {
            process_files_into(&preprocessor, &paths, augmentation, 0, 0, &mut direct)
        })
        .unwrap()
        .unwrap();
        let batcher = match augmentation {
            Augmentation::Eval => ImageBatcher::eval(&config).unwrap(),
            Augmentation::Train { seed } => ImageBatcher::train(&config, seed).unwrap(),
        };
        assert_eq!(direct, batch_values(&batcher, &items), "{augmentation:?}");
    }
}

#[test]
fn cache_file_is_built_then_reused_with_identical_pixels() {
    let store = Store::new();
    let in_memory = DecodedImages::decode_in_memory(&store.manifest, 64).unwrap();
    let (built, status) =
        DecodedImages::open_or_build(&store.manifest, 64, &store.cache_dir()).unwrap();
    assert_eq!(status, CacheStatus::Built);
    let path = built.file().unwrap().to_path_buf();
    assert_eq!(
        path,
        DecodedImages::cache_path(&store.manifest, 64, &store.cache_dir())
    );
    drop(built);
    let (reused, status) =
        DecodedImages::open_or_build(&store.manifest, 64, &store.cache_dir()).unwrap();
    assert_eq!(status, CacheStatus::Reused);
    assert_eq!(reused.len(), in_memory.len());
    for i in 0..in_memory.len() {
        let (a, b) = (reused.image(i).unwrap(), in_memory.image(i).unwrap());
        assert_eq!(
            (a.width, a.height, a.pixels),
            (b.width, b.height, b.pixels),
            "image {i}"
        );
        assert_eq!(reused.label(i), in_memory.label(i));
    }
    // Another resize is another file; no temporary files are left behind.
    let (_, status) =
        DecodedImages::open_or_build(&store.manifest, 72, &store.cache_dir()).unwrap();
    assert_eq!(status, CacheStatus::Built);
    let names: Vec<String> = std::fs::read_dir(store.cache_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(
        names
            .iter()
            .all(|n| n.starts_with("decoded-") && !n.ends_with(".tmp")),
        "{names:?}"
    );
}

fn rebuilt_reason(store: &Store, damage: impl FnOnce(&Path)) -> String {
    let (built, _) = DecodedImages::open_or_build(&store.manifest, 64, &store.cache_dir()).unwrap();
    let path = built.file().unwrap().to_path_buf();
    let original: Vec<u8> = (0..built.len())
        .flat_map(|i| built.image(i).unwrap().pixels.to_vec())
        .collect();
    drop(built);
    damage(&path);
    let (rebuilt, status) =
        DecodedImages::open_or_build(&store.manifest, 64, &store.cache_dir()).unwrap();
    let pixels: Vec<u8> = (0..rebuilt.len())
        .flat_map(|i| rebuilt.image(i).unwrap().pixels.to_vec())
        .collect();
    assert_eq!(pixels, original, "the rebuilt cache holds the true pixels");
    let (_, again) = DecodedImages::open_or_build(&store.manifest, 64, &store.cache_dir()).unwrap();
    assert_eq!(again, CacheStatus::Reused, "the rebuilt file is valid");
    match status {
        CacheStatus::Rebuilt { reason } => reason,
        other => panic!("expected a rebuild, got {other:?}"),
    }
}

#[test]
fn a_truncated_cache_file_is_rebuilt_not_trusted() {
    let store = Store::new();
    let reason = rebuilt_reason(&store, |path| {
        let length = std::fs::metadata(path).unwrap().len();
        let file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
        file.set_len(length - 1000).unwrap();
    });
    assert!(reason.contains("truncated"), "{reason}");
}

#[test]
fn a_cache_file_with_corrupted_pixels_is_rebuilt_not_trusted() {
    let store = Store::new();
    let reason = rebuilt_reason(&store, |path| {
        let mut bytes = std::fs::read(path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0x40;
        std::fs::write(path, bytes).unwrap();
    });
    assert!(reason.contains("checksum"), "{reason}");
}

#[test]
fn a_cache_file_with_a_garbage_header_is_rebuilt_not_trusted() {
    let store = Store::new();
    let reason = rebuilt_reason(&store, |path| {
        let mut bytes = std::fs::read(path).unwrap();
        bytes[..8].copy_from_slice(b"garbage!");
        std::fs::write(path, bytes).unwrap();
    });
    assert!(reason.contains("magic"), "{reason}");
}

#[test]
fn a_corrupt_jpeg_in_the_manifest_is_a_clear_error_naming_the_file() {
    let store = Store::new();
    let broken = &store.manifest.records[3];
    let path = store.manifest.file_path(broken);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.truncate(200);
    bytes.extend_from_slice(&[0x55; 64]);
    std::fs::write(&path, &bytes).unwrap();

    let error = DecodedImages::decode_in_memory(&store.manifest, 64).unwrap_err();
    assert!(matches!(error, Error::Image { .. }), "{error:?}");
    let message = error.to_string();
    assert!(message.contains(&broken.path), "{message}");
    assert!(message.contains("cannot decode"), "{message}");

    let error = DecodedImages::open_or_build(&store.manifest, 64, &store.cache_dir()).unwrap_err();
    assert!(error.to_string().contains(&broken.path), "{error}");
    let left: Vec<_> = std::fs::read_dir(store.cache_dir()).unwrap().collect();
    assert!(
        left.is_empty(),
        "a failed build leaves no file behind: {left:?}"
    );

    let preprocessor = Preprocessor::new(&small_config()).unwrap();
    let mut out = vec![0.0; preprocessor.item_len()];
    let error = with_threads(1, || {
        process_files_into(
            &preprocessor,
            std::slice::from_ref(&path),
            Augmentation::Eval,
            0,
            0,
            &mut out,
        )
    })
    .unwrap()
    .unwrap_err();
    assert!(error.to_string().contains(&broken.path), "{error}");
}

#[test]
fn a_missing_photo_is_a_clear_error_naming_the_file() {
    let store = Store::new();
    let missing = &store.manifest.records[0];
    std::fs::remove_file(store.manifest.file_path(missing)).unwrap();
    let error = DecodedImages::decode_in_memory(&store.manifest, 64)
        .unwrap_err()
        .to_string();
    assert!(error.contains(&missing.path), "{error}");
}

#[test]
fn the_burn_dataloader_yields_every_image_once_per_shuffled_epoch() {
    let store = Store::new();
    let config = small_config();
    let dataset = dataset(&store, 64);
    let epoch = dataset.epoch_counter();
    let loader = DataLoaderBuilder::new(ImageBatcher::train(&config, 3).unwrap())
        .batch_size(4)
        .shuffle(3)
        .num_workers(2)
        .build(dataset);
    let mut per_epoch = Vec::new();
    for e in 0..2 {
        epoch.set(e);
        let mut targets = Vec::new();
        let mut images = 0;
        for batch in loader.iter() {
            let batch = batch.unwrap();
            assert_eq!(batch.images.dims()[1..], [3, 56, 56]);
            images += batch.images.dims()[0];
            targets.extend(
                batch
                    .targets
                    .into_data()
                    .convert::<i64>()
                    .try_to_vec::<i64>()
                    .unwrap(),
            );
        }
        assert_eq!(images, 10);
        targets.sort();
        per_epoch.push(targets);
    }
    let expected: Vec<i64> = (0..5).flat_map(|c| [c, c]).collect();
    assert_eq!(per_epoch, [expected.clone(), expected]);
}

#[test]
fn a_dataset_index_out_of_range_is_an_error_not_a_panic() {
    let store = Store::new();
    let dataset = dataset(&store, 64);
    assert!(dataset.get(10).is_err());
    assert_eq!(dataset.len(), 10);
}
