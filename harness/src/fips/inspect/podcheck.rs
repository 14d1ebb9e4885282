//! In-cluster cross-checks the runner calls with what it read from a controller Pod: the
//! container's `GODEBUG` must not switch the inspected family's FIPS mode off (native) or on
//! (BoringCrypto panics), and the running image must be the inspected digest. Pure functions.

use super::classify::{Family, godebug_value};

/// Why a running container contradicts its inspected image.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PodCheckFailure {
    #[error(
        "container `{container}` sets `GODEBUG={godebug}`, which turns native FIPS mode off (`fips140=off`)"
    )]
    NativeDisabled { container: String, godebug: String },
    #[error(
        "container `{container}` sets `GODEBUG={godebug}` on a BoringCrypto build: `fips140={value}` panics at start-up"
    )]
    BoringWithFips140 {
        container: String,
        godebug: String,
        value: String,
    },
    #[error("container `{container}` runs `{running}`, not the inspected digest `{inspected}`")]
    DigestMismatch {
        container: String,
        running: String,
        inspected: String,
    },
    #[error("container `{container}` reports no image ID (is it running?)")]
    NoImageId { container: String },
}

/// Check a container's `GODEBUG` value (`None` when unset) against the binary's family.
pub fn check_godebug(
    container: &str,
    family: Family,
    godebug: Option<&str>,
) -> Result<(), PodCheckFailure> {
    let Some(g) = godebug else { return Ok(()) };
    let value = godebug_value(g, "fips140");
    match (family, value) {
        (Family::Native, Some("off")) => Err(PodCheckFailure::NativeDisabled {
            container: container.into(),
            godebug: g.into(),
        }),
        (Family::Boring | Family::BoringFipsOnly, Some(v @ ("on" | "only"))) => {
            Err(PodCheckFailure::BoringWithFips140 {
                container: container.into(),
                godebug: g.into(),
                value: v.into(),
            })
        }
        _ => Ok(()),
    }
}

/// The `sha256:<hex>` digest inside a Pod status `imageID`
/// (`docker.io/library/x@sha256:…`, `docker-pullable://…@sha256:…`, or a bare digest).
pub fn digest_of_image_id(image_id: &str) -> Option<&str> {
    let d = image_id.rsplit('@').next()?;
    let d = d.strip_prefix("docker-pullable://").unwrap_or(d);
    let hex = d.strip_prefix("sha256:")?;
    (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit())).then_some(d)
}

/// The running image ID must carry the digest that was inspected.
pub fn check_image_id(
    container: &str,
    image_id: &str,
    inspected_digest: &str,
) -> Result<(), PodCheckFailure> {
    match digest_of_image_id(image_id) {
        None => Err(PodCheckFailure::NoImageId {
            container: container.into(),
        }),
        Some(d) if d.eq_ignore_ascii_case(inspected_digest) => Ok(()),
        Some(d) => Err(PodCheckFailure::DigestMismatch {
            container: container.into(),
            running: d.into(),
            inspected: inspected_digest.into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    const D: &str = "sha256:7802668f00000000000000000000000000000000000000000000000000000000";

    #[test]
    fn godebug_rules() {
        assert!(check_godebug("m", Family::Native, Some("http2debug=1,fips140=off")).is_err());
        assert!(check_godebug("m", Family::Native, Some("fips140=off,fips140=on")).is_ok());
        assert!(check_godebug("m", Family::Native, None).is_ok());
        assert!(check_godebug("m", Family::BoringFipsOnly, Some("fips140=on")).is_err());
        assert!(check_godebug("m", Family::Boring, Some("fips140=only")).is_err());
        assert!(check_godebug("m", Family::BoringFipsOnly, Some("fips140=off")).is_ok());
        assert!(check_godebug("m", Family::None, Some("fips140=off")).is_ok());
    }

    #[test]
    fn image_id_rules() {
        let id = format!("ghcr.io/fluxcd/source-controller@{D}");
        assert!(check_image_id("m", &id, D).is_ok());
        assert!(check_image_id("m", D, D).is_ok());
        assert!(matches!(
            check_image_id("m", &id, &D.replace('7', "8")),
            Err(PodCheckFailure::DigestMismatch { .. })
        ));
        assert!(matches!(
            check_image_id("m", "", D),
            Err(PodCheckFailure::NoImageId { .. })
        ));
    }
}
