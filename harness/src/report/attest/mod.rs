//! `report attest` and `report verify`: the compatibility attestation. `attest` turns a results
//! file into one in-toto Statement per distribution release (see [`statement`]) and, with a key,
//! signs each into a DSSE envelope (see [`dsse`]) in `attestation.intoto.jsonl`; `verify` accepts
//! such a file only when every signature verifies with the given key, every statement has this
//! project's shape, and (with `--results`) every statement equals what the results attest.

pub mod dsse;
pub mod statement;

use dsse::{Envelope, EnvelopeError, KeyError, SigningKey, VerifyingKey};
use statement::{AttestError, PREDICATE_TYPE, STATEMENT_TYPE, Statement, Unattested};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The signed envelopes, one per line.
pub const ENVELOPES_FILE: &str = "attestation.intoto.jsonl";
/// Attestation files larger than this are refused unread (memory stays bounded).
const MAX_ATTESTATION_BYTES: u64 = 64 * 1024 * 1024;
/// At most this many differences are listed per statement.
const MAX_DIFFERENCES: usize = 50;

/// The file name of a distribution's unsigned statement.
pub fn statement_file(s: &Statement) -> String {
    let d = &s.predicate.distribution;
    format!(
        "attestation-{}-{}.statement.json",
        crate::cluster::names::sanitise(&d.channel),
        crate::cluster::names::sanitise(&d.flux_version)
    )
}

/// What `attest` wrote.
#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Written {
    pub channel: String,
    pub flux_version: String,
    pub verdict: statement::Verdict,
    pub subjects: usize,
    /// The unsigned statement (for keyless signing in CI).
    pub statement: PathBuf,
    /// The signed envelopes file, when a key was given.
    pub envelopes: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum AttestFileError {
    #[error(transparent)]
    Results(#[from] super::files::ReportError),
    #[error(transparent)]
    Attest(#[from] AttestError),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("attest `{path}`: no distribution has a verified controller image ({reasons})")]
    Nothing { path: PathBuf, reasons: String },
}

/// Read `results`, write a statement per distribution into `dir` and, with `key`, the signed
/// envelopes. Returns what was written and the distributions that could not be attested.
pub fn attest(
    results: &Path,
    dir: &Path,
    key: Option<&Path>,
) -> Result<(Vec<Written>, Vec<Unattested>), AttestFileError> {
    let run = super::files::read_results(results)?;
    // Load the key first: a bad key must not leave half the files behind.
    let signer = key.map(SigningKey::from_file).transpose()?;
    let (statements, unattested) = statement::statements(&run)?;
    if statements.is_empty() {
        return Err(AttestFileError::Nothing {
            path: results.to_path_buf(),
            reasons: unattested
                .iter()
                .map(|u| format!("`{}` Flux {}: {}", u.channel, u.flux, u.reason))
                .collect::<Vec<_>>()
                .join("; "),
        });
    }
    let envelopes_path = signer.as_ref().map(|_| dir.join(ENVELOPES_FILE));
    let mut lines = String::new();
    let mut written = Vec::new();
    for s in &statements {
        let payload = serde_json::to_vec(s).expect("statements serialise");
        let path = dir.join(statement_file(s));
        let pretty = serde_json::to_string_pretty(s).expect("statements serialise");
        super::files::write_atomic(&path, &(pretty + "\n"))?;
        if let Some(k) = &signer {
            let line = serde_json::to_string(&k.sign(&payload)).expect("envelopes serialise");
            let _ = writeln!(lines, "{line}");
        }
        written.push(Written {
            channel: s.predicate.distribution.channel.clone(),
            flux_version: s.predicate.distribution.flux_version.clone(),
            verdict: s.predicate.verdict,
            subjects: s.subject.len(),
            statement: path,
            envelopes: envelopes_path.clone(),
        });
    }
    if let Some(p) = &envelopes_path {
        super::files::write_atomic(p, &lines)?;
    }
    Ok((written, unattested))
}

/// Why an attestation file is not accepted. Usage problems (unreadable files, bad keys) are
/// separate from rejections: the first are exit 2, the second exit 1.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("read attestation `{path}`")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("read attestation `{path}`: {size} bytes is more than an attestation can be")]
    TooLarge { path: PathBuf, size: u64 },
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error(transparent)]
    Results(#[from] super::files::ReportError),
    #[error(transparent)]
    Attest(#[from] AttestError),
    #[error("verify `{path}`:\n{}", problems.join("\n"))]
    Rejected {
        path: PathBuf,
        problems: Vec<String>,
    },
}

impl VerifyError {
    /// A rejection of the evidence (exit 1) rather than a usage problem (exit 2).
    pub fn is_rejection(&self) -> bool {
        matches!(self, VerifyError::Rejected { .. })
    }
}

/// A statement that verified.
#[derive(Debug)]
pub struct Verified {
    pub line: usize,
    pub statement: Statement,
    pub keyid: String,
}

/// Verify every envelope in `path` with `key`, then (with `results`) that the statements are
/// exactly what those results attest, no more and no fewer.
pub fn verify(
    path: &Path,
    key: &Path,
    results: Option<&Path>,
) -> Result<Vec<Verified>, VerifyError> {
    let key = VerifyingKey::from_file(key)?;
    let expected = match results {
        Some(r) => Some(statement::statements(&super::files::read_results(r)?)?.0),
        None => None,
    };
    let size = std::fs::metadata(path)
        .map_err(|source| VerifyError::Read {
            path: path.to_path_buf(),
            source,
        })?
        .len();
    if size > MAX_ATTESTATION_BYTES {
        return Err(VerifyError::TooLarge {
            path: path.to_path_buf(),
            size,
        });
    }
    let text = std::fs::read(path).map_err(|source| VerifyError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let mut problems = Vec::new();
    let mut verified = Vec::new();
    let text = String::from_utf8_lossy(&text);
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let at = format!("line {}", i + 1);
        match open_line(&key, line) {
            Ok(statement) => verified.push(Verified {
                line: i + 1,
                statement,
                keyid: key.keyid.clone(),
            }),
            Err(p) => problems.extend(p.into_iter().map(|p| format!("{at}: {p}"))),
        }
    }
    if verified.is_empty() && problems.is_empty() {
        problems.push("holds no envelope".into());
    }
    if let (Some(expected), true) = (&expected, problems.is_empty()) {
        problems.extend(compare(expected, &verified));
    }
    if problems.is_empty() {
        Ok(verified)
    } else {
        Err(VerifyError::Rejected {
            path: path.to_path_buf(),
            problems,
        })
    }
}

/// One envelope: signature first, then the statement's shape.
fn open_line(key: &VerifyingKey, line: &str) -> Result<Statement, Vec<String>> {
    let env: Envelope = serde_json::from_str(line).map_err(|e| {
        vec![format!(
            "not a DSSE envelope (`payloadType`, `payload`, `signatures`): {e}"
        )]
    })?;
    let payload = key
        .open(&env)
        .map_err(|e: EnvelopeError| vec![format!("failed to {e}")])?;
    let value: serde_json::Value = serde_json::from_slice(&payload)
        .map_err(|e| vec![format!("the signed payload is not JSON: {e}")])?;
    let kind = value.get("predicateType").and_then(|v| v.as_str());
    if value.get("_type").and_then(|v| v.as_str()) != Some(STATEMENT_TYPE) {
        return Err(vec![format!(
            "the payload is not an in-toto Statement v1 (`_type` must be `{STATEMENT_TYPE}`)"
        )]);
    }
    if kind != Some(PREDICATE_TYPE) {
        return Err(vec![format!(
            "predicate type `{}` is not one this version reads; expected `{PREDICATE_TYPE}`",
            kind.unwrap_or("(none)")
        )]);
    }
    let statement: Statement = serde_json::from_value(value).map_err(|e| {
        vec![format!(
            "the statement does not have the predicate's shape: {e}"
        )]
    })?;
    let problems = shape_problems(&statement);
    if problems.is_empty() {
        Ok(statement)
    } else {
        Err(problems)
    }
}

/// What the types cannot say: subjects are the verified images, digests are sha256, the counts
/// and the verdict follow from the cells.
fn shape_problems(s: &Statement) -> Vec<String> {
    let mut p = subject_problems(s);
    let mut counts = statement::CaseCounts::default();
    for c in &s.predicate.cells {
        for o in c.checks.iter().chain(&c.scenarios) {
            match o.outcome {
                crate::model::Status::Pass => counts.pass += 1,
                crate::model::Status::Fail => counts.fail += 1,
                crate::model::Status::Error => counts.error += 1,
                crate::model::Status::Skip => counts.skip += 1,
            }
        }
    }
    if counts != s.predicate.counts {
        p.push(format!(
            "the counts {:?} are not those of the cells {:?}",
            s.predicate.counts, counts
        ));
    }
    let v = statement::verdict(&s.predicate.run, &counts);
    if v != s.predicate.verdict {
        p.push(format!(
            "the verdict `{:?}` does not follow from the cells (`{v:?}`)",
            s.predicate.verdict
        ));
    }
    p
}

fn subject_problems(s: &Statement) -> Vec<String> {
    let mut p = Vec::new();
    let hex64 =
        |h: &str| h.len() == 64 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if s.subject.is_empty() {
        p.push("the statement has no subject".into());
    }
    for (i, sub) in s.subject.iter().enumerate() {
        match sub.digest.get("sha256") {
            Some(h) if hex64(h) && sub.digest.len() == 1 => {}
            _ => p.push(format!(
                "subject {i} (`{}`) needs exactly one `sha256` digest of 64 lower-case hex digits",
                sub.name
            )),
        }
        if sub.name.is_empty() {
            p.push(format!("subject {i} has no name"));
        }
    }
    let mut from_images: Vec<(String, String)> = s
        .predicate
        .images
        .iter()
        .map(|i| {
            (
                i.name.clone(),
                i.digest.trim_start_matches("sha256:").to_string(),
            )
        })
        .collect();
    from_images.sort();
    from_images.dedup();
    let subjects: Vec<(String, String)> = s
        .subject
        .iter()
        .map(|x| {
            (
                x.name.clone(),
                x.digest.get("sha256").cloned().unwrap_or_default(),
            )
        })
        .collect();
    if from_images != subjects {
        p.push("the subjects are not the predicate's verified images".into());
    }
    p
}

/// Every difference between the statements the results attest and those verified.
fn compare(expected: &[Statement], got: &[Verified]) -> Vec<String> {
    let key = |s: &Statement| {
        (
            s.predicate.distribution.channel.clone(),
            s.predicate.distribution.flux_version.clone(),
        )
    };
    let mut problems = Vec::new();
    for e in expected {
        let (channel, flux) = key(e);
        match got.iter().find(|g| key(&g.statement) == key(e)) {
            None => problems.push(format!(
                "the results attest `{channel}` Flux {flux}, the file has no statement for it"
            )),
            Some(g) => {
                let want = serde_json::to_value(e).expect("statements serialise");
                let have = serde_json::to_value(&g.statement).expect("statements serialise");
                let mut diffs = Vec::new();
                diff("", &want, &have, &mut diffs);
                let n = diffs.len();
                problems.extend(
                    diffs
                        .into_iter()
                        .take(MAX_DIFFERENCES)
                        .map(|d| format!("line {} (`{channel}` Flux {flux}): {d}", g.line)),
                );
                if n > MAX_DIFFERENCES {
                    problems.push(format!(
                        "... and {} more difference(s)",
                        n - MAX_DIFFERENCES
                    ));
                }
            }
        }
    }
    for g in got {
        let (channel, flux) = key(&g.statement);
        if !expected.iter().any(|e| key(e) == key(&g.statement)) {
            problems.push(format!(
                "line {}: attests `{channel}` Flux {flux}, which the results do not",
                g.line
            ));
        }
    }
    problems
}

/// JSON-pointer paths where `have` differs from `want`.
fn diff(at: &str, want: &serde_json::Value, have: &serde_json::Value, out: &mut Vec<String>) {
    use serde_json::Value;
    match (want, have) {
        (Value::Object(w), Value::Object(h)) => {
            for (k, wv) in w {
                let p = format!("{at}/{k}");
                match h.get(k) {
                    Some(hv) => diff(&p, wv, hv, out),
                    None => out.push(format!("`{p}` is missing; the results say {wv}")),
                }
            }
            for k in h.keys().filter(|k| !w.contains_key(*k)) {
                out.push(format!("`{at}/{k}` is not in the results"));
            }
        }
        (Value::Array(w), Value::Array(h)) if w.len() == h.len() => {
            for (i, (wv, hv)) in w.iter().zip(h).enumerate() {
                diff(&format!("{at}/{i}"), wv, hv, out);
            }
        }
        (w, h) if w != h => out.push(format!("`{at}` is {h}; the results say {w}")),
        _ => {}
    }
}
