//! The workstation's sync engine: pushes the store's outbox to the central
//! server, pulls the clinic's change feed into the store, listens to the
//! live channel, and keeps the server's tokens (refresh tokens in the OS
//! keychain). No Tauri here: the app owns one [`SyncEngine`] and the tests
//! run several against a real server.
#![deny(missing_docs)]

pub mod client;
pub mod engine;
pub mod error;
pub mod sign_in;
pub mod tokens;

pub use engine::SyncEngine;
pub use error::SyncError;
pub use tokens::{SecretStore, SessionOnly, default_store};
