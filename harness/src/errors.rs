//! Rendering an error with its causes (`failed: cause: cause`) for messages and reports.
//! Pure; the one place this formatting lives.

/// `error: source: source`, following `source()` to the end.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(x) = cur {
        s.push_str(": ");
        s.push_str(&x.to_string());
        cur = x.source();
    }
    s
}

#[cfg(test)]
mod tests {
    #[derive(Debug, thiserror::Error)]
    #[error("read `matrix.yaml`")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn joins_every_cause() {
        let e = Outer(std::io::Error::other("permission denied"));
        assert_eq!(super::chain(&e), "read `matrix.yaml`: permission denied");
    }
}
