//! FIPS evidence: static inspection of controller binaries and images (`inspect`), and TLS
//! policy, challenge endpoints and the probe (`tls`). Nothing here touches a cluster directly.

pub mod inspect;
pub mod tls;
