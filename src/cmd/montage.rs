//! `album montage`: a folder of photos (or a list of files) made into an MP4 without the
//! service, by the same renderer the service uses (`album_montage::render`). Photos are
//! turned upright by their EXIF orientation, put in the order they were taken (EXIF
//! date, else file name), and each pan ends on the photo's faces when the face models
//! are there (data/weights, from scripts/setup.sh). With `--auto` the photos are chosen
//! as a "memories" montage would choose them (`album_montage::select`): the folder is
//! cut into events by time and place, the largest event is taken, near-duplicates are
//! dropped (the crawler's pHash + thumbnail test) and the photos are spread over the
//! event, as many as `--length` holds; `--dry-run` prints the events and the choice.

use std::path::{Path, PathBuf};

use album_dataset::gallery::listing::is_photo_path as is_photo;
use album_dataset::phash::{
    NEAR_DUPLICATE_MAX_DISTANCE, NEAR_DUPLICATE_MIN_CORRELATION, Thumbnail, distance, fingerprint,
    thumbnail_correlation,
};
use album_montage::frame::PixelBox;
use album_montage::select::{
    Candidate, Length, best_event, choose, date_range, events, seconds_of,
};
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
    /// Choose the photos: the largest event (by time and place), near-duplicates
    /// dropped, spread over the event, as many as --length holds.
    #[arg(long)]
    auto: bool,
    /// With --auto: about 30 s, 1 min or 2 min.
    #[arg(long, value_enum, default_value = "short")]
    length: LengthArg,
    /// Print the events and the photos chosen, and render nothing.
    #[arg(long)]
    dry_run: bool,
    #[command(flatten)]
    faces: ModelArgs,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum LengthArg {
    Short,
    Medium,
    Long,
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
    taken_at: Option<String>,
    gps: Option<(f64, f64)>,
    image: image::DynamicImage,
}

/// What the montage knows of a photo once it has looked at it (the pixels are read
/// again for the photos chosen).
struct LookedAt {
    path: PathBuf,
    taken_at: Option<String>,
    gps: Option<(f64, f64)>,
    faces: Vec<PixelBox>,
    hash: u64,
    thumbnail: Thumbnail,
}

fn look_at_all(
    files: &[PathBuf],
    mut pipeline: Option<&mut album_faces::pipeline::FacePipeline>,
) -> anyhow::Result<Vec<LookedAt>> {
    let bar = album_dataset::progress::bar(files.len() as u64, "photos");
    bar.set_message("reading");
    let mut looked_at = Vec::with_capacity(files.len());
    for path in files {
        let photo = load(path)?;
        let faces = match pipeline.as_deref_mut() {
            Some(pipeline) => face_boxes(pipeline, path, &photo.image),
            None => Vec::new(),
        };
        let (hash, thumbnail) = fingerprint(&photo.image);
        looked_at.push(LookedAt {
            path: path.clone(),
            taken_at: photo.taken_at,
            gps: photo.gps,
            faces,
            hash,
            thumbnail,
        });
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(looked_at)
}

/// The "memories" choice, printed: the events found and the photos picked.
fn choose_automatically(photos: &[LookedAt], args: &MontageArgs) -> Vec<usize> {
    let candidates: Vec<Candidate> = photos
        .iter()
        .map(|p| Candidate {
            taken_at: p.taken_at.as_deref().and_then(seconds_of),
            place: p.gps,
            faces: p.faces.len(),
            named_faces: 0, // outside the service no one has named anybody
        })
        .collect();
    let found = events(&candidates);
    println!("{} events in {} photos:", found.len(), photos.len());
    for (n, event) in found.iter().enumerate() {
        let first = photos[event.photos[0]].taken_at.as_deref().unwrap_or("?");
        let last = photos[*event.photos.last().unwrap_or(&0)]
            .taken_at
            .as_deref()
            .unwrap_or("?");
        println!(
            "  event {}: {first} – {last}, {} photos",
            n + 1,
            event.photos.len()
        );
    }
    let Some(event) = best_event(&found) else {
        return Vec::new();
    };
    let length = match args.length {
        LengthArg::Short => Length::Short,
        LengthArg::Medium => Length::Medium,
        LengthArg::Long => Length::Long,
    };
    let count = length.photos(
        args.seconds_per_photo,
        MontageSpec::new("", Vec::new()).title_seconds,
    );
    let same = |a: usize, b: usize| {
        distance(photos[a].hash, photos[b].hash) <= NEAR_DUPLICATE_MAX_DISTANCE
            && thumbnail_correlation(&photos[a].thumbnail, &photos[b].thumbnail)
                >= NEAR_DUPLICATE_MIN_CORRELATION
    };
    let chosen = choose(&candidates, &event.photos, count, &same);
    println!(
        "chosen from the largest event ({} photos, at most {count} for a {:.0} s montage):",
        event.photos.len(),
        length.seconds()
    );
    for &i in &chosen {
        println!(
            "  {}  {}  {} face(s)",
            photos[i].taken_at.as_deref().unwrap_or("?"),
            photos[i].path.display(),
            photos[i].faces.len()
        );
    }
    chosen
}

pub fn run(args: MontageArgs) -> anyhow::Result<()> {
    let files = photo_files(&args.photos)?;
    if files.is_empty() {
        bail!(album_dataset::Error::InvalidArgument(
            "no photos found in --photos".into()
        ));
    }
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
    let looked_at = look_at_all(&files, pipeline.as_mut())?;
    let order: Vec<usize> = if args.auto {
        choose_automatically(&looked_at, &args)
    } else {
        // in the order they were taken; photos without a date after, by name
        let mut all: Vec<usize> = (0..looked_at.len()).collect();
        all.sort_by(|&a, &b| {
            let key = |i: usize| {
                (
                    looked_at[i].taken_at.is_none(),
                    looked_at[i].taken_at.clone(),
                    &looked_at[i].path,
                )
            };
            key(a).cmp(&key(b))
        });
        all
    };
    if args.dry_run {
        return Ok(());
    }
    if order.is_empty() {
        bail!(album_dataset::Error::InvalidArgument(
            "--auto found no event: the photos carry no EXIF date".into()
        ));
    }
    let chosen: Vec<&LookedAt> = order.iter().map(|&i| &looked_at[i]).collect();
    let subtitle = date_range_of(&chosen);
    let title = args
        .title
        .clone()
        .unwrap_or_else(|| default_title(&args.photos));
    let mut photos = Vec::with_capacity(chosen.len());
    for photo in &chosen {
        photos.push(MontagePhoto {
            image: load(&photo.path)?.image.into(),
            faces: photo.faces.clone(),
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

fn load(path: &Path) -> anyhow::Result<Loaded> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let meta = read_meta(&bytes);
    let image = image::ImageReader::new(std::io::Cursor::new(&bytes))
        .with_guessed_format()
        .context("reading the photo's header")
        .and_then(|r| r.decode().context("decoding"))
        .map_err(|e| album_dataset::Error::InvalidArgument(format!("{}: {e:#}", path.display())))?;
    Ok(Loaded {
        taken_at: meta.taken_at,
        gps: meta.gps,
        image: apply_orientation(image, meta.orientation),
    })
}

/// Every face box the pipeline finds (none if it cannot look at the photo).
fn face_boxes(
    pipeline: &mut album_faces::pipeline::FacePipeline,
    path: &Path,
    image: &image::DynamicImage,
) -> Vec<PixelBox> {
    match pipeline.faces_in(&image.to_rgb8()) {
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
            eprintln!("{}: no faces looked for ({e})", path.display());
            Vec::new()
        }
    }
}

/// "3 Jun 2024 – 5 Jun 2024" from the photos' EXIF dates ("" when none has one).
fn date_range_of(photos: &[&LookedAt]) -> String {
    date_range(photos.iter().filter_map(|p| p.taken_at.as_deref()))
}

fn default_title(inputs: &[PathBuf]) -> String {
    inputs
        .iter()
        .find(|p| p.is_dir())
        .and_then(|p| p.canonicalize().ok())
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "Montage".into())
}
