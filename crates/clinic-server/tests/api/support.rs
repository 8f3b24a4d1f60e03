//! The tests use the server's own test support.

pub use clinic_server::testing::*;
