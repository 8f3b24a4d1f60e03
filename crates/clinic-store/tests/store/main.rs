//! Integration tests of the store on real SQLite files.

mod access;
mod audit;
mod import;
mod layers;
mod open;
mod patients;
mod records;
mod search;
mod support;
mod write_path;
