//! The clinic's domain: the types every other crate speaks, their validation,
//! the role permission matrix and the text folding used by search and
//! duplicate detection.
//!
//! This crate does no I/O: no files, no database, no clock (callers pass the
//! date in). That keeps every rule here testable as a pure function and lets
//! the workstation store and the central server share one definition.
//!
//! Types that cross to the UI derive [`ts_rs::TS`]; `cargo test -p
//! clinic-domain` writes them to `ui/src/bindings/`. With the `openapi`
//! feature, the types the server's API carries also derive
//! `utoipa::ToSchema`, the JSON schemas of its OpenAPI document.
#![deny(missing_docs)]

pub mod audit;
pub mod clinical;
pub mod codes;
pub mod error;
pub mod import;
pub mod mrn;
pub mod national_id;
pub mod password;
pub mod patient;
pub mod phone;
pub mod record;
pub mod role;
pub mod sync;
pub mod text;
pub mod untrusted;
pub mod user;
pub mod workstation;

pub use error::{ErrorCode, FieldCode, FieldError};
pub use role::{Permission, Role};
