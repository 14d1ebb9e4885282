//! Scenario templates: `${{ name }}` placeholders resolved from run, cell and fixture variables.
//! The syntax stays clear of Flux post-build substitution (`${VAR}`) and Helm (`{{ }}`).

use std::collections::BTreeMap;

/// Every variable a scenario may use, with what it holds. Validation rejects any other name.
pub const KNOWN_VARIABLES: &[(&str, &str)] = &[
    (
        "namespace",
        "the scenario's own namespace, created for it and deleted after it",
    ),
    ("run.id", "the run identifier"),
    (
        "cell.id",
        "the cell identifier, e.g. `1.37-upstream-v2.9.4-kind`",
    ),
    (
        "kubernetes.minor",
        "the cell's Kubernetes minor, e.g. `1.37`",
    ),
    ("flux.version", "the Flux version under test, e.g. `v2.9.4`"),
    (
        "flux.previousVersion",
        "the newest patch of the previous Flux minor (upgrade scenarios)",
    ),
    (
        "flux.namespace",
        "the namespace Flux is installed in (`flux-system`)",
    ),
    ("channel.name", "the channel under test, e.g. `fips`"),
    (
        "channel.fips",
        "`true` when the channel promises FIPS controllers",
    ),
    (
        "fixtures.gitUrl",
        "base URL of the fixture git server (append `/<repo>.git`)",
    ),
    (
        "fixtures.helmUrl",
        "URL of the fixture Helm HTTP repository",
    ),
    ("fixtures.ociHost", "host:port of the fixture OCI registry"),
    (
        "fixtures.ociUrl",
        "`oci://` base URL of the fixture OCI registry",
    ),
    (
        "fixtures.webhookUrl",
        "URL of the webhook sink that records notification events",
    ),
    (
        "fixtures.caSecret",
        "name of the Secret (in the scenario namespace) holding the per-run `ca.crt`",
    ),
    (
        "fixtures.authSecret",
        "name of the Secret holding fixture credentials (username/password)",
    ),
    (
        "fixtures.pushSecret",
        "name of the Secret holding `ca.crt` and credentials that may also push (for `ImageUpdateAutomation`)",
    ),
    (
        "git.lastCommit",
        "the commit SHA the scenario's latest `gitPush` created (only after a `gitPush` step)",
    ),
    (
        "fixtures.pauseImage",
        "an image every kind node already holds, for workloads",
    ),
    (
        "challenges.caSecret",
        "name of the Secret (in the scenario namespace) whose `ca.crt` trusts the TLS challenge endpoints",
    ),
];

/// Per-challenge variables: `<id>` is any of [`super::scenario::CHALLENGE_IDS`].
pub const CHALLENGE_VARIABLES: &[(&str, &str)] = &[
    (
        "challenges.<id>.address",
        "`host:port` of TLS challenge endpoint `<id>` as the controllers reach it",
    ),
    (
        "challenges.<id>.url",
        "`https://host:port` of TLS challenge endpoint `<id>`",
    ),
];

/// The suffixes of the per-challenge variables.
const CHALLENGE_FIELDS: &[&str] = &["address", "url"];

/// Whether `name` is a per-challenge variable with a known challenge id.
fn is_challenge_variable(name: &str) -> bool {
    let Some(rest) = name.strip_prefix("challenges.") else {
        return false;
    };
    let Some((id, field)) = rest.rsplit_once('.') else {
        return false;
    };
    super::scenario::CHALLENGE_IDS.contains(&id) && CHALLENGE_FIELDS.contains(&field)
}

/// The name of a per-challenge variable.
pub fn challenge_variable(id: &str, field: &str) -> String {
    format!("challenges.{id}.{field}")
}

/// Every concrete variable name (the fixed ones and each per-challenge one), e.g. to render a
/// template with placeholder values during validation.
pub fn all_names() -> Vec<String> {
    let mut out: Vec<String> = KNOWN_VARIABLES.iter().map(|(k, _)| k.to_string()).collect();
    for id in super::scenario::CHALLENGE_IDS {
        for f in CHALLENGE_FIELDS {
            out.push(challenge_variable(id, f));
        }
    }
    out
}

/// Whether `name` is a known variable.
pub fn is_known(name: &str) -> bool {
    KNOWN_VARIABLES.iter().any(|(k, _)| *k == name) || is_challenge_variable(name)
}

/// The known names, for error messages.
pub fn known_names() -> String {
    KNOWN_VARIABLES
        .iter()
        .chain(CHALLENGE_VARIABLES)
        .map(|(k, _)| format!("`{k}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A placeholder found in a template, with its byte offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placeholder {
    pub name: String,
    pub offset: usize,
}

/// A malformed template.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("unclosed `${{{{` at byte {offset}: expected `}}}}`")]
    Unclosed { offset: usize },
    #[error("unknown template variable `{name}`; known variables: {known}", known = known_names())]
    Unknown { name: String, offset: usize },
    #[error("template variable `{name}` has no value in this cell")]
    Missing { name: String, offset: usize },
}

impl TemplateError {
    pub fn offset(&self) -> usize {
        match self {
            TemplateError::Unclosed { offset }
            | TemplateError::Unknown { offset, .. }
            | TemplateError::Missing { offset, .. } => *offset,
        }
    }
}

/// Every `${{ ... }}` in `text`, in order: a placeholder, or an unclosed `${{` when no `}}`
/// follows on the same line before the next `${{` (so one mistake is one problem and never
/// swallows the placeholder after it).
fn scan(text: &str) -> Vec<Result<Placeholder, TemplateError>> {
    let mut out = Vec::new();
    let mut rest = 0;
    while let Some(found) = text[rest..].find("${{") {
        let start = rest + found;
        let body_start = start + 3;
        let line_end = text[body_start..]
            .find(['\n', '\r'])
            .map_or(text.len(), |i| body_start + i);
        let next_open = text[body_start..]
            .find("${{")
            .map_or(text.len(), |i| body_start + i);
        let limit = line_end.min(next_open);
        match text[body_start..limit].find("}}") {
            Some(end) => {
                out.push(Ok(Placeholder {
                    name: text[body_start..body_start + end].trim().to_string(),
                    offset: start,
                }));
                rest = body_start + end + 2;
            }
            None => {
                out.push(Err(TemplateError::Unclosed { offset: start }));
                rest = body_start;
            }
        }
    }
    out
}

/// All placeholders in `text`, or the first syntax error.
pub fn placeholders(text: &str) -> Result<Vec<Placeholder>, TemplateError> {
    scan(text).into_iter().collect()
}

/// Every problem: unclosed placeholders and unknown variables, each once.
pub fn check(text: &str) -> Vec<TemplateError> {
    scan(text)
        .into_iter()
        .filter_map(|r| match r {
            Err(e) => Some(e),
            Ok(p) if !is_known(&p.name) => Some(TemplateError::Unknown {
                name: p.name,
                offset: p.offset,
            }),
            Ok(_) => None,
        })
        .collect()
}

/// Replace every placeholder with its value.
pub fn render(text: &str, vars: &BTreeMap<String, String>) -> Result<String, TemplateError> {
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for p in placeholders(text)? {
        if !is_known(&p.name) {
            return Err(TemplateError::Unknown {
                name: p.name,
                offset: p.offset,
            });
        }
        let value = vars.get(&p.name).ok_or_else(|| TemplateError::Missing {
            name: p.name.clone(),
            offset: p.offset,
        })?;
        out.push_str(&text[last..p.offset]);
        out.push_str(value);
        let close = text[p.offset..]
            .find("}}")
            .map(|i| p.offset + i + 2)
            .unwrap_or(text.len());
        last = close;
    }
    out.push_str(&text[last..]);
    Ok(out)
}

/// The column (1-based, in characters) of `line`, a template line, that column `col` of its
/// rendering with `vars` came from: text after a placeholder shifts by the length difference, and
/// a column inside a substituted value maps to the placeholder's start. Lets a problem found in
/// rendered manifests point into the scenario file.
pub fn source_col(line: &str, vars: &BTreeMap<String, String>, col: usize) -> usize {
    let target = col.saturating_sub(1);
    let chars = |bytes: &str| bytes.chars().count();
    let (mut t, mut r) = (0, 0); // character positions in the template and the rendering
    for p in placeholders(line).unwrap_or_default() {
        let start = chars(&line[..p.offset]);
        let close = line[p.offset..]
            .find("}}")
            .map_or(line.len(), |i| p.offset + i + 2);
        let end = chars(&line[..close]);
        let literal = start - t;
        if target < r + literal {
            return t + (target - r) + 1;
        }
        r += literal;
        let value = vars.get(&p.name).map_or(end - start, |v| chars(v));
        if target < r + value {
            return start + 1;
        }
        r += value;
        t = end;
    }
    t + (target - r) + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_known_variables_and_leaves_flux_substitution_alone() {
        let mut vars = BTreeMap::new();
        vars.insert("namespace".to_string(), "s-1".to_string());
        let out = render("ns: ${{ namespace }} keep: ${VAR} {{ .Values }}", &vars).unwrap();
        assert_eq!(out, "ns: s-1 keep: ${VAR} {{ .Values }}");
    }

    #[test]
    fn rendered_columns_map_back_to_the_template() {
        let mut vars = BTreeMap::new();
        vars.insert("namespace".to_string(), "s-1".to_string());
        vars.insert(
            "fixtures.gitUrl".to_string(),
            "https://10.0.0.1:30443/git".to_string(),
        );
        let line = "url: ${{ fixtures.gitUrl }}/app.git # ${{ namespace }} end";
        let rendered = render(line, &vars).unwrap();
        let at = |needle: &str| rendered.find(needle).unwrap() + 1;
        let t_at = |needle: &str| line.find(needle).unwrap() + 1;
        assert_eq!(source_col(line, &vars, 1), 1);
        assert_eq!(source_col(line, &vars, at("https")), t_at("${{ fixtures"));
        assert_eq!(source_col(line, &vars, at("30443")), t_at("${{ fixtures"));
        assert_eq!(source_col(line, &vars, at("/app.git")), t_at("/app.git"));
        assert_eq!(source_col(line, &vars, at("s-1")), t_at("${{ namespace"));
        assert_eq!(source_col(line, &vars, at("end")), t_at("end"));
        assert_eq!(source_col("plain: text", &vars, 8), 8);
    }

    #[test]
    fn reports_unknown_unclosed_and_missing() {
        assert!(
            matches!(&check("a ${{ nope }}")[0], TemplateError::Unknown { name, offset: 2 } if name == "nope")
        );
        assert!(matches!(
            &check("a ${{ namespace")[0],
            TemplateError::Unclosed { offset: 2 }
        ));
        // Issue 16 item 13: an unclosed placeholder is one problem on its line and the next
        // placeholder is still checked on its own.
        let errs = check("a: ${{ namespace\nb: ${{ nope }}\nc: ${{ run.id }}");
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert!(matches!(&errs[0], TemplateError::Unclosed { offset: 3 }));
        assert!(matches!(&errs[1], TemplateError::Unknown { name, .. } if name == "nope"));
        assert!(errs.iter().all(|e| !e.to_string().contains('\n')));
        assert!(check("${{ challenges.tls11.url }} ${{ challenges.caSecret }}").is_empty());
        assert!(matches!(
            &check("${{ challenges.tls99.url }}")[0],
            TemplateError::Unknown { .. }
        ));
        assert!(all_names().contains(&"challenges.control-tls13.address".to_string()));
        let err = render("${{ run.id }}", &BTreeMap::new()).unwrap_err();
        assert!(matches!(err, TemplateError::Missing { .. }));
    }
}
