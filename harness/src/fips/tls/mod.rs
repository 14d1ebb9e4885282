//! FIPS TLS evidence: the policy by (family, Go version), challenge endpoints that capture
//! ClientHellos, the differential verdict, and the `probe tls` scanner. No cluster access.
//!
//! API for the `fips-tls` scenario (sync; call from `spawn_blocking` in async code):
//! - [`challenge::ChallengeSet::start`] with a [`challenge::ChallengeConfig`] (listen address,
//!   optional first port, SANs, timeout) → [`challenge::ChallengeSet::endpoints`] (challenge id →
//!   address), [`challenge::ChallengeSet::ca_pem`] (the `ca.crt` to put in Flux Secrets),
//!   [`challenge::ChallengeSet::wait_for`] / [`challenge::ChallengeSet::attempts`] (captured
//!   ClientHellos and outcomes); dropping the set stops the listeners.
//! - [`expectation`] for (family, Go version, challenge), [`verdict::differential`] and
//!   [`verdict::hello_violations`] to judge what was recorded.

pub mod certs;
pub mod challenge;
pub mod cli;
pub mod clienthello;
pub mod codepoints;
pub mod enumerate;
pub mod handshake;
pub mod iana;
pub mod policy;
pub mod probe;
pub mod probe_report;
pub mod verdict;
pub mod wire;

/// What a binary of `family` built with Go `go` must do against challenge `c`.
pub fn expectation(
    family: policy::Family,
    go: policy::GoVersion,
    c: challenge::ChallengeId,
) -> Result<policy::Expectation, policy::PolicyParseError> {
    Ok(policy::Policy::new(family, go)?.expect(&c.offer()))
}
