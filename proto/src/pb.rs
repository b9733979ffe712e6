//! Generated protobuf and gRPC code (kept out of sight, re-exported by contract).

/// `openshell.compute.v1`: the ComputeDriver contract.
pub mod compute {
    /// Version 1 of the contract.
    #[allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]
    pub mod v1 {
        tonic::include_proto!("openshell.compute.v1");
    }

    /// The ComputeDriver server whose ListSandboxes reply and Watch events carry
    /// sandboxes already encoded ([`encoded::ListSandboxesReply`],
    /// [`encoded::WatchEvent`]); every other message is [`v1`]'s. Clients keep [`v1`]:
    /// the bytes on the wire are the same.
    pub mod encoded {
        mod event;
        mod reply;
        pub use event::{Payload as WatchPayload, SandboxEvent, WatchEvent};
        pub use reply::ListSandboxesReply;

        #[allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]
        mod generated {
            include!(concat!(
                env!("OUT_DIR"),
                "/compute_encoded/openshell.compute.v1.rs"
            ));
        }
        pub use generated::compute_driver_server;
    }
}

/// `openshell.credentials.v1`: the CredentialsDriver contract (plural service name).
pub mod credentials {
    /// Version 1 of the contract, with our additive extensions.
    #[allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]
    pub mod v1 {
        tonic::include_proto!("openshell.credentials.v1");
    }
}

/// Upstream OpenShell's credential-store contract (`CredentialDriver`, singular), in a
/// module of its own: its message names clash with [`credentials::v1`]'s. The module
/// tree mirrors the packages (`openshell.credentials.v1`, `openshell.datamodel.v1`)
/// under `upstream` in place of `openshell`.
pub mod upstream {
    /// `openshell.credentials.v1` as upstream writes it.
    pub mod credentials {
        /// Version 1.
        #[allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]
        pub mod v1 {
            include!(concat!(
                env!("OUT_DIR"),
                "/upstream/openshell.credentials.v1.rs"
            ));
        }
    }

    /// `openshell.datamodel.v1`: the handle type.
    pub mod datamodel {
        /// Version 1.
        #[allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]
        pub mod v1 {
            include!(concat!(
                env!("OUT_DIR"),
                "/upstream/openshell.datamodel.v1.rs"
            ));
        }
    }
}

/// `openshell.gateway.v1`: the gateway's public API.
pub mod gateway {
    /// Version 1 of the API.
    #[allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]
    pub mod v1 {
        tonic::include_proto!("openshell.gateway.v1");

        /// What one gateway method requires, from its `auth` option in `gateway.proto`.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub struct MethodAuthEntry {
            /// The gRPC path, `/openshell.gateway.v1.Gateway/<Method>`.
            pub path: &'static str,
            /// An [`AuthMode`] number (0 when the method declares none).
            pub mode: i32,
            /// A [`Role`] number.
            pub role: i32,
            /// The scope it needs; empty for none.
            pub scope: &'static str,
        }

        include!(concat!(env!("OUT_DIR"), "/gateway_method_auth.rs"));
    }
}

/// `grpc.health.v1`, as served by every socket of the suite.
pub use tonic_health::pb as health;

#[cfg(test)]
mod tests {
    use super::compute::v1 as compute;
    use super::credentials::v1 as credentials;
    use prost::Message;

    #[test]
    fn service_paths_match_the_deployed_contracts() {
        assert_eq!(
            compute::compute_driver_server::SERVICE_NAME,
            "openshell.compute.v1.ComputeDriver"
        );
        assert_eq!(
            credentials::credentials_driver_server::SERVICE_NAME,
            "openshell.credentials.v1.CredentialsDriver"
        );
    }

    /// A request from a deployed gateway (only `name`, field 1) decodes, and a response
    /// from our driver keeps fields 1-3 where deployed gateways read them.
    #[test]
    fn credentials_fields_one_to_three_keep_their_wire_positions() {
        // Field 1, wire type 2 (length-delimited), "gh".
        let deployed_request = [0x0a, 0x02, b'g', b'h'];
        let decoded = credentials::ResolveCredentialRequest::decode(&deployed_request[..]).unwrap();
        assert_eq!(decoded.name, "gh");
        assert!(decoded.subject_token.is_empty());

        let response = credentials::ResolveCredentialResponse {
            token: "t".into(),
            expires_at_ms: 5,
            token_type: "Bearer".into(),
            granted_scopes: vec!["a".into()],
            issued_token_type: String::new(),
            served_from: String::new(),
        };
        let bytes = response.encode_to_vec();
        assert_eq!(&bytes[..3], &[0x0a, 0x01, b't']);
        assert_eq!(&bytes[3..5], &[0x10, 0x05]);
        assert_eq!(&bytes[5..7], &[0x1a, 0x06]);
    }

    /// `policy` (field 7) is carried as bytes: an embedded message encoded by another
    /// gateway arrives byte for byte and is re-encoded unchanged.
    #[test]
    fn sandbox_policy_is_carried_opaquely() {
        let policy_message = [0x0a, 0x03, b'a', b'b', b'c'];
        let mut wire = vec![0x3a, policy_message.len() as u8];
        wire.extend_from_slice(&policy_message);
        let spec = compute::DriverSandboxSpec::decode(&wire[..]).unwrap();
        assert_eq!(spec.policy, policy_message);
        assert_eq!(spec.encode_to_vec(), wire);
    }

    #[test]
    fn unknown_fields_are_ignored() {
        // Field 99 (varint) followed by field 1 = "x".
        let wire = [0x98, 0x06, 0x01, 0x0a, 0x01, b'x'];
        let caps = compute::GetCapabilitiesResponse::decode(&wire[..]).unwrap();
        assert_eq!(caps.driver_name, "x");
    }
}
