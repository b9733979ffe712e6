//! `WatchSandboxesEvent` with its sandbox already encoded.
//!
//! An embedded message field and a bytes field holding that message's encoding are the
//! same bytes on the wire (both length-delimited, same number), so a driver that keeps
//! each sandbox encoded sends the Watch snapshot from those buffers: no clone of the
//! sandboxes and no encoding per watcher. Clients decode it as the contract's
//! `WatchSandboxesEvent`; deletions and platform events are the contract's messages.

use bytes::Bytes;

use crate::pb::compute::v1 as pb;

/// One Watch event; the `sandbox` payload carries its `DriverSandbox` encoded.
#[derive(Clone, PartialEq, prost::Message)]
pub struct WatchEvent {
    /// What happened (`WatchSandboxesEvent.payload`, same field numbers).
    #[prost(oneof = "Payload", tags = "1, 2, 3")]
    pub payload: Option<Payload>,
}

/// `WatchSandboxesEvent.payload`, the sandbox kept encoded.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum Payload {
    /// A sandbox's current state.
    #[prost(message, tag = "1")]
    Sandbox(SandboxEvent),
    /// A sandbox is gone.
    #[prost(message, tag = "2")]
    Deleted(pb::WatchSandboxesDeletedEvent),
    /// Something happened to a sandbox on the platform.
    #[prost(message, tag = "3")]
    PlatformEvent(pb::WatchSandboxesPlatformEvent),
}

/// `WatchSandboxesSandboxEvent` with `sandbox` as `DriverSandbox` bytes.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SandboxEvent {
    /// The sandbox, `DriverSandbox::encode_to_vec`'s bytes (present even when empty,
    /// as the contract's message field is).
    #[prost(bytes = "bytes", optional, tag = "1")]
    pub sandbox: Option<Bytes>,
}

impl WatchEvent {
    /// A sandbox's state, from its encoding.
    pub fn sandbox(encoded: Bytes) -> Self {
        Self {
            payload: Some(Payload::Sandbox(SandboxEvent {
                sandbox: Some(encoded),
            })),
        }
    }

    /// A sandbox is gone.
    pub fn deleted(sandbox_id: String) -> Self {
        Self {
            payload: Some(Payload::Deleted(pb::WatchSandboxesDeletedEvent {
                sandbox_id,
            })),
        }
    }

    /// Something happened to a sandbox on the platform.
    pub fn platform(sandbox_id: String, event: pb::DriverPlatformEvent) -> Self {
        Self {
            payload: Some(Payload::PlatformEvent(pb::WatchSandboxesPlatformEvent {
                sandbox_id,
                event: Some(event),
            })),
        }
    }
}

#[cfg(test)]
mod tests {
    use prost::Message as _;

    use super::*;
    use pb::watch_sandboxes_event::Payload as Contract;

    fn contract(payload: Contract) -> pb::WatchSandboxesEvent {
        pb::WatchSandboxesEvent {
            payload: Some(payload),
        }
    }

    /// Each kind of event encodes to exactly the contract's message and decodes back.
    #[test]
    fn each_event_is_the_contracts_watch_event_on_the_wire() {
        let sandbox = pb::DriverSandbox {
            id: "a".into(),
            name: "name-a".into(),
            status: Some(pb::DriverSandboxStatus {
                deleting: true,
                ..Default::default()
            }),
            ..Default::default()
        };
        let platform = pb::DriverPlatformEvent {
            reason: "Scheduled".into(),
            ..Default::default()
        };
        let pairs = [
            (
                WatchEvent::sandbox(sandbox.encode_to_vec().into()),
                contract(Contract::Sandbox(pb::WatchSandboxesSandboxEvent {
                    sandbox: Some(sandbox.clone()),
                })),
            ),
            (
                WatchEvent::sandbox(Bytes::new()),
                contract(Contract::Sandbox(pb::WatchSandboxesSandboxEvent {
                    sandbox: Some(pb::DriverSandbox::default()),
                })),
            ),
            (
                WatchEvent::deleted("a".into()),
                contract(Contract::Deleted(pb::WatchSandboxesDeletedEvent {
                    sandbox_id: "a".into(),
                })),
            ),
            (
                WatchEvent::platform("a".into(), platform.clone()),
                contract(Contract::PlatformEvent(pb::WatchSandboxesPlatformEvent {
                    sandbox_id: "a".into(),
                    event: Some(platform),
                })),
            ),
        ];
        for (ours, theirs) in pairs {
            assert_eq!(ours.encode_to_vec(), theirs.encode_to_vec(), "{theirs:?}");
            let decoded = pb::WatchSandboxesEvent::decode(&ours.encode_to_vec()[..]).unwrap();
            assert_eq!(decoded, theirs);
            assert_eq!(
                WatchEvent::decode(&theirs.encode_to_vec()[..]).unwrap(),
                ours
            );
        }
    }
}
