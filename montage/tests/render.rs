//! Montages rendered by the real ffmpeg from real photos (five-class and LFW, beside the
//! checkout), checked with ffprobe and by looking at the frames: the duration, size and
//! frame rate are the spec's, and the frame in the middle of each photo's time on screen
//! is that photo and no other. Odd photos (1 × 1 px, 12000 × 8000 px, grey-scale, CMYK)
//! render too.

use std::path::{Path, PathBuf};

use album_montage::frame::{PixelBox, cover_crop};
use album_montage::probe::{frame_at, likeness, probe};
use album_montage::{MontagePhoto, MontageSpec, Orientation, Pixels, render};
use image::DynamicImage;

fn shared(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/datasets")
        .join(path)
}

fn photo(path: &Path) -> MontagePhoto {
    MontagePhoto {
        image: image::open(path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .into(),
        faces: Vec::new(),
    }
}

/// The first photo of a class folder whose name starts with `prefix`.
fn first_of(class: &str, prefix: &str) -> PathBuf {
    let mut files: Vec<PathBuf> = std::fs::read_dir(shared(&format!("five-class/{class}")))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(prefix))
        .collect();
    files.sort();
    files.remove(0)
}

#[test]
fn each_photo_is_on_screen_in_its_slot_and_the_video_is_what_was_asked() {
    let mut photos = vec![
        photo(&first_of("animals", "catsdogs")),
        photo(&first_of("buildings", "intel")),
        photo(&first_of("vehicles", "stanfordcars")),
    ];
    // an LFW portrait with its face box: the pan ends on it
    let mut face = photo(&shared("faces/Amelia_Vega/Amelia_Vega_0001.jpg"));
    face.faces = vec![PixelBox {
        left: 80.0,
        top: 70.0,
        width: 90.0,
        height: 110.0,
    }];
    photos.push(face);
    let references: Vec<image::RgbImage> = photos
        .iter()
        .map(|p| {
            let Pixels::Decoded(image) = &p.image else {
                panic!("the test photos are decoded")
            };
            cover_crop(image, PixelBox::around(&p.faces), 320, 180)
                .unwrap()
                .image
        })
        .collect();

    let dir = tempfile::tempdir().unwrap();
    let music = dir.path().join("tone.m4a");
    let made = std::process::Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:duration=3",
            "-c:a",
            "aac",
        ])
        .arg(&music)
        .status()
        .unwrap();
    assert!(made.success());
    let mut spec = MontageSpec::new("A day out", photos);
    spec.subtitle = "3 – 5 June 2024".into();
    spec.seconds_per_photo = 2.0;
    spec.crossfade = 0.5;
    spec.title_seconds = 1.5;
    spec.music = Some(music);
    let out = dir.path().join("day.mp4");
    let mut last = 0.0;
    let rendered = render(&spec, &out, &mut |done| {
        assert!(done >= last - 1e-9, "progress went back: {last} → {done}");
        last = done;
    })
    .unwrap();
    assert_eq!(last, 1.0);
    assert!(!album_montage::render::part_path(&out).exists());

    let facts = probe(&out).unwrap();
    assert_eq!((facts.width, facts.height), (1280, 720));
    assert!((facts.fps - 30.0).abs() < 0.01, "{facts:?}");
    assert_eq!(facts.codec, "h264");
    assert!(facts.has_audio);
    let expected = rendered.timeline.duration();
    assert!(
        (facts.duration - expected).abs() < 0.15,
        "{} vs {expected}",
        facts.duration
    );

    for k in 0..references.len() {
        let (start, end) = rendered.timeline.solo(k);
        let frame = frame_at(&out, (start + end) / 2.0).unwrap();
        let scores: Vec<f64> = references.iter().map(|r| likeness(&frame, r)).collect();
        let best = (0..scores.len())
            .max_by(|&a, &b| scores[a].total_cmp(&scores[b]))
            .unwrap();
        assert_eq!(best, k, "photo {k}'s slot shows photo {best}: {scores:?}");
        assert!(scores[k] > 0.6, "photo {k}: {scores:?}");
    }
    // the title card is dark with light text, not a photo
    let title = frame_at(&out, 0.5).unwrap();
    let mean: f64 = title.pixels().map(|p| f64::from(p.0[1])).sum::<f64>() / (1280.0 * 720.0);
    assert!(mean < 60.0, "title card mean {mean}");
    assert!(
        title.pixels().any(|p| p.0[1] > 200),
        "no text on the title card"
    );
}

#[test]
fn odd_photos_render_in_portrait() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../faces/fixtures");
    let tiny = MontagePhoto {
        image: DynamicImage::new_rgb8(1, 1).into(),
        faces: Vec::new(),
    };
    let huge = MontagePhoto {
        image: DynamicImage::ImageRgb8(image::RgbImage::from_fn(12_000, 8_000, |x, y| {
            image::Rgb([(x / 47) as u8, (y / 31) as u8, 128])
        }))
        .into(),
        faces: Vec::new(),
    };
    let grey = photo(&fixtures.join("grey-Adrien_Brody_0003.jpg"));
    assert!(
        matches!(&grey.image, Pixels::Decoded(i) if i.color() == image::ColorType::L8),
        "the fixture is grey-scale"
    );
    let cmyk = photo(&fixtures.join("cmyk-Adrien_Brody_0003.jpg"));
    let mut spec = MontageSpec::new("Odd ones", vec![tiny, huge, grey, cmyk]);
    spec.orientation = Orientation::Portrait;
    spec.seconds_per_photo = 1.0;
    spec.crossfade = 0.25;
    spec.title_seconds = 1.0;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("odd.mp4");
    render(&spec, &out, &mut |_| {}).unwrap();
    let facts = probe(&out).unwrap();
    assert_eq!((facts.width, facts.height), (720, 1280));
    assert!((facts.duration - 5.0).abs() < 0.15, "{facts:?}");
    assert!(!facts.has_audio);
}

#[test]
fn a_failed_encode_leaves_no_video_behind() {
    let dir = tempfile::tempdir().unwrap();
    let bad_music = dir.path().join("not-music.mp3");
    std::fs::write(&bad_music, b"this is not audio").unwrap();
    let mut spec = MontageSpec::new(
        "t",
        vec![MontagePhoto {
            image: DynamicImage::new_rgb8(8, 8).into(),
            faces: Vec::new(),
        }],
    );
    spec.music = Some(bad_music);
    let out = dir.path().join("x.mp4");
    let err = render(&spec, &out, &mut |_| {}).unwrap_err();
    assert!(err.to_string().contains("ffmpeg failed"), "{err}");
    assert!(!out.exists() && !album_montage::render::part_path(&out).exists());
}
