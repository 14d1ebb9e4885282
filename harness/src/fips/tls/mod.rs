//! FIPS TLS: the policy per Go FIPS family and version, challenge endpoints, and the probe.
