//! FIPS TLS evidence: the policy by (family, Go version), challenge endpoints that capture
//! ClientHellos, the differential verdict, and the `probe tls` scanner. No cluster access.

pub mod certs;
pub mod challenge;
pub mod cli;
pub mod clienthello;
pub mod codepoints;
pub mod policy;
pub mod probe;
pub mod verdict;
