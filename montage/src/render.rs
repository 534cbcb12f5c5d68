//! A montage rendered: photos prepared in Rust, then one ffmpeg run with one filter
//! graph ([`crate::graph`]) that encodes H.264 (and AAC when there is music) into an MP4
//! with its index at the front (`+faststart`), so a browser starts playing before the
//! whole file has arrived. The video is written as `<out>.part` and renamed into place
//! when ffmpeg has finished: a crash or a failed encode leaves no half video behind.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use image::DynamicImage;
use image::codecs::jpeg::JpegEncoder;

use crate::frame::{PixelBox, cover_crop};
use crate::graph::{GraphInputs, Timeline, filter_graph};
use crate::kenburns::Pan;
use crate::{Error, Result};

/// The most photos one montage takes.
pub const MAX_PHOTOS: usize = 300;
/// The longest montage, in seconds.
pub const MAX_SECONDS: f64 = 600.0;

/// Where the title's text is drawn from (Debian's fonts-dejavu-core, which
/// scripts/setup.sh installs).
const FONTS: [&str; 2] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Orientation {
    #[default]
    Landscape,
    Portrait,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum Resolution {
    #[default]
    #[serde(rename = "720p")]
    P720,
    #[serde(rename = "1080p")]
    P1080,
}

impl Resolution {
    /// The frame's width and height in this orientation.
    pub fn frame(self, orientation: Orientation) -> (u32, u32) {
        let (long, short) = match self {
            Resolution::P720 => (1280, 720),
            Resolution::P1080 => (1920, 1080),
        };
        match orientation {
            Orientation::Landscape => (long, short),
            Orientation::Portrait => (short, long),
        }
    }
}

/// One photo of a montage: upright (EXIF orientation already applied), any size, with
/// the boxes of its faces in its own pixels (none: the pan goes to the centre).
pub struct MontagePhoto {
    pub image: Pixels,
    pub faces: Vec<PixelBox>,
}

/// A deferred photo's decoder: the upright pixels, or why not.
pub type LoadPixels = Box<dyn Fn() -> std::result::Result<DynamicImage, String> + Send + Sync>;

/// A photo's pixels: already decoded, or decoded when its turn comes and dropped right
/// after it has been prepared, so a 300-photo montage in the service never holds every
/// photo in memory at once.
pub enum Pixels {
    Decoded(DynamicImage),
    /// `size` is the upright size the photo's face boxes are given in; the boxes are
    /// scaled to whatever `load` returns (a smaller preview, say).
    Deferred {
        size: (u32, u32),
        load: LoadPixels,
    },
}

impl From<DynamicImage> for Pixels {
    fn from(image: DynamicImage) -> Self {
        Pixels::Decoded(image)
    }
}

impl MontagePhoto {
    /// The pixels to prepare and the face boxes in those pixels.
    fn pixels(&self, index: usize) -> Result<(std::borrow::Cow<'_, DynamicImage>, Vec<PixelBox>)> {
        match &self.image {
            Pixels::Decoded(image) => Ok((std::borrow::Cow::Borrowed(image), self.faces.clone())),
            Pixels::Deferred { size, load } => {
                let image = load().map_err(|reason| Error::Photo { index, reason })?;
                let sx = f64::from(image.width()) / f64::from(size.0.max(1));
                let sy = f64::from(image.height()) / f64::from(size.1.max(1));
                let faces = self
                    .faces
                    .iter()
                    .map(|b| PixelBox {
                        left: b.left * sx,
                        top: b.top * sy,
                        width: b.width * sx,
                        height: b.height * sy,
                    })
                    .collect();
                Ok((std::borrow::Cow::Owned(image), faces))
            }
        }
    }
}

/// What to render.
pub struct MontageSpec {
    /// The title card's first line (e.g. the album's or event's name)...
    pub title: String,
    /// ...and its second (the date range).
    pub subtitle: String,
    pub photos: Vec<MontagePhoto>,
    /// How long each photo is on screen alone.
    pub seconds_per_photo: f64,
    /// The crossfade between one photo and the next.
    pub crossfade: f64,
    pub title_seconds: f64,
    pub orientation: Orientation,
    pub resolution: Resolution,
    pub fps: u32,
    /// An audio file (anything ffmpeg reads), looped if short, faded out at the end.
    pub music: Option<PathBuf>,
}

impl MontageSpec {
    /// A 720p landscape montage: 3 s a photo, 0.6 s crossfades, a 2.5 s title card.
    pub fn new(title: impl Into<String>, photos: Vec<MontagePhoto>) -> Self {
        MontageSpec {
            title: title.into(),
            subtitle: String::new(),
            photos,
            seconds_per_photo: 3.0,
            crossfade: 0.6,
            title_seconds: 2.5,
            orientation: Orientation::Landscape,
            resolution: Resolution::P720,
            fps: 30,
            music: None,
        }
    }

    pub fn timeline(&self) -> Timeline {
        self.timeline_for(self.photos.len())
    }

    /// The timeline these settings give `photos` photos.
    pub fn timeline_for(&self, photos: usize) -> Timeline {
        Timeline {
            title: self.title_seconds,
            per_photo: self.seconds_per_photo,
            crossfade: self.crossfade,
            photos,
            fps: self.fps,
        }
    }

    /// Refuses what cannot make a sensible video, with the reason.
    pub fn validate(&self) -> Result<()> {
        self.validate_for(self.photos.len())
    }

    /// [`MontageSpec::validate`] for `n` photos, before any is loaded (the service
    /// checks a request with it before queueing the render).
    pub fn validate_for(&self, n: usize) -> Result<()> {
        let invalid = |m: String| Err(Error::Invalid(m));
        if n == 0 {
            return invalid("a montage needs at least one photo".into());
        }
        if n > MAX_PHOTOS {
            return invalid(format!("{n} photos: a montage takes at most {MAX_PHOTOS}"));
        }
        if !(0.5..=30.0).contains(&self.seconds_per_photo) {
            return invalid(format!(
                "{} s a photo: choose between 0.5 and 30",
                self.seconds_per_photo
            ));
        }
        if !(0.0..=self.seconds_per_photo / 2.0).contains(&self.crossfade) || self.crossfade < 0.04
        {
            return invalid(format!(
                "a crossfade of {} s: choose between 0.04 s and half a photo's time",
                self.crossfade
            ));
        }
        if !(self.crossfade..=10.0).contains(&self.title_seconds) {
            return invalid(format!(
                "a title card of {} s: choose between the crossfade and 10 s",
                self.title_seconds
            ));
        }
        if !(10..=60).contains(&self.fps) {
            return invalid(format!("{} frames per second: choose 10 to 60", self.fps));
        }
        let seconds = self.timeline_for(n).duration();
        if seconds > MAX_SECONDS {
            return invalid(format!(
                "the montage would last {seconds:.0} s; the limit is {MAX_SECONDS:.0} s"
            ));
        }
        if let Some(music) = &self.music
            && !music.is_file()
        {
            return invalid(format!("the music {} is not a file", music.display()));
        }
        Ok(())
    }
}

/// A finished video.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub path: PathBuf,
    pub timeline: Timeline,
    pub width: u32,
    pub height: u32,
    /// Wall-clock seconds the render took (preparing the photos and encoding).
    pub seconds: f64,
}

/// Renders `spec` into `out` (an `.mp4`), calling `progress` with the share done.
pub fn render(spec: &MontageSpec, out: &Path, progress: &mut dyn FnMut(f64)) -> Result<Rendered> {
    let started = Instant::now();
    spec.validate()?;
    check_tool("ffmpeg")?;
    let font = FONTS
        .iter()
        .map(Path::new)
        .find(|p| p.is_file())
        .ok_or_else(|| {
            Error::Invalid(
                "the DejaVu Sans font is missing: install it with scripts/setup.sh \
                 (fonts-dejavu-core)"
                    .into(),
            )
        })?;
    let (width, height) = spec.resolution.frame(spec.orientation);
    let work = tempfile::Builder::new()
        .prefix("album-montage-")
        .tempdir()
        .map_err(|e| Error::io("create a folder in", std::env::temp_dir(), e))?;
    let (inputs, pans) = prepare_photos(spec, work.path(), width, height, progress)?;
    let title_file = work.path().join("title.txt");
    let subtitle_file = work.path().join("subtitle.txt");
    write(&title_file, spec.title.trim())?;
    write(&subtitle_file, spec.subtitle.trim())?;
    let timeline = spec.timeline();
    let graph = filter_graph(&GraphInputs {
        width,
        height,
        timeline,
        pans: &pans,
        title_file: &title_file,
        subtitle_file: &subtitle_file,
        font,
        music_input: spec.music.as_ref().map(|_| inputs.len()),
        music_fade: 2.0,
    });
    let graph_file = work.path().join("graph.txt");
    write(&graph_file, &graph)?;
    let part = part_path(out);
    let log = work.path().join("ffmpeg.log");
    let result = encode(spec, &inputs, &graph_file, &part, &log, timeline, progress);
    if let Err(e) = result {
        let _ = std::fs::remove_file(&part);
        return Err(e);
    }
    std::fs::rename(&part, out).map_err(|e| Error::io("rename into", out, e))?;
    progress(1.0);
    Ok(Rendered {
        path: out.to_owned(),
        timeline,
        width,
        height,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// `<out>.part`: where the video is written until it is whole.
pub fn part_path(out: &Path) -> PathBuf {
    let mut name = out.file_name().unwrap_or_default().to_os_string();
    name.push(".part");
    out.with_file_name(name)
}

/// Each photo cropped and resized to 1.5 × the frame (room for the zoom), as a JPEG
/// for the encoder, with its pan.
fn prepare_photos(
    spec: &MontageSpec,
    dir: &Path,
    width: u32,
    height: u32,
    progress: &mut dyn FnMut(f64),
) -> Result<(Vec<PathBuf>, Vec<Pan>)> {
    let (w, h) = (width * 3 / 2, height * 3 / 2);
    let mut inputs = Vec::with_capacity(spec.photos.len());
    let mut pans = Vec::with_capacity(spec.photos.len());
    for (index, photo) in spec.photos.iter().enumerate() {
        let (image, faces) = photo.pixels(index)?;
        let faces = PixelBox::around(&faces);
        let prepared = cover_crop(&image, faces, w, h).map_err(|e| Error::Photo {
            index,
            reason: e.to_string(),
        })?;
        let path = dir.join(format!("photo-{index:04}.jpg"));
        let file = std::fs::File::create(&path).map_err(|e| Error::io("create", &path, e))?;
        JpegEncoder::new_with_quality(std::io::BufWriter::new(file), 92)
            .encode_image(&prepared.image)
            .map_err(|e| Error::Photo {
                index,
                reason: format!("writing it for the encoder: {e}"),
            })?;
        pans.push(Pan::towards(prepared.faces));
        inputs.push(path);
        // preparing is the first tenth of the work
        progress(0.1 * (index + 1) as f64 / spec.photos.len() as f64);
    }
    Ok((inputs, pans))
}

fn encode(
    spec: &MontageSpec,
    inputs: &[PathBuf],
    graph: &Path,
    part: &Path,
    log: &Path,
    timeline: Timeline,
    progress: &mut dyn FnMut(f64),
) -> Result<()> {
    let mut command = Command::new("ffmpeg");
    command.args(["-hide_banner", "-nostdin", "-y", "-loglevel", "error"]);
    command.args(["-progress", "pipe:1", "-nostats"]);
    for input in inputs {
        command.arg("-i").arg(input);
    }
    if let Some(music) = &spec.music {
        command.args(["-stream_loop", "-1", "-i"]).arg(music);
    }
    command.arg("-filter_complex_script").arg(graph);
    command.args(["-map", "[v]"]);
    if spec.music.is_some() {
        command.args(["-map", "[a]", "-c:a", "aac", "-b:a", "160k"]);
    }
    command.args(["-c:v", "libx264", "-preset", "veryfast", "-crf", "20"]);
    command.args(["-pix_fmt", "yuv420p", "-r", &spec.fps.to_string()]);
    command.args([
        "-movflags",
        "+faststart",
        "-t",
        &format!("{:.3}", timeline.duration()),
    ]);
    command.args(["-f", "mp4"]).arg(part);
    let log_file = std::fs::File::create(log).map_err(|e| Error::io("create", log, e))?;
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log_file)
        .spawn()
        .map_err(|source| Error::MissingTool {
            program: "ffmpeg",
            source,
        })?;
    let total_us = timeline.duration() * 1e6;
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout)
            .lines()
            .map_while(std::result::Result::ok)
        {
            if let Some(us) = line
                .strip_prefix("out_time_us=")
                .and_then(|v| v.parse::<f64>().ok())
            {
                progress(0.1 + 0.9 * (us / total_us).clamp(0.0, 1.0));
            }
        }
    }
    let status = child
        .wait()
        .map_err(|e| Error::io("wait for ffmpeg on", part, e))?;
    if status.success() {
        return Ok(());
    }
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let tail: Vec<&str> = text.lines().rev().take(12).collect();
    Err(Error::Encoder {
        status: status.to_string(),
        log: tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
    })
}

/// A clear error when `program` is not installed.
fn check_tool(program: &'static str) -> Result<()> {
    Command::new(program)
        .arg("-version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|_| ())
        .map_err(|source| Error::MissingTool { program, source })
}

fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).map_err(|e| Error::io("write", path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn photos(n: usize) -> Vec<MontagePhoto> {
        (0..n)
            .map(|_| MontagePhoto {
                image: DynamicImage::new_rgb8(4, 4).into(),
                faces: Vec::new(),
            })
            .collect()
    }

    /// The service gives face boxes in the original's pixels and decodes a smaller
    /// preview when the photo's turn comes: the boxes follow the pixels.
    #[test]
    fn a_deferred_photos_faces_are_scaled_to_the_pixels_it_loads() {
        let photo = MontagePhoto {
            image: Pixels::Deferred {
                size: (4000, 2000),
                load: Box::new(|| Ok(DynamicImage::new_rgb8(1000, 500))),
            },
            faces: vec![PixelBox {
                left: 2000.0,
                top: 400.0,
                width: 400.0,
                height: 600.0,
            }],
        };
        let (image, faces) = photo.pixels(0).unwrap();
        assert_eq!((image.width(), image.height()), (1000, 500));
        assert_eq!(
            faces,
            vec![PixelBox {
                left: 500.0,
                top: 100.0,
                width: 100.0,
                height: 150.0
            }]
        );
        let broken = MontagePhoto {
            image: Pixels::Deferred {
                size: (10, 10),
                load: Box::new(|| Err("the blob is gone".into())),
            },
            faces: Vec::new(),
        };
        let error = broken.pixels(7).map(|_| ()).unwrap_err().to_string();
        assert!(
            error.contains("photo 7") && error.contains("blob is gone"),
            "{error}"
        );
    }

    #[test]
    fn specs_out_of_range_are_refused_with_the_reason() {
        assert!(MontageSpec::new("t", photos(2)).validate().is_ok());
        let err = MontageSpec::new("t", Vec::new()).validate().unwrap_err();
        assert!(err.to_string().contains("at least one photo"), "{err}");
        let err = MontageSpec::new("t", photos(MAX_PHOTOS + 1))
            .validate()
            .unwrap_err();
        assert!(err.to_string().contains("at most"), "{err}");
        let mut long = MontageSpec::new("t", photos(250));
        long.seconds_per_photo = 10.0;
        long.crossfade = 1.0;
        assert!(long.validate().unwrap_err().to_string().contains("limit"));
        let mut no_fade = MontageSpec::new("t", photos(2));
        no_fade.crossfade = 0.0;
        assert!(no_fade.validate().is_err());
        let mut music = MontageSpec::new("t", photos(2));
        music.music = Some("/nowhere/song.mp3".into());
        assert!(
            music
                .validate()
                .unwrap_err()
                .to_string()
                .contains("not a file")
        );
    }

    #[test]
    fn frames_are_720p_or_1080p_either_way_up() {
        assert_eq!(Resolution::P720.frame(Orientation::Landscape), (1280, 720));
        assert_eq!(Resolution::P1080.frame(Orientation::Portrait), (1080, 1920));
    }

    #[test]
    fn the_part_file_sits_beside_the_video() {
        assert_eq!(
            part_path(Path::new("/a/b/trip.mp4")),
            Path::new("/a/b/trip.mp4.part")
        );
    }
}
