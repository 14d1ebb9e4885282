//! The `tlsChallenges` step's judgement of one challenge: what a controller's TLS client did
//! against a challenge endpoint, held against the policy of the family and Go version static
//! inspection found (pure; the engine waits and turns verdicts into results). Also
//! [`ChallengeSetOps`], the `ChallengeOps` over a running `ChallengeSet` that the runner hands out.

use super::ops::{ChallengeOps, ControllerCrypto, OpsError};
use crate::fips::tls::challenge::{Attempt, ChallengeId, ChallengeSet, Outcome};
use crate::fips::tls::policy::{Expectation, Family, Policy};
use crate::fips::tls::verdict::hello_violations;
use crate::model::Component;
use crate::model::results::Status;
use futures::future::BoxFuture;
use std::collections::BTreeMap;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// [`ChallengeOps`] over a running [`ChallengeSet`]: what the runner gives the engine in a cell.
pub struct ChallengeSetOps {
    pub set: Arc<ChallengeSet>,
    /// The host the cell's controllers reach the listeners at (e.g. the kind network gateway);
    /// the set's certificates must name it.
    pub host: String,
    /// Static inspection's findings per controller.
    pub crypto: BTreeMap<Component, ControllerCrypto>,
}

impl ChallengeOps for ChallengeSetOps {
    fn endpoints(&self) -> Vec<(ChallengeId, String)> {
        self.set
            .endpoints()
            .iter()
            .map(|e| (e.challenge, format!("{}:{}", self.host, e.addr.port())))
            .collect()
    }

    fn ca_pem(&self) -> String {
        self.set.ca_pem().to_string()
    }

    fn controller_crypto(&self, controller: Component) -> Option<ControllerCrypto> {
        self.crypto.get(&controller).copied()
    }

    fn wait_attempts(
        &self,
        id: ChallengeId,
        since: SystemTime,
        timeout: Duration,
    ) -> BoxFuture<'_, Result<Vec<Attempt>, OpsError>> {
        let set = self.set.clone();
        Box::pin(async move {
            // The set's wait is a blocking condition-variable wait: keep it off the runtime.
            tokio::task::spawn_blocking(move || {
                let deadline = Instant::now() + timeout;
                loop {
                    let all = set.attempts(id);
                    let recent: Vec<Attempt> =
                        all.iter().filter(|a| a.at >= since).cloned().collect();
                    let left = deadline.saturating_duration_since(Instant::now());
                    if !recent.is_empty() || left.is_zero() {
                        return Ok(recent);
                    }
                    match set.wait_for(id, all.len() + 1, left) {
                        Ok(_) | Err(crate::fips::tls::challenge::WaitError::TimedOut { .. }) => {}
                        Err(e) => return Err(OpsError::infra("wait for challenge attempts", e)),
                    }
                }
            })
            .await
            .map_err(|e| OpsError::infra("wait for challenge attempts", e))?
        })
    }
}

/// One challenge's verdict, as a step result's status and message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Judgement {
    pub status: Status,
    pub message: String,
}

impl Judgement {
    fn new(status: Status, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }
}

/// Whether the cell's channel and the controller's inspected family can be judged together:
/// `Err` is the whole step's verdict when they cannot.
pub fn precheck(crypto: ControllerCrypto, channel_fips: bool) -> Result<Policy, Judgement> {
    let policy = Policy::new(crypto.family, crypto.go_version).map_err(|e| {
        Judgement::new(
            Status::Error,
            format!("no TLS policy for the inspected controller: {e}"),
        )
    })?;
    match (channel_fips, crypto.family.is_fips()) {
        // A FIPS channel shipping a controller without a FIPS TLS stack is the product's fault.
        (true, false) => Err(Judgement::new(
            Status::Fail,
            format!(
                "the channel promises FIPS, but static inspection found a `{}` TLS stack (Go {})",
                crypto.family.name(),
                crypto.go_version
            ),
        )),
        // The non-FIPS side of the differential must be a non-FIPS build, or nothing compares.
        (false, true) => Err(Judgement::new(
            Status::Error,
            format!(
                "inconclusive: the non-FIPS side's controller is a `{}` FIPS build (Go {}), so it cannot show what FIPS changes",
                crypto.family.name(),
                crypto.go_version
            ),
        )),
        _ => Ok(policy),
    }
}

/// Judge the attempts one challenge recorded from the controller. `policy` comes from
/// [`precheck`]; `channel_fips` selects the FIPS or the non-FIPS side of the differential.
pub fn judge(
    policy: &Policy,
    channel_fips: bool,
    id: ChallengeId,
    attempts: &[Attempt],
) -> Judgement {
    if attempts.is_empty() {
        return Judgement::new(
            Status::Error,
            "controller never connected to the challenge endpoint: nothing was checked",
        );
    }
    let accepted = attempts.iter().find_map(|a| match &a.outcome {
        Outcome::Accepted { version, cipher } => Some(format!("{version} {cipher}")),
        _ => None,
    });
    let refused = attempts.iter().find_map(|a| match &a.outcome {
        Outcome::Refused { cause } => Some(cause.clone()),
        _ => None,
    });
    if accepted.is_none() && refused.is_none() {
        let causes: BTreeSet<String> = attempts
            .iter()
            .filter_map(|a| match &a.outcome {
                Outcome::Error { cause } => Some(cause.clone()),
                _ => None,
            })
            .collect();
        return Judgement::new(
            Status::Error,
            format!(
                "no handshake ran in {} connection(s): {}",
                attempts.len(),
                causes.into_iter().collect::<Vec<_>>().join("; ")
            ),
        );
    }
    let expected = policy.expect(&id.offer());
    let (family, go) = (policy.family.name(), policy.go);
    if !channel_fips {
        return match (&expected, accepted, refused) {
            (Expectation::Refuse { reason, .. }, _, _) => Judgement::new(
                Status::Skip,
                format!("not discriminating: `{family}` Go {go} refuses it as well ({reason})"),
            ),
            (Expectation::Accept { .. }, _, Some(cause)) => Judgement::new(
                Status::Error,
                format!(
                    "inconclusive: the non-FIPS side refused an offer its policy (`{family}` Go {go}) accepts, so a FIPS refusal of it proves nothing: {cause}"
                ),
            ),
            (Expectation::Accept { .. }, Some(how), None) => Judgement::new(
                Status::Pass,
                format!("accepted ({how}), as `{family}` Go {go} does"),
            ),
            (Expectation::Accept { .. }, None, None) => unreachable!("handled above"),
        };
    }

    // FIPS side: the handshake outcome, then every ClientHello against the policy.
    let mut verdict = match (&expected, &accepted, &refused) {
        (Expectation::Refuse { reason, .. }, Some(how), _) => Judgement::new(
            Status::Fail,
            format!("accepted a forbidden offer ({how}): {reason}"),
        ),
        (Expectation::Accept { version }, _, Some(cause)) => Judgement::new(
            Status::Fail,
            format!("refused an offer its policy allows ({version}): {cause}"),
        ),
        (Expectation::Refuse { reason, .. }, None, Some(cause)) => {
            let plain = Policy::new(Family::None, go)
                .map(|p| p.expect(&id.offer()))
                .ok();
            match plain {
                Some(Expectation::Refuse { reason: r, .. }) => Judgement::new(
                    Status::Skip,
                    format!("not discriminating: plain Go {go} refuses it too ({r})"),
                ),
                _ => Judgement::new(
                    Status::Pass,
                    format!("refused as required ({reason}): {cause}"),
                ),
            }
        }
        (Expectation::Accept { .. }, Some(how), None) => Judgement::new(
            Status::Pass,
            format!("accepted ({how}), as the policy allows"),
        ),
        _ => unreachable!("handled above"),
    };
    let forbidden: BTreeSet<String> = attempts
        .iter()
        .filter_map(|a| a.client_hello.as_ref())
        .flat_map(|h| hello_violations(policy, h))
        .map(|(param, ruling)| format!("{param} ({})", ruling.reason))
        .collect();
    if !forbidden.is_empty() {
        let list = forbidden.into_iter().collect::<Vec<_>>().join(", ");
        verdict = Judgement::new(
            Status::Fail,
            match verdict.status {
                Status::Fail => format!(
                    "{}; the ClientHello offers forbidden {list}",
                    verdict.message
                ),
                _ => format!("the ClientHello offers forbidden {list}"),
            },
        );
    }
    verdict
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fips::tls::policy::GoVersion;
    use std::time::SystemTime;

    fn attempt(outcome: Outcome) -> Attempt {
        Attempt {
            peer: "127.0.0.1:1".parse().unwrap(),
            at: SystemTime::now(),
            client_hello: None,
            hello_error: None,
            outcome,
        }
    }
    fn accepted() -> Attempt {
        attempt(Outcome::Accepted {
            version: "TLSv1.2".into(),
            cipher: "x".into(),
        })
    }
    fn refused() -> Attempt {
        attempt(Outcome::Refused {
            cause: "alert".into(),
        })
    }
    fn crypto(family: Family) -> ControllerCrypto {
        ControllerCrypto {
            family,
            go_version: GoVersion::new(27, 3),
        }
    }

    #[test]
    fn the_model_lists_exactly_the_challenges() {
        let ids: Vec<&str> = ChallengeId::ALL.iter().map(|c| c.id()).collect();
        assert_eq!(ids, crate::model::scenario::CHALLENGE_IDS);
    }

    #[test]
    fn fips_side_truth_table() {
        let p = precheck(crypto(Family::BoringFipsOnly), true).unwrap();
        let c = ChallengeId::Tls12Chacha20;
        assert_eq!(judge(&p, true, c, &[refused()]).status, Status::Pass);
        assert_eq!(judge(&p, true, c, &[accepted()]).status, Status::Fail);
        assert_eq!(judge(&p, true, c, &[]).status, Status::Error);
        let ctl = ChallengeId::ControlTls13;
        assert_eq!(judge(&p, true, ctl, &[accepted()]).status, Status::Pass);
        assert_eq!(judge(&p, true, ctl, &[refused()]).status, Status::Fail);
        // Plain Go 1.27 refuses TLS 1.1 as well: proves nothing either way.
        assert_eq!(
            judge(&p, true, ChallengeId::Tls11, &[refused()]).status,
            Status::Skip
        );
        let broken = attempt(Outcome::Error {
            cause: "timed out".into(),
        });
        assert_eq!(judge(&p, true, c, &[broken]).status, Status::Error);
    }

    #[test]
    fn non_fips_side_refusing_a_violator_is_inconclusive() {
        let p = precheck(crypto(Family::None), false).unwrap();
        let c = ChallengeId::Tls12Chacha20;
        assert_eq!(judge(&p, false, c, &[accepted()]).status, Status::Pass);
        let j = judge(&p, false, c, &[refused()]);
        assert_eq!(j.status, Status::Error);
        assert!(j.message.contains("inconclusive"), "{j:?}");
        assert_eq!(
            judge(&p, false, ChallengeId::Tls11, &[refused()]).status,
            Status::Skip
        );
    }

    #[test]
    fn channel_and_family_must_agree() {
        assert_eq!(
            precheck(crypto(Family::None), true).unwrap_err().status,
            Status::Fail
        );
        assert_eq!(
            precheck(crypto(Family::NativeOn), false)
                .unwrap_err()
                .status,
            Status::Error
        );
    }
}
