//! The HTTP layer of the layered features: thin handlers that turn a request into a
//! service call and its answer into JSON. No SQL and no rules here; the routes are
//! listed in [`crate::app::routes`].

pub mod albums;
pub mod auth;
pub mod gifs;
pub mod jobs;
pub mod montages;
pub mod people;
pub mod photos;
pub mod places;
pub mod smart;
