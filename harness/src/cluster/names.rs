//! Cluster names: `flux-compat-<run>-<cell>`, valid for kind (`^[a-z0-9.-]+$`) and at most 50
//! characters (kind warns above that), shortened with a hash so distinct cells never collide.

use sha2::{Digest, Sha256};

/// Every cluster this tool creates starts with this, so `gc` can find leftovers.
pub const PREFIX: &str = "flux-compat-";
/// kind warns about longer names (host names of the node containers derive from them).
pub const MAX_LEN: usize = 50;

/// Lower-case, map anything outside `[a-z0-9.-]` to `-`, squeeze repeats, trim dashes.
pub fn sanitise(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars().flat_map(char::to_lowercase) {
        let c = if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' {
            c
        } else {
            '-'
        };
        if c == '-' && out.ends_with('-') {
            continue;
        }
        out.push(c);
    }
    out.trim_matches('-').to_string()
}

/// The cluster name of a cell in a run.
pub fn cluster_name(run_id: &str, cell_id: &str) -> String {
    let full = format!("{PREFIX}{}-{}", sanitise(run_id), sanitise(cell_id));
    if full.len() <= MAX_LEN {
        return full;
    }
    let hash = hex::encode(&Sha256::digest(full.as_bytes())[..4]);
    let keep = MAX_LEN - hash.len() - 1;
    // The name is ASCII after sanitising, so byte slicing is safe.
    format!("{}-{hash}", full[..keep].trim_end_matches(['-', '.']))
}

/// Whether a kind cluster name belongs to this tool and is a valid kind name.
pub fn is_ours(name: &str) -> bool {
    name.starts_with(PREFIX)
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_valid_kind_names_and_bounded() {
        let n = cluster_name("20261123-052500", "1.37-FIPS-v2.9.4-kind");
        assert!(n.len() <= MAX_LEN, "{n}");
        assert!(is_ours(&n), "{n}");
        let short = cluster_name("r1", "1.37-upstream-v2.9.4-kind");
        assert_eq!(short, "flux-compat-r1-1.37-upstream-v2.9.4-kind");
    }

    #[test]
    fn long_names_differ_by_hash() {
        let a = cluster_name(
            "20261123-052500",
            "1.37-enterprise-distroless-fips-v2.9.4-kind-a",
        );
        let b = cluster_name(
            "20261123-052500",
            "1.37-enterprise-distroless-fips-v2.9.4-kind-b",
        );
        assert_ne!(a, b);
        assert!(a.len() <= MAX_LEN && b.len() <= MAX_LEN);
    }

    #[test]
    fn sanitise_maps_invalid_characters() {
        assert_eq!(sanitise("A_b//c..D"), "a-b-c..d");
        assert_eq!(sanitise("--x--"), "x");
    }
}
