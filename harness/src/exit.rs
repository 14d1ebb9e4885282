//! Exit codes: documented constants, listed in README.md.

/// Everything ran and passed (skips with reasons are fine).
pub const OK: u8 = 0;
/// At least one check failed or errored.
pub const FAILED: u8 = 1;
/// Bad usage or bad configuration (every problem is printed as `file:line:col: message`).
pub const USAGE: u8 = 2;
/// A prerequisite is missing (docker, kind, a tool on PATH); the message says how to install it.
pub const PREREQUISITE: u8 = 3;
/// A check could prove nothing either way (`probe tls` with gaps in its enumeration): never a pass.
pub const INCONCLUSIVE: u8 = 4;
/// Interrupted by Ctrl-C or SIGTERM; everything created was cleaned up and reports were written.
pub const INTERRUPTED: u8 = 130;
