//! Photos the pipeline must survive: no face, a crowd, a single pixel, grey-scale and
//! CMYK JPEGs, bytes that are not a photo, and missing model files. Each gets a clear
//! result or a clear error, never a panic.

mod common;

use std::sync::{Mutex, OnceLock};

use album_faces::Error;
use album_faces::pipeline::{FacePipeline, decode_photo};
use burn::tensor::Device;
use image::{ImageFormat, RgbImage};

/// One pipeline for every test in this file: loading the models takes a moment.
fn pipeline() -> std::sync::MutexGuard<'static, FacePipeline> {
    static PIPELINE: OnceLock<Mutex<FacePipeline>> = OnceLock::new();
    PIPELINE
        .get_or_init(|| {
            let pipeline = FacePipeline::load(&common::weights_dir(), &Device::flex())
                .unwrap_or_else(|e| {
                    panic!("{e} (the tests need the models: run scripts/fetch-face-weights.sh)")
                });
            Mutex::new(pipeline)
        })
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn png_bytes(image: &RgbImage) -> Vec<u8> {
    let mut bytes = std::io::Cursor::new(Vec::new());
    image.write_to(&mut bytes, ImageFormat::Png).unwrap();
    bytes.into_inner()
}

fn lfw_photo(person: &str, number: u32) -> RgbImage {
    let path = common::lfw_dir()
        .join(person)
        .join(format!("{person}_{number:04}.jpg"));
    image::open(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .to_rgb8()
}

#[test]
fn a_landscape_has_no_faces_and_that_is_not_an_error() {
    let path =
        common::lfw_dir().join("../five-class/landscape/caltech101_joshua_tree_image_0001.jpg");
    let bytes = std::fs::read(&path).unwrap();
    let faces = pipeline().faces_in_bytes(&bytes).unwrap();
    assert!(faces.is_empty(), "{} faces in a landscape", faces.len());
}

#[test]
fn a_one_pixel_image_gives_no_faces() {
    let faces = pipeline()
        .faces_in_bytes(&png_bytes(&RgbImage::new(1, 1)))
        .unwrap();
    assert!(faces.is_empty());
}

#[test]
fn a_thin_strip_gives_no_faces() {
    let faces = pipeline()
        .faces_in_bytes(&png_bytes(&RgbImage::new(3, 500)))
        .unwrap();
    assert!(faces.is_empty());
}

#[test]
fn twenty_faces_in_one_photo_are_all_found() {
    // A 5 × 4 contact sheet of the centre 150 px of twenty LFW photos of different people.
    let people: Vec<String> = std::fs::read_dir(common::lfw_dir())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .take(20)
        .collect();
    assert_eq!(people.len(), 20);
    let mut sheet = RgbImage::new(5 * 150, 4 * 150);
    for (i, person) in people.iter().enumerate() {
        let photo = lfw_photo(person, 1);
        let tile = image::imageops::crop_imm(&photo, 50, 50, 150, 150).to_image();
        image::imageops::replace(
            &mut sheet,
            &tile,
            (i % 5) as i64 * 150,
            (i / 5) as i64 * 150,
        );
    }
    let faces = pipeline().faces_in(&sheet).unwrap();
    assert_eq!(
        faces.len(),
        20,
        "boxes: {:?}",
        faces.iter().map(|f| f.detection.bbox).collect::<Vec<_>>()
    );
    // One face per tile.
    let mut tiles: Vec<u32> = faces
        .iter()
        .map(|f| {
            let (cx, cy) = (
                (f.detection.bbox[0] + f.detection.bbox[2]) / 2.0,
                (f.detection.bbox[1] + f.detection.bbox[3]) / 2.0,
            );
            (cy / 150.0) as u32 * 5 + (cx / 150.0) as u32
        })
        .collect();
    tiles.sort();
    assert_eq!(tiles, (0..20).collect::<Vec<_>>());
}

#[test]
fn grey_scale_and_cmyk_jpegs_find_the_same_face_as_the_colour_photo() {
    // The photo also shows a second, partly cut-off face at the edge (score ≈ 0.80);
    // compare the most confident face, which is the same person in every version.
    let colour = pipeline().faces_in(&lfw_photo("Adrien_Brody", 3)).unwrap();
    assert!(!colour.is_empty());
    for name in ["grey-Adrien_Brody_0003.jpg", "cmyk-Adrien_Brody_0003.jpg"] {
        let bytes = std::fs::read(common::fixtures_dir().join(name)).unwrap();
        let faces = pipeline()
            .faces_in_bytes(&bytes)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!faces.is_empty(), "{name}: no face");
        let shift = faces[0]
            .detection
            .bbox
            .iter()
            .zip(colour[0].detection.bbox)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(shift < 6.0, "{name}: box moved {shift} px");
    }
}

#[test]
fn bytes_that_are_not_a_photo_are_a_clear_image_error() {
    for (name, bytes) in [
        (
            "an executable",
            b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0".to_vec(),
        ),
        ("empty", Vec::new()),
        (
            "a truncated PNG",
            png_bytes(&RgbImage::new(64, 64))[..40].to_vec(),
        ),
    ] {
        match decode_photo(&bytes) {
            Err(Error::Image(message)) => assert!(!message.is_empty(), "{name}"),
            other => panic!("{name}: {other:?}"),
        }
        assert!(
            matches!(pipeline().faces_in_bytes(&bytes), Err(Error::Image(_))),
            "{name}"
        );
    }
}

#[test]
fn a_missing_model_file_names_the_fetch_script() {
    let empty = tempfile::tempdir().unwrap();
    let error = FacePipeline::load(empty.path(), &Device::flex())
        .err()
        .expect("no models, no pipeline");
    assert!(matches!(error, Error::MissingWeights { .. }), "{error}");
    assert!(
        error.to_string().contains("scripts/fetch-face-weights.sh"),
        "{error}"
    );
}
