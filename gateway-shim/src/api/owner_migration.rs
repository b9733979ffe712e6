//! The one-time rewrite of owner keys stamped before they were namespaced
//! ([`crate::auth::owner`]): a pure function from a stored record to its rewritten form.
//! Owner keys appear in the owner column, in bodies (`owner`), in the keys of users'
//! providers (`<owner>/<name>`) and routes (`inference.local/<owner>`), and in the
//! provider keys sandboxes and routes refer to; all of them move together, in one store
//! transaction ([`crate::store::Store::rewrite_once`]).

use prost::Message as _;
use proto::pb::gateway::v1 as pb;

use super::names::INFERENCE_ROUTE;
use crate::auth::owner::from_legacy;
use crate::store::{Kind, Record};

/// `record` with every legacy owner key rewritten into `namespace`; `None` when
/// nothing changes (or the body does not decode: such a record is left as it is).
pub fn rewrite(record: &Record, namespace: &str) -> Option<Record> {
    let mut out = record.clone();
    if let Some(owner) = from_legacy(&record.owner, namespace) {
        out.owner = owner;
    }
    match record.kind {
        Kind::Sandbox => {
            let mut sandbox = pb::Sandbox::decode(record.body.as_slice()).ok()?;
            sandbox.owner = from_legacy(&sandbox.owner, namespace).unwrap_or(sandbox.owner);
            sandbox.providers = sandbox
                .providers
                .iter()
                .map(|key| provider_key(key, namespace))
                .collect();
            out.body = sandbox.encode_to_vec();
        }
        Kind::Provider => {
            let mut provider = pb::Provider::decode(record.body.as_slice()).ok()?;
            out.key = provider_key(&record.key, namespace);
            out.name = out.key.clone();
            provider.name = out.key.clone();
            provider.owner = from_legacy(&provider.owner, namespace).unwrap_or(provider.owner);
            out.body = provider.encode_to_vec();
        }
        Kind::InferenceRoute => {
            let mut route = pb::InferenceRoute::decode(record.body.as_slice()).ok()?;
            if let Some(owner) = record
                .key
                .strip_prefix(INFERENCE_ROUTE)
                .and_then(|rest| rest.strip_prefix('/'))
                && let Some(new) = from_legacy(owner, namespace)
            {
                out.key = format!("{INFERENCE_ROUTE}/{new}");
                out.name = out.key.clone();
            }
            route.owner = from_legacy(&route.owner, namespace).unwrap_or(route.owner);
            route.provider = provider_key(&route.provider, namespace);
            out.body = route.encode_to_vec();
        }
        // The body names no owner; the record's owner column is rewritten above.
        Kind::SandboxSettings => {}
        Kind::Setting | Kind::ApiKey => return None,
    }
    (out != *record).then_some(out)
}

/// A provider key with its owner part (if any) rewritten.
fn provider_key(key: &str, namespace: &str) -> String {
    match key.split_once('/') {
        Some((owner, name)) => match from_legacy(owner, namespace) {
            Some(new) => format!("{new}/{name}"),
            None => key.to_owned(),
        },
        None => key.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NS: &str = "oidc-0123abcd";

    fn record(kind: Kind, key: &str, owner: &str, body: Vec<u8>) -> Record {
        let mut record = Record::new(kind, key, key, owner);
        record.body = body;
        record.version = 3;
        record
    }

    #[test]
    fn every_place_an_owner_key_lives_is_rewritten() {
        let sandbox = pb::Sandbox {
            id: "sb-1".into(),
            name: "box".into(),
            owner: "alice".into(),
            providers: vec!["alice/openai".into(), "shared".into()],
            ..Default::default()
        };
        let mut old = record(Kind::Sandbox, "sb-1", "alice", sandbox.encode_to_vec());
        old.name = "box".into();
        let new = rewrite(&old, NS).unwrap();
        let body = pb::Sandbox::decode(new.body.as_slice()).unwrap();
        assert_eq!((new.key.as_str(), new.name.as_str()), ("sb-1", "box"));
        assert_eq!(new.owner, "oidc-0123abcd.alice");
        assert_eq!(body.owner, "oidc-0123abcd.alice");
        assert_eq!(body.providers, ["oidc-0123abcd.alice/openai", "shared"]);

        let provider = pb::Provider {
            name: "u-0123456789abcdef01234567/p".into(),
            owner: "u-0123456789abcdef01234567".into(),
            ..Default::default()
        };
        let old = record(
            Kind::Provider,
            "u-0123456789abcdef01234567/p",
            "u-0123456789abcdef01234567",
            provider.encode_to_vec(),
        );
        let new = rewrite(&old, NS).unwrap();
        assert_eq!(new.key, "oidc-0123abcd.h--0123456789abcdef01234567/p");
        assert_eq!(new.name, new.key);
        assert_eq!(new.version, 3);

        let route = pb::InferenceRoute {
            provider: "bob/llm".into(),
            owner: "bob".into(),
            ..Default::default()
        };
        let old = record(
            Kind::InferenceRoute,
            "inference.local/bob",
            "bob",
            route.encode_to_vec(),
        );
        let new = rewrite(&old, NS).unwrap();
        let body = pb::InferenceRoute::decode(new.body.as_slice()).unwrap();
        assert_eq!(new.key, "inference.local/oidc-0123abcd.bob");
        assert_eq!(body.provider, "oidc-0123abcd.bob/llm");
    }

    #[test]
    fn the_local_owner_and_shared_objects_stay() {
        let provider = pb::Provider {
            name: "shared".into(),
            owner: "local".into(),
            ..Default::default()
        };
        let old = record(Kind::Provider, "shared", "local", provider.encode_to_vec());
        assert_eq!(rewrite(&old, NS), None);
        let global = pb::InferenceRoute {
            provider: "shared".into(),
            owner: "local".into(),
            ..Default::default()
        };
        let old = record(
            Kind::InferenceRoute,
            INFERENCE_ROUTE,
            "local",
            global.encode_to_vec(),
        );
        assert_eq!(rewrite(&old, NS), None);
        let key = record(Kind::Setting, "sandbox-token-key", "", vec![1; 32]);
        assert_eq!(rewrite(&key, NS), None);
    }
}
