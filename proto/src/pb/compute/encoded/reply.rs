//! `ListSandboxesResponse` with its sandboxes already encoded.
//!
//! A repeated message field and a repeated bytes field holding those messages' encodings
//! are the same bytes on the wire (both length-delimited, field 1), so a driver that
//! keeps each sandbox encoded answers List by handing over those buffers: no clone of
//! the sandboxes and no encoding per call. Clients decode it as the contract's
//! `ListSandboxesResponse`.

use bytes::Bytes;
use prost::Message as _;

use crate::pb::compute::v1 as pb;

/// The List reply: each element one `DriverSandbox`, encoded.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ListSandboxesReply {
    /// The sandboxes, each `DriverSandbox::encode_to_vec`'s bytes.
    #[prost(bytes = "bytes", repeated, tag = "1")]
    pub sandboxes: Vec<Bytes>,
}

impl ListSandboxesReply {
    /// The reply for `sandboxes`, encoding each (for drivers that keep no encodings).
    pub fn encoding<'a>(sandboxes: impl IntoIterator<Item = &'a pb::DriverSandbox>) -> Self {
        Self {
            sandboxes: sandboxes
                .into_iter()
                .map(|sandbox| Bytes::from(sandbox.encode_to_vec()))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sandbox(id: &str) -> pb::DriverSandbox {
        pb::DriverSandbox {
            id: id.into(),
            name: format!("name-{id}"),
            namespace: "ns".into(),
            status: Some(pb::DriverSandboxStatus {
                deleting: true,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn the_reply_is_the_contracts_list_response_on_the_wire() {
        let sandboxes = [sandbox("a"), sandbox("b"), pb::DriverSandbox::default()];
        let reply = ListSandboxesReply::encoding(&sandboxes);
        let expected = pb::ListSandboxesResponse {
            sandboxes: sandboxes.to_vec(),
        };
        assert_eq!(reply.encode_to_vec(), expected.encode_to_vec());
        let decoded = pb::ListSandboxesResponse::decode(&reply.encode_to_vec()[..]).unwrap();
        assert_eq!(decoded, expected);
        assert_eq!(
            ListSandboxesReply::decode(&expected.encode_to_vec()[..]).unwrap(),
            reply
        );
    }
}
