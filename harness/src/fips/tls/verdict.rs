//! The differential verdict for one challenge: the FIPS side must do what its policy predicts,
//! and a refusal only counts as evidence when the non-FIPS side accepted the same offer.
//! Also checks a FIPS client's ClientHello against its policy. Pure: no I/O.

use super::challenge::{Attempt, Outcome};
use super::clienthello::ClientHello;
use super::codepoints::TlsVersion;
use super::policy::{Expectation, Param, Policy, Ruling};

/// What one side did against a challenge.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "observed", rename_all = "kebab-case")]
pub enum Observed {
    Accepted,
    Refused {
        cause: String,
    },
    /// The check could not run: no connection arrived, or it broke before a handshake.
    Error {
        cause: String,
    },
}

impl Observed {
    /// The last recorded attempt decides (a controller retries; the latest is its current state).
    pub fn from_attempts(attempts: &[Attempt]) -> Self {
        match attempts.last().map(|a| &a.outcome) {
            None => Observed::Error {
                cause: "no connection reached the challenge endpoint".into(),
            },
            Some(Outcome::Accepted { .. }) => Observed::Accepted,
            Some(Outcome::Refused { cause }) => Observed::Refused {
                cause: cause.clone(),
            },
            Some(Outcome::Error { cause }) => Observed::Error {
                cause: cause.clone(),
            },
        }
    }
}

/// The result of one challenge check.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "verdict", rename_all = "kebab-case")]
pub enum Verdict {
    Pass,
    /// The product misbehaved.
    Fail {
        reason: String,
    },
    /// The check could not prove anything; reported as an error, never as a pass.
    Inconclusive {
        reason: String,
    },
    /// The challenge cannot separate the two sides for these binaries.
    Skip {
        reason: String,
    },
}

/// One side's expectation and observation.
#[derive(Debug, Clone)]
pub struct Side {
    pub expected: Expectation,
    pub observed: Observed,
}

/// Judge one challenge. `non_fips` is the same challenge against the non-FIPS build.
pub fn differential(fips: &Side, non_fips: Option<&Side>) -> Verdict {
    let fips_accepted = match &fips.observed {
        Observed::Error { cause } => {
            return Verdict::Inconclusive {
                reason: format!("the FIPS side's handshake did not run: {cause}"),
            };
        }
        Observed::Accepted => true,
        Observed::Refused { .. } => false,
    };
    match (&fips.expected, fips_accepted) {
        (Expectation::Accept { version }, false) => {
            let cause = match &fips.observed {
                Observed::Refused { cause } => cause.as_str(),
                _ => "",
            };
            return Verdict::Fail {
                reason: format!(
                    "the FIPS side refused an offer its policy allows ({version}): {cause}"
                ),
            };
        }
        (Expectation::Refuse { reason, .. }, true) => {
            return Verdict::Fail {
                reason: format!("the FIPS side accepted a forbidden offer: {reason}"),
            };
        }
        (Expectation::Accept { .. }, true) => return Verdict::Pass,
        (Expectation::Refuse { .. }, false) => {}
    }
    // A correct refusal is evidence only if the non-FIPS build accepts the same offer.
    let Some(other) = non_fips else {
        return Verdict::Inconclusive {
            reason: "no non-FIPS result to compare the refusal with".into(),
        };
    };
    if let Expectation::Refuse { reason, .. } = &other.expected {
        return Verdict::Skip {
            reason: format!("not discriminating: the non-FIPS build refuses it too ({reason})"),
        };
    }
    match &other.observed {
        Observed::Accepted => Verdict::Pass,
        Observed::Refused { cause } => Verdict::Inconclusive {
            reason: format!(
                "the non-FIPS side also refused the offer, so the FIPS refusal proves nothing: {cause}"
            ),
        },
        Observed::Error { cause } => Verdict::Inconclusive {
            reason: format!("the non-FIPS side's handshake did not run: {cause}"),
        },
    }
}

/// Every parameter a ClientHello offers that `policy` forbids. GREASE and signalling suites are
/// not parameters.
pub fn hello_violations(policy: &Policy, hello: &ClientHello) -> Vec<(Param, Ruling)> {
    let mut params: Vec<Param> = hello.versions.iter().map(|v| Param::Version(*v)).collect();
    params.extend(
        hello
            .suites
            .iter()
            .filter(|s| !matches!(**s, 0x00ff | 0x5600))
            .map(|s| Param::Suite(*s)),
    );
    params.extend(hello.groups.iter().map(|g| Param::Group(*g)));
    params.extend(hello.sigalgs.iter().map(|s| Param::SigAlg(*s)));
    if hello.versions.contains(&TlsVersion::TLS12) && !hello.ems {
        params.push(Param::Tls12WithoutEms);
    }
    policy.forbidden(&params)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refuse() -> Expectation {
        Expectation::Refuse {
            reason: "x".into(),
            source: "s",
        }
    }
    fn accept() -> Expectation {
        Expectation::Accept {
            version: TlsVersion::TLS13,
        }
    }
    fn side(expected: Expectation, observed: Observed) -> Side {
        Side { expected, observed }
    }
    fn refused() -> Observed {
        Observed::Refused {
            cause: "alert".into(),
        }
    }

    #[test]
    fn differential_truth_table() {
        let fips_refused = side(refuse(), refused());
        assert_eq!(
            differential(&fips_refused, Some(&side(accept(), Observed::Accepted))),
            Verdict::Pass
        );
        assert!(matches!(
            differential(&fips_refused, Some(&side(accept(), refused()))),
            Verdict::Inconclusive { .. }
        ));
        assert!(matches!(
            differential(&fips_refused, None),
            Verdict::Inconclusive { .. }
        ));
        assert!(matches!(
            differential(&fips_refused, Some(&side(refuse(), refused()))),
            Verdict::Skip { .. }
        ));
        assert!(matches!(
            differential(&side(refuse(), Observed::Accepted), None),
            Verdict::Fail { .. }
        ));
        assert!(matches!(
            differential(&side(accept(), refused()), None),
            Verdict::Fail { .. }
        ));
        assert_eq!(
            differential(&side(accept(), Observed::Accepted), None),
            Verdict::Pass
        );
        let broken = side(
            refuse(),
            Observed::Error {
                cause: "timed out".into(),
            },
        );
        assert!(matches!(
            differential(&broken, Some(&side(accept(), Observed::Accepted))),
            Verdict::Inconclusive { .. }
        ));
    }
}
