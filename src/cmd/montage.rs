//! `album montage`: a folder of photos (or a list of files) made into an MP4 without the
//! service, by the same renderer the service uses (`album_montage::render`). Photos are
//! turned upright by their EXIF orientation, put in the order they were taken (EXIF
//! date, else file name), and each pan ends on the photo's faces when the face models
//! are there (data/weights, from scripts/setup.sh).

use std::path::{Path, PathBuf};

use album_montage::frame::PixelBox;
use album_montage::{MontagePhoto, MontageSpec, Orientation, Resolution, render};
use album_serving::media::{apply_orientation, read_meta};
use anyhow::{Context, bail};

use super::faces::ModelArgs;

/// Make a video montage (title card, slow pans to the faces, crossfades, music) of photos.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  album montage --photos ~/Pictures/2024-06-paris --title \"Paris\" --out paris.mp4
  album montage --photos a.jpg b.jpg c.jpg --out three.mp4 --orientation portrait
  album montage --photos trip/ --out trip.mp4 --music song.mp3 --resolution 1080p

Needs ffmpeg (scripts/setup.sh installs Debian's).")]
pub struct MontageArgs {
    /// Photos, or folders of photos (JPEG, PNG, GIF, WebP, BMP, TIFF).
    #[arg(long, required = true, num_args = 1..)]
    photos: Vec<PathBuf>,
    /// The video to write (MP4: H.264, plus AAC with --music).
    #[arg(long, default_value = "montage.mp4")]
    out: PathBuf,
    /// The title card's first line [default: the first folder's name].
    #[arg(long)]
    title: Option<String>,
    /// Seconds each photo is on screen alone.
    #[arg(long, default_value_t = 3.0)]
    seconds_per_photo: f64,
    /// Seconds of crossfade between photos.
    #[arg(long, default_value_t = 0.6)]
    crossfade: f64,
    #[arg(long, value_enum, default_value = "landscape")]
    orientation: OrientationArg,
    #[arg(long, value_enum, default_value = "720p")]
    resolution: ResolutionArg,
    /// An audio file to play under the photos (looped if short, faded out at the end).
    #[arg(long)]
    music: Option<PathBuf>,
    /// Do not look for faces: every pan goes to the photo's centre.
    #[arg(long)]
    no_faces: bool,
    #[command(flatten)]
    faces: ModelArgs,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum OrientationArg {
    Landscape,
    Portrait,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum ResolutionArg {
    #[value(name = "720p")]
    P720,
    #[value(name = "1080p")]
    P1080,
}

/// A photo read from disk, upright, with when it was taken.
struct Loaded {
    path: PathBuf,
    taken_at: Option<String>,
    image: image::DynamicImage,
}

pub fn run(args: MontageArgs) -> anyhow::Result<()> {
    let files = photo_files(&args.photos)?;
    if files.is_empty() {
        bail!(album_dataset::Error::InvalidArgument(
            "no photos found in --photos".into()
        ));
    }
    let bar = album_dataset::progress::bar(files.len() as u64, "photos");
    bar.set_message("reading");
    let mut loaded = Vec::with_capacity(files.len());
    for path in files {
        loaded.push(load(&path)?);
        bar.inc(1);
    }
    bar.finish_and_clear();
    // in the order they were taken; photos without a date after, by name
    loaded.sort_by(|a, b| {
        (a.taken_at.is_none(), &a.taken_at, &a.path).cmp(&(
            b.taken_at.is_none(),
            &b.taken_at,
            &b.path,
        ))
    });
    let mut pipeline = if args.no_faces {
        None
    } else {
        match args.faces.load() {
            Ok(pipeline) => Some(pipeline),
            Err(e) => {
                eprintln!("album montage: no face models ({e:#}); pans go to each photo's centre");
                None
            }
        }
    };
    let subtitle = date_range(&loaded);
    let title = args
        .title
        .clone()
        .unwrap_or_else(|| default_title(&args.photos));
    let mut photos = Vec::with_capacity(loaded.len());
    for photo in loaded {
        let faces = match &mut pipeline {
            Some(pipeline) => face_boxes(pipeline, &photo),
            None => Vec::new(),
        };
        photos.push(MontagePhoto {
            image: photo.image,
            faces,
        });
    }
    let count = photos.len();
    let mut spec = MontageSpec::new(title, photos);
    spec.subtitle = subtitle;
    spec.seconds_per_photo = args.seconds_per_photo;
    spec.crossfade = args.crossfade;
    spec.orientation = match args.orientation {
        OrientationArg::Landscape => Orientation::Landscape,
        OrientationArg::Portrait => Orientation::Portrait,
    };
    spec.resolution = match args.resolution {
        ResolutionArg::P720 => Resolution::P720,
        ResolutionArg::P1080 => Resolution::P1080,
    };
    spec.music = args.music.clone();
    spec.validate()
        .map_err(|e| album_dataset::Error::InvalidArgument(e.to_string()))?;
    let bar = album_dataset::progress::bar(1000, "‰");
    bar.set_message("rendering");
    let rendered = render(&spec, &args.out, &mut |done| {
        bar.set_position((done * 1000.0) as u64)
    })
    .with_context(|| format!("rendering {}", args.out.display()))?;
    bar.finish_and_clear();
    let seconds = rendered.timeline.duration();
    println!(
        "{}: {count} photos, {seconds:.1} s at {}×{}, rendered in {:.1} s ({:.2} s of video per second)",
        rendered.path.display(),
        rendered.width,
        rendered.height,
        rendered.seconds,
        seconds / rendered.seconds.max(1e-9)
    );
    Ok(())
}

/// The photo files named, folders listed (not recursively), in name order.
fn photo_files(inputs: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for input in inputs {
        if input.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(input)
                .with_context(|| format!("listing {}", input.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file() && is_photo(p))
                .collect();
            found.sort();
            files.extend(found);
        } else if input.is_file() {
            files.push(input.clone());
        } else {
            bail!(album_dataset::Error::InvalidArgument(format!(
                "{} is neither a photo nor a folder",
                input.display()
            )));
        }
    }
    Ok(files)
}

fn is_photo(path: &Path) -> bool {
    let extension = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase());
    matches!(
        extension.as_deref(),
        Some("jpg" | "jpeg" | "png" | "gif" | "webp" | "bmp" | "tif" | "tiff")
    )
}

fn load(path: &Path) -> anyhow::Result<Loaded> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let meta = read_meta(&bytes);
    let image = image::ImageReader::new(std::io::Cursor::new(&bytes))
        .with_guessed_format()
        .context("reading the photo's header")
        .and_then(|r| r.decode().context("decoding"))
        .map_err(|e| album_dataset::Error::InvalidArgument(format!("{}: {e:#}", path.display())))?;
    Ok(Loaded {
        path: path.to_owned(),
        taken_at: meta.taken_at,
        image: apply_orientation(image, meta.orientation),
    })
}

/// Every face box the pipeline finds (none if it cannot look at the photo).
fn face_boxes(pipeline: &mut album_faces::pipeline::FacePipeline, photo: &Loaded) -> Vec<PixelBox> {
    match pipeline.faces_in(&photo.image.to_rgb8()) {
        Ok(faces) => faces
            .iter()
            .map(|f| {
                let [x1, y1, x2, y2] = f.detection.bbox.map(f64::from);
                PixelBox {
                    left: x1,
                    top: y1,
                    width: x2 - x1,
                    height: y2 - y1,
                }
            })
            .collect(),
        Err(e) => {
            eprintln!("{}: no faces looked for ({e})", photo.path.display());
            Vec::new()
        }
    }
}

/// "3 Jun 2024 – 5 Jun 2024" from the photos' EXIF dates ("" when none has one).
fn date_range(photos: &[Loaded]) -> String {
    let days: Vec<chrono::NaiveDate> = photos
        .iter()
        .filter_map(|p| p.taken_at.as_deref())
        .filter_map(|t| chrono::NaiveDate::parse_from_str(t.get(..10)?, "%Y-%m-%d").ok())
        .collect();
    let (Some(first), Some(last)) = (days.iter().min(), days.iter().max()) else {
        return String::new();
    };
    let day = |d: &chrono::NaiveDate| d.format("%-d %b %Y").to_string();
    if first == last {
        day(first)
    } else {
        format!("{} – {}", day(first), day(last))
    }
}

fn default_title(inputs: &[PathBuf]) -> String {
    inputs
        .iter()
        .find(|p| p.is_dir())
        .and_then(|p| p.canonicalize().ok())
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "Montage".into())
}
