//! Go binary and image inspection: build info, pclntab symbols, FIPS family classification.
//! Owns static evidence only (bytes of binaries and image layers); it never touches a cluster
//! and never prints except through `cli`.

pub mod buildinfo;
pub mod channel;
pub mod classify;
pub mod cli;
pub mod elf;
pub mod image;
pub mod markers;
pub mod pclntab;
pub mod podcheck;
pub mod source;

pub use classify::{Family, InspectError, Inspection, inspect_bytes, inspect_file};
