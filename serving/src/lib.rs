//! # album-serving
//!
//! The last stage of smart-album's data flow (dataset → training → eval → serving):
//! the album service (axum + SQLite) that classifies photos with the winning model and
//! groups faces into people. Empty until that work lands; see the README's roadmap.
