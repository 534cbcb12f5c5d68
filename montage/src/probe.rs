//! What `ffprobe` says about a rendered video, and single frames taken from it with
//! `ffmpeg`: how the tests, the benchmark and the service check a montage.

use std::path::Path;
use std::process::Command;

use image::RgbImage;

use crate::{Error, Result};

/// A video's duration, frame size and frame rate, and whether it has sound.
#[derive(Debug, Clone, PartialEq)]
pub struct VideoFacts {
    pub duration: f64,
    pub width: u32,
    pub height: u32,
    pub fps: f64,
    pub codec: String,
    pub has_audio: bool,
}

/// Runs `ffprobe` on `video`.
pub fn probe(video: &Path) -> Result<VideoFacts> {
    let json = ffprobe(video)?;
    let streams = json["streams"].as_array().cloned().unwrap_or_default();
    let video_stream = streams
        .iter()
        .find(|s| s["codec_type"] == "video")
        .ok_or_else(|| Error::Invalid(format!("{} has no video stream", video.display())))?;
    let rate = video_stream["avg_frame_rate"].as_str().unwrap_or("0/1");
    let fps = match rate.split_once('/') {
        Some((n, d)) => n.parse::<f64>().unwrap_or(0.0) / d.parse::<f64>().unwrap_or(1.0).max(1e-9),
        None => rate.parse().unwrap_or(0.0),
    };
    Ok(VideoFacts {
        duration: duration_of(&json),
        width: video_stream["width"].as_u64().unwrap_or(0) as u32,
        height: video_stream["height"].as_u64().unwrap_or(0) as u32,
        fps,
        codec: video_stream["codec_name"].as_str().unwrap_or("").to_owned(),
        has_audio: streams.iter().any(|s| s["codec_type"] == "audio"),
    })
}

/// The length in seconds of a music file: it must hold an audio stream ffmpeg decodes
/// (MP3, AAC, Ogg, FLAC, WAV ...) and last at least a tenth of a second. How the service
/// checks an upload before it keeps it.
pub fn audio_seconds(file: &Path) -> Result<f64> {
    let json = ffprobe(file).map_err(|e| match e {
        Error::Encoder { .. } => Error::Invalid("not an audio file ffmpeg can read".into()),
        other => other,
    })?;
    let streams = json["streams"].as_array().cloned().unwrap_or_default();
    if !streams.iter().any(|s| s["codec_type"] == "audio") {
        return Err(Error::Invalid("the file has no sound to play".into()));
    }
    let seconds = duration_of(&json);
    if seconds.is_nan() || seconds < 0.1 {
        return Err(Error::Invalid(format!(
            "the sound lasts {seconds:.2} s; music needs at least 0.1 s"
        )));
    }
    Ok(seconds)
}

fn duration_of(json: &serde_json::Value) -> f64 {
    json["format"]["duration"]
        .as_str()
        .and_then(|d| d.parse().ok())
        .unwrap_or(0.0)
}

/// `ffprobe`'s JSON about a file's container and streams.
fn ffprobe(file: &Path) -> Result<serde_json::Value> {
    let output = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-print_format",
            "json",
            "-show_format",
            "-show_streams",
        ])
        .arg(file)
        .output()
        .map_err(|source| Error::MissingTool {
            program: "ffprobe",
            source,
        })?;
    if !output.status.success() {
        return Err(Error::Encoder {
            status: output.status.to_string(),
            log: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        });
    }
    serde_json::from_slice(&output.stdout)
        .map_err(|e| Error::Invalid(format!("ffprobe's answer: {e}")))
}

/// The frame shown at `seconds`, decoded by ffmpeg.
pub fn frame_at(video: &Path, seconds: f64) -> Result<RgbImage> {
    let output = Command::new("ffmpeg")
        .args(["-v", "error", "-ss", &format!("{seconds:.3}"), "-i"])
        .arg(video)
        .args(["-frames:v", "1", "-f", "image2pipe", "-vcodec", "png", "-"])
        .output()
        .map_err(|source| Error::MissingTool {
            program: "ffmpeg",
            source,
        })?;
    if !output.status.success() || output.stdout.is_empty() {
        return Err(Error::Encoder {
            status: output.status.to_string(),
            log: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        });
    }
    image::load_from_memory(&output.stdout)
        .map(|i| i.to_rgb8())
        .map_err(|e| Error::Invalid(format!("the frame at {seconds} s: {e}")))
}

/// Pearson correlation of two images' grey levels after both are shrunk to 32 × 18:
/// near 1 for the same picture (even re-encoded, slightly zoomed), near 0 for others.
pub fn likeness(a: &RgbImage, b: &RgbImage) -> f64 {
    let (x, y) = (thumb(a), thumb(b));
    let n = x.len() as f64;
    let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (p, q) in x.iter().zip(&y) {
        sxy += (p - mx) * (q - my);
        sxx += (p - mx) * (p - mx);
        syy += (q - my) * (q - my);
    }
    if sxx == 0.0 || syy == 0.0 {
        return 0.0;
    }
    sxy / (sxx * syy).sqrt()
}

fn thumb(image: &RgbImage) -> Vec<f64> {
    let small = image::imageops::resize(image, 32, 18, image::imageops::FilterType::Triangle);
    small
        .pixels()
        .map(|p| 0.299 * f64::from(p.0[0]) + 0.587 * f64::from(p.0[1]) + 0.114 * f64::from(p.0[2]))
        .collect()
}
