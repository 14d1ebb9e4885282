//! verify-fips for the API server TEST DOUBLE, for tests only: the double's controllers run a
//! Go TLS stack (`fixtures/go/tlspeer` built as the channel's variant) instead of pulled images,
//! so that binary is what the production inspector classifies, giving the properties
//! `verify-fips` gives for a real cell (the `tlsChallenges` step judges against them).

use std::collections::BTreeMap;

/// verify-fips for the double: the controllers' TLS stack the double runs for a channel is a
/// Go binary, inspected with the production inspector exactly as `verify-fips` inspects the
/// binary of a pulled image (the double pulls no images), giving the same properties.
pub struct DoubleImages {
    pub binary: std::path::PathBuf,
    pub components: Vec<flux_compat::model::Component>,
}

impl flux_compat::runner::stages::FipsEvidence for DoubleImages {
    fn check<'a>(
        &'a self,
        _: &'a flux_compat::runner::stages::CellCtx,
    ) -> futures::future::BoxFuture<
        'a,
        Result<flux_compat::runner::stages::Properties, flux_compat::runner::stages::PhaseError>,
    > {
        Box::pin(async move {
            let i = flux_compat::fips::inspect::classify::inspect_file(&self.binary)
                .map_err(|e| flux_compat::runner::stages::PhaseError::error(e.to_string()))?;
            let mut props = BTreeMap::new();
            for c in &self.components {
                props.insert(format!("fips.{c}.family"), i.family.as_str().to_string());
                props.insert(format!("fips.{c}.goVersion"), i.go_version_raw.clone());
                if let Some(m) = &i.native_mode {
                    props.insert(format!("fips.{c}.nativeMode"), m.clone());
                }
            }
            Ok(props)
        })
    }
}

/// The TLS stack the double's controllers run for a channel, by what the channel promises.
pub fn tls_variant(fips: bool) -> &'static str {
    if fips { "boringfips" } else { "plain" }
}
