//! Faces for smart-album's people albums.
//!
//! The paper groups the faces in an album into people: detect each face, describe it,
//! compare it with every person's representative face, and join the best match when the
//! similarity reaches 72 %, else start a new person. This crate is that pipeline on real
//! pretrained weights, run by burn:
//!
//! ```text
//! photo ─ detect (RetinaFace-MobileNet0.25) ─ 5 landmarks ─ align (similarity transform,
//!       150×150 chip) ─ embed (dlib ResNet v1, 128-D) ─ cluster into people
//! ```
//!
//! | module | what |
//! |---|---|
//! | [`weights`] | where the two model files live, SHA-256 pinned |
//! | [`onnx`] | just enough of the ONNX protobuf to read the detector's weights |
//! | [`retinaface`] | the detector network in burn |
//! | [`detect`] | priors, decoding, NMS: photo → [`detect::Detection`]s |
//! | [`align`] | Umeyama similarity from 5 landmarks to the chip template |
//! | [`dlib_dat`] | reader for dlib's `.dat` serialization |
//! | [`embedder`] | the dlib ResNet in burn: chip → 128-D descriptor |
//! | [`cluster`] | the paper's 72 % rule and a stronger density-based method |
//! | [`index`] | exact radius search over descriptors in leader cells: about one cell per person per query |
//! | [`hnsw`] | HNSW graph search over descriptors: about log(n) per query |
//! | [`synthetic`] | clustered synthetic descriptors, for timing at 100,000 faces |
//! | [`pipeline`] | photo bytes → faces with boxes, landmarks and descriptors |
//!
//! `faces/NOTES.md` records how both model files were checked and where the issue's
//! description of them was loose.

pub mod align;
pub mod cluster;
pub mod detect;
pub mod dlib_dat;
pub mod embedder;
pub mod error;
pub mod hnsw;
pub mod index;
pub mod onnx;
pub mod pipeline;
pub mod retinaface;
pub mod synthetic;
pub mod weights;

pub use error::{Error, Result};
