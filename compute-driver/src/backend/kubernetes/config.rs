//! Settings of the Kubernetes backend, and where a sandbox's objects live (pure).
//!
//! Two layouts, chosen by flag: a namespace per workspace (`<base>-<workspace>`, created
//! and labelled by EnsureWorkspace or the first Create; sandboxes without a workspace go
//! to `<base>`), or one shared namespace `<base>` whose object names are
//! `<workspace>--<name>`.

use std::path::PathBuf;
use std::time::Duration;

use crate::validate::InvalidField;

/// How sandboxes are spread over namespaces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Namespaces {
    /// `<base>-<workspace>` per workspace (needs cluster-wide permissions).
    PerWorkspace,
    /// Everything in `<base>`, names prefixed by the workspace (a namespaced Role is
    /// enough).
    Shared,
}

/// Settings of the Kubernetes backend.
#[derive(Clone, Debug)]
pub struct Config {
    /// A kubeconfig file; `None`: in-cluster config, else `$KUBECONFIG` or
    /// `~/.kube/config`.
    pub kubeconfig: Option<PathBuf>,
    /// The namespace layout.
    pub namespaces: Namespaces,
    /// The base (or shared) namespace.
    pub namespace: String,
    /// This driver's gateway id, a label on everything it creates; drivers with
    /// different ids never see each other's sandboxes.
    pub gateway_id: String,
    /// Image for sandboxes that name none (empty: each sandbox must name one).
    pub default_image: String,
    /// `imagePullPolicy` of sandbox containers.
    pub image_pull_policy: String,
    /// Bound of each Kubernetes call when the RPC carries no deadline.
    pub call_timeout: Duration,
    /// The supervisor option: the image it is side-loaded from and the gateway endpoint.
    pub supervisor: Option<crate::supervisor::Supervisor>,
}

/// Where one sandbox's Secret and Pod live.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placement {
    /// Their namespace.
    pub namespace: String,
    /// The name of both objects.
    pub object_name: String,
}

const MAX_NAMESPACE: usize = 63;

impl Config {
    /// The namespace of `workspace` (empty: the base namespace).
    ///
    /// # Errors
    /// When the resulting namespace name would be too long, naming `field`.
    pub fn namespace_of(&self, field: &str, workspace: &str) -> Result<String, InvalidField> {
        let namespace = match self.namespaces {
            Namespaces::PerWorkspace if !workspace.is_empty() => {
                format!("{}-{workspace}", self.namespace)
            }
            _ => self.namespace.clone(),
        };
        if namespace.len() > MAX_NAMESPACE {
            return Err(InvalidField {
                field: field.into(),
                reason: format!(
                    "its namespace {namespace:?} would be longer than {MAX_NAMESPACE} characters: use a shorter workspace name (or a shorter --kube-namespace)"
                ),
            });
        }
        Ok(namespace)
    }

    /// Where the sandbox `name` of `workspace` lives.
    ///
    /// # Errors
    /// See [`Config::namespace_of`].
    pub fn placement(&self, workspace: &str, name: &str) -> Result<Placement, InvalidField> {
        let namespace = self.namespace_of("sandbox.workspace", workspace)?;
        let object_name = match self.namespaces {
            Namespaces::Shared if !workspace.is_empty() => format!("{workspace}--{name}"),
            _ => name.to_owned(),
        };
        Ok(Placement {
            namespace,
            object_name,
        })
    }

    /// The label selector of every object this driver manages.
    pub fn selector(&self) -> String {
        format!(
            "{}={},{}={}",
            super::pod_spec::MANAGED_BY,
            super::pod_spec::MANAGER,
            super::pod_spec::GATEWAY_ID,
            self.gateway_id
        )
    }
}

/// Checks a label value (the gateway id, sandbox ids): at most 63 characters of
/// letters, digits, `-`, `_`, `.`, beginning and ending with a letter or digit.
///
/// # Errors
/// Naming `field`.
pub fn label_value(field: &str, value: &str) -> Result<(), InvalidField> {
    let alnum = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    let ok = value.len() <= 63
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && (value.is_empty() || (alnum(value.chars().next()) && alnum(value.chars().last())));
    if ok {
        Ok(())
    } else {
        Err(InvalidField {
            field: field.into(),
            reason: format!(
                "{value:?} cannot be a Kubernetes label value: use at most 63 letters, digits, '-', '_' or '.', beginning and ending with a letter or digit"
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(namespaces: Namespaces) -> Config {
        Config {
            kubeconfig: None,
            namespaces,
            namespace: "openshell".into(),
            gateway_id: "gw".into(),
            default_image: String::new(),
            image_pull_policy: "IfNotPresent".into(),
            call_timeout: Duration::from_secs(30),
            supervisor: None,
        }
    }

    #[test]
    fn per_workspace_puts_each_workspace_in_its_namespace() {
        let c = config(Namespaces::PerWorkspace);
        let p = c.placement("team-a", "box").unwrap();
        assert_eq!(
            (p.namespace.as_str(), p.object_name.as_str()),
            ("openshell-team-a", "box")
        );
        assert_eq!(c.placement("", "box").unwrap().namespace, "openshell");
    }

    #[test]
    fn shared_prefixes_names_with_the_workspace() {
        let c = config(Namespaces::Shared);
        let p = c.placement("team-a", "box").unwrap();
        assert_eq!(
            (p.namespace.as_str(), p.object_name.as_str()),
            ("openshell", "team-a--box")
        );
        assert_eq!(c.placement("", "box").unwrap().object_name, "box");
    }

    #[test]
    fn a_namespace_too_long_names_the_field() {
        let c = config(Namespaces::PerWorkspace);
        let error = c.placement(&"w".repeat(60), "box").unwrap_err();
        assert_eq!(error.field, "sandbox.workspace");
        assert!(
            error.reason.contains("shorter workspace"),
            "{}",
            error.reason
        );
    }

    #[test]
    fn label_values_are_checked() {
        assert!(label_value("sandbox.id", "sb-1.A_b").is_ok());
        for bad in ["-a", "a-", &"x".repeat(64), "a/b"] {
            assert_eq!(
                label_value("sandbox.id", bad).unwrap_err().field,
                "sandbox.id"
            );
        }
    }
}
