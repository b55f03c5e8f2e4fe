//! The model registry's rules, as values: a model version is `candidate`, `active` or `retired`;
//! at most one version of a model name is active; activating retires the active one, and a
//! rollback re-activates the version that was active before. Storage keeps rows; this decides.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Where a model version stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelStatus {
    Candidate,
    Active,
    Retired,
}

impl ModelStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ModelStatus::Candidate => "candidate",
            ModelStatus::Active => "active",
            ModelStatus::Retired => "retired",
        }
    }

    pub fn parse(s: &str) -> Option<ModelStatus> {
        match s {
            "candidate" => Some(ModelStatus::Candidate),
            "active" => Some(ModelStatus::Active),
            "retired" => Some(ModelStatus::Retired),
            _ => None,
        }
    }
}

impl fmt::Display for ModelStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// What the registry needs to know about one version to decide a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionState {
    pub version: i64,
    pub status: ModelStatus,
    /// When it was last made active (unix ms), if ever.
    pub activated_at_ms: Option<i64>,
}

/// A status change to store: (version, new status, new activated_at).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusChange {
    pub version: i64,
    pub status: ModelStatus,
    pub activated_at_ms: Option<i64>,
}

/// Why a registry change is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    #[error("model {name} has no version {version}")]
    UnknownVersion { name: String, version: i64 },
    #[error("model {name} version {version} is already active")]
    AlreadyActive { name: String, version: i64 },
    #[error("model {name} has no earlier active version to roll back to")]
    NothingToRollBackTo { name: String },
}

/// Makes `version` active and retires whichever version was active.
pub fn activate(
    name: &str,
    versions: &[VersionState],
    version: i64,
    now_ms: i64,
) -> Result<Vec<StatusChange>, RegistryError> {
    let Some(target) = versions.iter().find(|v| v.version == version) else {
        return Err(RegistryError::UnknownVersion {
            name: name.to_string(),
            version,
        });
    };
    if target.status == ModelStatus::Active {
        return Err(RegistryError::AlreadyActive {
            name: name.to_string(),
            version,
        });
    }
    let mut changes: Vec<StatusChange> = versions
        .iter()
        .filter(|v| v.status == ModelStatus::Active)
        .map(|v| StatusChange {
            version: v.version,
            status: ModelStatus::Retired,
            activated_at_ms: v.activated_at_ms,
        })
        .collect();
    changes.push(StatusChange {
        version,
        status: ModelStatus::Active,
        activated_at_ms: Some(now_ms),
    });
    Ok(changes)
}

/// Retires the active version and re-activates the one active most recently before it.
pub fn rollback(
    name: &str,
    versions: &[VersionState],
    now_ms: i64,
) -> Result<Vec<StatusChange>, RegistryError> {
    let active = versions.iter().find(|v| v.status == ModelStatus::Active);
    let before = active.and_then(|a| a.activated_at_ms).unwrap_or(i64::MAX);
    let previous = versions
        .iter()
        .filter(|v| {
            v.status == ModelStatus::Retired && v.activated_at_ms.is_some_and(|t| t <= before)
        })
        .max_by_key(|v| (v.activated_at_ms, v.version))
        .ok_or_else(|| RegistryError::NothingToRollBackTo {
            name: name.to_string(),
        })?;
    let mut changes = Vec::new();
    if let Some(a) = active {
        // Rolled back: it must not be what a later rollback returns to.
        changes.push(StatusChange {
            version: a.version,
            status: ModelStatus::Retired,
            activated_at_ms: None,
        });
    }
    changes.push(StatusChange {
        version: previous.version,
        status: ModelStatus::Active,
        activated_at_ms: Some(now_ms),
    });
    Ok(changes)
}

/// Applies changes to a list of states (what storage does, for tests and callers in memory).
pub fn apply(versions: &mut [VersionState], changes: &[StatusChange]) {
    for c in changes {
        if let Some(v) = versions.iter_mut().find(|v| v.version == c.version) {
            v.status = c.status;
            v.activated_at_ms = c.activated_at_ms;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate(version: i64) -> VersionState {
        VersionState {
            version,
            status: ModelStatus::Candidate,
            activated_at_ms: None,
        }
    }

    fn active(v: &[VersionState]) -> Vec<i64> {
        v.iter()
            .filter(|s| s.status == ModelStatus::Active)
            .map(|s| s.version)
            .collect()
    }

    #[test]
    fn activate_keeps_one_active_and_rollback_returns_to_the_previous() {
        let mut v = vec![candidate(1), candidate(2), candidate(3)];
        let mut step = |change: fn(&[VersionState]) -> Result<Vec<StatusChange>, RegistryError>| {
            let changes = change(&v).unwrap();
            apply(&mut v, &changes);
            active(&v)
        };
        assert_eq!(step(|v| activate("demand", v, 1, 10)), vec![1]);
        assert_eq!(step(|v| activate("demand", v, 2, 20)), vec![2]);
        assert_eq!(step(|v| activate("demand", v, 3, 30)), vec![3]);
        assert_eq!(step(|v| rollback("demand", v, 40)), vec![2]);
        assert_eq!(step(|v| rollback("demand", v, 50)), vec![1]);
        assert_eq!(
            rollback("demand", &v, 60),
            Err(RegistryError::NothingToRollBackTo {
                name: "demand".into()
            })
        );
    }

    #[test]
    fn refusals_name_the_problem() {
        let v = vec![VersionState {
            version: 1,
            status: ModelStatus::Active,
            activated_at_ms: Some(1),
        }];
        assert!(matches!(
            activate("demand", &v, 1, 2),
            Err(RegistryError::AlreadyActive { .. })
        ));
        assert!(matches!(
            activate("demand", &v, 9, 2),
            Err(RegistryError::UnknownVersion { .. })
        ));
        assert_eq!(ModelStatus::parse("retired"), Some(ModelStatus::Retired));
        assert_eq!(ModelStatus::parse("gone"), None);
    }
}
