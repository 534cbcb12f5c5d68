//! The one ffmpeg filter graph a montage is rendered with, written from Rust.
//!
//! ```text
//! color + drawtext (title, dates)                              → [t]
//! [k:v] zoompan (the Ken Burns pan of photo k), fps, format    → [p k]
//! [t][p0] xfade → [x1]; [x1][p1] xfade → [x2]; ...             → [v]
//! [m:a] atrim to the video, afade out, (music only)            → [a]
//! ```
//!
//! Every photo input is one still frame; `zoompan` makes its clip of `clip_frames`
//! frames. Clips overlap their neighbours by the crossfade, so photo k is on screen
//! alone from `title + k × per_photo` to `title + (k + 1) × per_photo − crossfade`
//! ([`Timeline::solo`]), and the whole video lasts `title + n × per_photo`.
//! Text reaches `drawtext` through files (`textfile=`), so a title needs no escaping.

use std::fmt::Write as _;
use std::path::Path;

use crate::kenburns::Pan;

/// When everything happens, in seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timeline {
    pub title: f64,
    pub per_photo: f64,
    pub crossfade: f64,
    pub photos: usize,
    pub fps: u32,
}

impl Timeline {
    pub fn duration(&self) -> f64 {
        self.title + self.photos as f64 * self.per_photo
    }

    /// Frames in each photo's clip (its time alone plus the crossfade into it).
    pub fn clip_frames(&self) -> u32 {
        ((self.per_photo + self.crossfade) * f64::from(self.fps)).round() as u32
    }

    /// When photo `k` is on screen alone: (start, end).
    pub fn solo(&self, k: usize) -> (f64, f64) {
        let start = self.title + k as f64 * self.per_photo;
        (start, start + self.per_photo - self.crossfade)
    }

    /// Where the crossfade into photo `k` starts.
    fn fade_into(&self, k: usize) -> f64 {
        self.title + k as f64 * self.per_photo - self.crossfade
    }
}

/// What the graph draws, beyond the timeline.
pub struct GraphInputs<'a> {
    pub width: u32,
    pub height: u32,
    pub timeline: Timeline,
    pub pans: &'a [Pan],
    /// Files holding the title's two lines (read by drawtext).
    pub title_file: &'a Path,
    pub subtitle_file: &'a Path,
    pub font: &'a Path,
    /// The music's input index, when there is music.
    pub music_input: Option<usize>,
    /// Seconds of fade-out at the end of the music.
    pub music_fade: f64,
}

/// The graph's text (for `-filter_complex_script`); the video comes out as `[v]` and
/// the music, if any, as `[a]`.
pub fn filter_graph(inputs: &GraphInputs<'_>) -> String {
    let GraphInputs {
        width: w,
        height: h,
        timeline: t,
        ..
    } = *inputs;
    let mut graph = String::new();
    let font = filter_path(inputs.font);
    let _ = writeln!(
        graph,
        "color=c=0x15161a:s={w}x{h}:r={fps}:d={title:.3},\
         drawtext=fontfile='{font}':textfile='{tf}':expansion=none:fontcolor=white:\
         fontsize={big}:x=(w-text_w)/2:y=h/2-text_h-{gap},\
         drawtext=fontfile='{font}':textfile='{sf}':expansion=none:fontcolor=0xc8c8c8:\
         fontsize={small}:x=(w-text_w)/2:y=h/2+{gap},\
         format=yuv420p,setsar=1,settb=AVTB[t];",
        fps = t.fps,
        title = t.title,
        tf = filter_path(inputs.title_file),
        sf = filter_path(inputs.subtitle_file),
        big = h / 12,
        small = h / 24,
        gap = h / 40,
    );
    let frames = t.clip_frames();
    let last = f64::from(frames.saturating_sub(1).max(1));
    for (k, pan) in inputs.pans.iter().enumerate() {
        let (s0, s1) = (pan.start.size, pan.end.size);
        let (x0, x1) = (pan.start.cx, pan.end.cx);
        let (y0, y1) = (pan.start.cy, pan.end.cy);
        // zoom = 1 / size; the window's top-left = centre − size / 2, in input pixels
        let size = format!("({s0:.6}+({d:.6})*on/{last})", d = s1 - s0);
        let _ = writeln!(
            graph,
            "[{k}:v]zoompan=z='1/{size}':\
             x='iw*(({x0:.6}+({dx:.6})*on/{last})-{size}/2)':\
             y='ih*(({y0:.6}+({dy:.6})*on/{last})-{size}/2)':\
             d={frames}:s={w}x{h}:fps={fps},format=yuv420p,setsar=1,settb=AVTB[p{k}];",
            dx = x1 - x0,
            dy = y1 - y0,
            fps = t.fps,
        );
    }
    let mut previous = "t".to_owned();
    for k in 0..inputs.pans.len() {
        let next = if k + 1 == inputs.pans.len() {
            "v".to_owned()
        } else {
            format!("x{k}")
        };
        let _ = writeln!(
            graph,
            "[{previous}][p{k}]xfade=transition=fade:duration={d:.3}:offset={o:.3}[{next}];",
            d = t.crossfade,
            o = t.fade_into(k),
        );
        previous = next;
    }
    if let Some(m) = inputs.music_input {
        let total = t.duration();
        let fade = inputs.music_fade.min(total);
        let _ = writeln!(
            graph,
            "[{m}:a]atrim=0:{total:.3},asetpts=N/SR/TB,afade=t=out:st={st:.3}:d={fade:.3}[a];",
            st = total - fade,
        );
    }
    // the last statement takes no separator
    let trimmed = graph.trim_end().trim_end_matches(';').to_owned();
    trimmed + "\n"
}

/// A path as a filter option value inside single quotes: `'` and `\` escaped.
fn filter_path(path: &Path) -> String {
    path.to_string_lossy()
        .replace('\\', "\\\\")
        .replace('\'', "'\\''")
        .replace(':', "\\:")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kenburns::Pan;

    fn timeline() -> Timeline {
        Timeline {
            title: 2.0,
            per_photo: 3.0,
            crossfade: 0.5,
            photos: 3,
            fps: 30,
        }
    }

    #[test]
    fn the_timeline_adds_up() {
        let t = timeline();
        assert_eq!(t.duration(), 11.0);
        assert_eq!(t.clip_frames(), 105);
        assert_eq!(t.solo(0), (2.0, 4.5));
        assert_eq!(t.solo(2), (8.0, 10.5));
        assert_eq!(t.fade_into(1), 4.5);
    }

    #[test]
    fn the_graph_chains_title_photos_and_crossfades_into_v() {
        let pans = vec![Pan::towards(None); 3];
        let graph = filter_graph(&GraphInputs {
            width: 1280,
            height: 720,
            timeline: timeline(),
            pans: &pans,
            title_file: Path::new("/tmp/m/title.txt"),
            subtitle_file: Path::new("/tmp/m/dates.txt"),
            font: Path::new("/usr/share/fonts/DejaVuSans.ttf"),
            music_input: Some(3),
            music_fade: 2.0,
        });
        assert!(graph.contains("[t][p0]xfade=transition=fade:duration=0.500:offset=1.500[x0]"));
        assert!(graph.contains("[x0][p1]xfade=transition=fade:duration=0.500:offset=4.500[x1]"));
        assert!(graph.contains("[x1][p2]xfade=transition=fade:duration=0.500:offset=7.500[v]"));
        assert!(
            graph.contains("[3:a]atrim=0:11.000,asetpts=N/SR/TB,afade=t=out:st=9.000:d=2.000[a]")
        );
        assert!(graph.contains("d=105:s=1280x720:fps=30"));
        assert!(!graph.trim_end().ends_with(';'));
    }

    #[test]
    fn paths_are_escaped_for_the_filter_syntax() {
        assert_eq!(filter_path(Path::new("/a:b/it's")), "/a\\:b/it'\\''s");
    }
}
