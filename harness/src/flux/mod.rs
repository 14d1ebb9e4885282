//! Installing a Flux channel and proving it runs the channel's images: the manifests route
//! (release `install.yaml`, images pinned by digest, pull secret) or the Flux Operator route
//! (a FluxInstance), then verification of every controller's Deployment image and running digest.
//! Talks to the cluster only through `k8s`; decides pass/fail/error, never prints.

pub mod crds;
pub mod credentials;
pub mod install;
pub mod manifests;
pub mod operator;
pub mod verify;

pub use credentials::{CredentialError, RegistryCredentials, Token, TokenSource};
pub use install::{InstallError, InstallRequest, Installed, install};
pub use manifests::{Controller, ManifestError, ManifestSource, Manifests, RenderError};
pub use verify::{Verification, VerifyOptions, verify};

/// The namespace Flux installs into.
pub const NAMESPACE: &str = "flux-system";
