//! # album-montage
//!
//! The album's automatic video editing (the paper's "automatic video editing"; Google
//! Photos' highlight videos and Apple's Memories are what users compare it with): an
//! ordered list of photos becomes an MP4 that plays in a browser.
//!
//! ```text
//! photos (upright, any size) ─► frame::cover_crop: the frame's aspect, the crop keeping
//!                               the faces in view, resized once for the encoder
//!                           ─► kenburns::Pan: a slow zoom from the whole crop towards
//!                               the faces (or the centre), as two windows
//!                           ─► graph::FilterGraph: title card, one zoompan per photo,
//!                               crossfades, music faded out at the end (one ffmpeg
//!                               filter graph, written from Rust)
//!                           ─► render::render: Debian's ffmpeg as a child process,
//!                               H.264 + AAC, +faststart, written whole or not at all
//! ```
//!
//! [`select`] chooses the photos when the user names none: events by time and place,
//! near-duplicates dropped, faces of named people first, spread over the event.
//!
//! The service (`album-serving`) and `album montage` both call [`render::render`].

pub mod error;
pub mod frame;
pub mod graph;
pub mod kenburns;
pub mod probe;
pub mod render;
pub mod select;

pub use error::{Error, Result};
pub use render::{
    LoadPixels, MontagePhoto, MontageSpec, Orientation, Pixels, Rendered, Resolution, render,
};
