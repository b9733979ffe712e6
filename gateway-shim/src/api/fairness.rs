//! The headers the gateway adds to every inference bundle's route, for the inference
//! scheduler downstream (llm-d's endpoint picker and the like):
//!
//! - `x-gateway-inference-fairness-id`: the key the scheduler shares capacity by, so
//!   one tenant (or team) cannot starve the others. By default the sandbox's tenant;
//!   with `--inference-fairness-attribute <category>`, the first value (in sorted
//!   order) of that attribute category of the sandbox owner's identity when it created
//!   the sandbox (stamped on the record then; the tenant when the owner had none).
//! - `x-gateway-inference-objective`: when `--inference-objective` is set.
//!
//! Values come only from configuration and authenticated identity, never from request
//! headers: client-sent `x-gateway-*` headers are stripped before authentication, and
//! routes may not declare these names.

use std::collections::BTreeMap;

use crate::auth::Principal;
use crate::store::Record;

/// The scheduler's fairness key.
pub const FAIRNESS_HEADER: &str = "x-gateway-inference-fairness-id";
/// The inference objective.
pub const OBJECTIVE_HEADER: &str = "x-gateway-inference-objective";
/// Record-level label holding a sandbox's fairness id, stamped at create.
pub const FAIRNESS_LABEL: &str = "openshell.io/fairness-id";

/// What the gateway adds (from `--inference-fairness-attribute`,
/// `--inference-objective`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Fairness {
    /// Attribute category the fairness id comes from; `None`: the tenant.
    pub attribute: Option<String>,
    /// The objective header's value, when set.
    pub objective: Option<String>,
}

impl Fairness {
    /// The fairness id to stamp on a sandbox `who` creates, when it does not come
    /// from the tenant.
    pub fn stamp_for(&self, who: &Principal) -> Option<String> {
        let category = self.attribute.as_ref()?;
        who.attributes
            .get(category)?
            .iter()
            .find(|value| http::HeaderValue::from_str(value).is_ok() && value.len() <= 256)
            .cloned()
    }

    /// The headers for a bundle of the sandbox `record` in `tenant`.
    pub fn headers(&self, tenant: &str, record: &Record) -> BTreeMap<String, String> {
        let id = match &self.attribute {
            Some(_) => record
                .labels
                .get(FAIRNESS_LABEL)
                .map_or(tenant, String::as_str),
            None => tenant,
        };
        let mut headers = BTreeMap::from([(FAIRNESS_HEADER.to_owned(), id.to_owned())]);
        if let Some(objective) = &self.objective {
            headers.insert(OBJECTIVE_HEADER.to_owned(), objective.clone());
        }
        headers
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{Identity, SandboxIdentity};
    use crate::store::Kind;

    fn member_of(teams: &[&str]) -> Principal {
        let mut who = Principal::new(Identity::Sandbox(SandboxIdentity {
            id: "sb".into(),
            owner: "bob".into(),
        }))
        .in_tenant("acme");
        who.attributes.insert(
            "teams".into(),
            teams.iter().map(|t| (*t).to_owned()).collect(),
        );
        who
    }

    #[test]
    fn the_tenant_by_default_an_attribute_when_configured() {
        let record = Record::new(Kind::Sandbox, "sb", "n", "bob");
        let by_tenant = Fairness::default();
        assert_eq!(by_tenant.stamp_for(&member_of(&["ml"])), None);
        assert_eq!(by_tenant.headers("acme", &record)[FAIRNESS_HEADER], "acme");
        assert!(
            !by_tenant
                .headers("acme", &record)
                .contains_key(OBJECTIVE_HEADER)
        );

        let by_team = Fairness {
            attribute: Some("teams".into()),
            objective: Some("batch".into()),
        };
        assert_eq!(
            by_team.stamp_for(&member_of(&["ml", "infra"])).as_deref(),
            Some("infra")
        );
        // A value that cannot be a header value is never used.
        assert_eq!(by_team.stamp_for(&member_of(&["bad\nvalue"])), None);
        let mut stamped = record.clone();
        stamped.labels.insert(FAIRNESS_LABEL.into(), "infra".into());
        let headers = by_team.headers("acme", &stamped);
        assert_eq!(headers[FAIRNESS_HEADER], "infra");
        assert_eq!(headers[OBJECTIVE_HEADER], "batch");
        // Not stamped (the owner had no such attribute): the tenant.
        assert_eq!(by_team.headers("acme", &record)[FAIRNESS_HEADER], "acme");
    }
}
