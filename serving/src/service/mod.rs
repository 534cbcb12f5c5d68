//! The service layer: the rules of each layered feature (who may do what, what a valid
//! name is, what must hold before a change), over the repositories. Services take plain
//! values and give plain values or [`crate::error::Error`]; they know nothing of HTTP
//! (no axum types) and import nothing from [`crate::api`]. Each is a small value the
//! handlers receive as their state (`axum::extract::FromRef`, in [`crate::app`]).

pub mod accounts;
pub mod albums;
pub(crate) mod face_index;
pub mod gifs;
pub mod jobs;
pub mod montages;
pub mod people;
pub mod photos;
pub mod places;
pub mod smart;
