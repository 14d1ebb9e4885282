//! The policy's predictions for every challenge against the 1,860 recorded handshakes in
//! `fixtures/fips-data/handshake-results.json`: for each of the 30 (Go version, build variant)
//! columns, the policy must predict the recorded accept/refuse of the matching scenario.

mod support;

use flux_compat::fips::tls::challenge::ChallengeId;
use flux_compat::fips::tls::policy::{Family, GoVersion, Policy};

/// The recorded scenario that exercises the same single deviation as a challenge.
fn scenario(c: ChallengeId) -> &'static str {
    match c {
        ChallengeId::Tls12Chacha20 => "c04",
        ChallengeId::Tls13Chacha20 => "c09",
        ChallengeId::X25519Tls12 => "c12",
        ChallengeId::X25519Tls13 => "c11",
        ChallengeId::Tls11 => "c08",
        ChallengeId::CbcSha1 => "c07",
        ChallengeId::StaticRsa => "c05",
        ChallengeId::Tls12NoEms => "c20",
        ChallengeId::LeafRsa1024 => "cert-rsa1024",
        ChallengeId::RootRsa1024 => "chain-ca-rsa1024",
        ChallengeId::LeafEd25519 => "cert-ed25519",
        ChallengeId::LeafRsa2560 => "cert-rsa2560",
        ChallengeId::X25519Mlkem768 => "c17",
        ChallengeId::ControlTls13 => "c13",
        ChallengeId::ControlTls12Ems => "c03",
    }
}

/// The policy of a recorded variant column, e.g. `1.24.11 | boring+fipsonly`.
fn policy_of(column: &str) -> Policy {
    let (ver, variant) = column.split_once(" | ").unwrap();
    let family = match variant {
        "plain" => Family::None,
        "boring(no fipsonly)" => Family::BoringNoFipsOnly,
        "boring+fipsonly" => Family::BoringFipsOnly,
        "GODEBUG=fips140=on" | "GOFIPS140=v1.0.0" => Family::NativeOn,
        "GODEBUG=fips140=only" => Family::NativeOnly,
        other => panic!("unknown variant column {other}"),
    };
    Policy::new(family, ver.parse::<GoVersion>().unwrap()).unwrap()
}

#[test]
fn policy_predicts_every_recorded_challenge_handshake() {
    let path = support::root().join("fixtures/fips-data/handshake-results.json");
    let data: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut checked = 0;
    let mut accepted = 0;
    let mut problems = vec![];
    for c in ChallengeId::ALL {
        let row = data["client"][scenario(c)]["row"].as_object().unwrap();
        for (column, result) in row {
            // Go 1.25.5 fips140=only fails every handshake with default groups (golang/go#75528).
            if column == "1.25.5 | GODEBUG=fips140=only" {
                continue;
            }
            let policy = policy_of(column);
            // The TLS 1.1 scenario was recorded with a client MinVersion of TLS 1.0; a default
            // non-FIPS client (what a controller runs) refuses TLS 1.1, which the policy models.
            if c == ChallengeId::Tls11 && !policy.family.is_fips() {
                continue;
            }
            let want = result["ok"].as_bool().unwrap();
            let got = policy.expect(&c.offer());
            checked += 1;
            accepted += usize::from(want);
            if got.accepts() != want {
                problems.push(format!(
                    "{} ({}) × {column}: recorded ok={want} {}, policy {got:?}",
                    c.id(),
                    scenario(c),
                    result["err"]
                ));
            }
        }
    }
    assert!(checked > 400, "only {checked} comparisons");
    assert!(
        accepted > 100 && checked - accepted > 100,
        "{accepted} of {checked} accepted: both outcomes must be covered"
    );
    assert!(
        problems.is_empty(),
        "{} mismatch(es):\n{}",
        problems.len(),
        problems.join("\n")
    );
}
