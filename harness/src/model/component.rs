//! The Flux controllers a channel ships and a scenario may require.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A Flux controller component, named as in the Flux release manifests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Component {
    SourceController,
    KustomizeController,
    HelmController,
    NotificationController,
    ImageReflectorController,
    ImageAutomationController,
    SourceWatcher,
}

impl Component {
    pub const ALL: [Component; 7] = [
        Component::SourceController,
        Component::KustomizeController,
        Component::HelmController,
        Component::NotificationController,
        Component::ImageReflectorController,
        Component::ImageAutomationController,
        Component::SourceWatcher,
    ];

    /// What `flux install` installs without `--components-extra`.
    pub const DEFAULTS: [Component; 4] = [
        Component::SourceController,
        Component::KustomizeController,
        Component::HelmController,
        Component::NotificationController,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Component::SourceController => "source-controller",
            Component::KustomizeController => "kustomize-controller",
            Component::HelmController => "helm-controller",
            Component::NotificationController => "notification-controller",
            Component::ImageReflectorController => "image-reflector-controller",
            Component::ImageAutomationController => "image-automation-controller",
            Component::SourceWatcher => "source-watcher",
        }
    }

    /// The known names, for error messages.
    pub fn known_names() -> String {
        Self::ALL
            .iter()
            .map(|c| format!("`{}`", c.name()))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl fmt::Display for Component {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An unknown component name.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown component `{0}`; known components: {known}", known = Component::known_names())]
pub struct UnknownComponent(pub String);

impl FromStr for Component {
    type Err = UnknownComponent;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .iter()
            .copied()
            .find(|c| c.name() == s)
            .ok_or_else(|| UnknownComponent(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for c in Component::ALL {
            assert_eq!(c.name().parse::<Component>().unwrap(), c);
        }
        let err = "source-controler".parse::<Component>().unwrap_err();
        assert!(err.to_string().contains("`source-controller`"));
    }
}
