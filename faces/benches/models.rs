//! Criterion benches of the two face models on flex: the detector's forward pass and
//! whole `detect` on the 250×250 fixture photo and on 640×480 (the default size cap), and
//! the embedder per batch of 1 and 8 chips. Needs the weights (`scripts/fetch-face-weights.sh`).
//!
//! `cargo bench -p album-faces --bench models`

use std::path::PathBuf;

use album_faces::detect::FaceDetector;
use album_faces::embedder::FaceEmbedder;
use burn::tensor::Device;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use image::RgbImage;

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn weights_dir() -> PathBuf {
    std::env::var_os("ALBUM_FACE_WEIGHTS")
        .map_or_else(|| crate_dir().join("../data/weights"), PathBuf::from)
}

fn fixture(name: &str) -> RgbImage {
    let path = crate_dir().join("fixtures").join(name);
    image::open(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .to_rgb8()
}

fn detector(c: &mut Criterion) {
    let detector = FaceDetector::load(&weights_dir(), &Device::flex()).expect("detector weights");
    let photo = fixture("retinaface-Gonzalo_Sanchez_de_Lozada_0007.png");
    let vga = image::imageops::resize(&photo, 640, 480, image::imageops::FilterType::Triangle);
    let mut group = c.benchmark_group("detector");
    group.sample_size(20).throughput(Throughput::Elements(1));
    for (name, image) in [("250x250", &photo), ("640x480", &vga)] {
        group.bench_with_input(BenchmarkId::new("forward", name), image, |b, image| {
            b.iter(|| detector.raw_outputs(image).expect("forward"))
        });
        group.bench_with_input(BenchmarkId::new("detect", name), image, |b, image| {
            b.iter(|| detector.detect(image).expect("detect"))
        });
    }
    group.finish();
}

fn embedder(c: &mut Criterion) {
    let embedder = FaceEmbedder::load(&weights_dir(), &Device::flex()).expect("embedder weights");
    let chips: Vec<RgbImage> = ["Abdullah_Gul_0001", "Adrien_Brody_0001", "Amelia_Vega_0001"]
        .iter()
        .map(|name| fixture(&format!("chip-{name}.png")))
        .collect();
    let mut group = c.benchmark_group("embedder");
    group.sample_size(20);
    for batch in [1usize, 8] {
        let input: Vec<RgbImage> = chips.iter().cycle().take(batch).cloned().collect();
        group.throughput(Throughput::Elements(batch as u64));
        group.bench_with_input(BenchmarkId::new("chips", batch), &input, |b, input| {
            b.iter(|| embedder.embed(input).expect("embed"))
        });
    }
    group.finish();
}

criterion_group!(benches, detector, embedder);
criterion_main!(benches);
