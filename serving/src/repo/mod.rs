//! The repository layer: every SQL statement of a layered feature lives here, one
//! module per table family, as plain functions over a [`crate::sql::Connection`] (or a
//! transaction, which derefs to one), each written once for SQLite and Postgres alike
//! (the few differences ask the connection's [`crate::sql::Dialect`]); [`schema`] holds
//! the migrations. Repositories know rows, not rules: they never
//! decide who may see what beyond the `user_id` each query is scoped by, never build an
//! HTTP answer, and import nothing from [`crate::service`] or [`crate::api`].

pub mod albums;
pub mod faces;
pub mod jobs;
pub mod montages;
pub mod photos;
pub mod places;
pub mod schema;
pub mod smart;
pub mod transfer;
pub mod users;
