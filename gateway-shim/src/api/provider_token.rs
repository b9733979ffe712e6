//! The token a provider resolves to for a caller: the tenant's own key when the
//! provider is a platform provider the operator opened to tenant keys and the tenant
//! set one ([`crate::control_plane::tenant_keys`]), else the credentials driver's,
//! noting where it came from (metered as cached or fresh).

use proto::Secret;
use proto::pb::gateway::v1 as pb;

use super::Core;
use crate::drivers::{CredentialsClient, DriverError};
use crate::store::{PLATFORM_TENANT, Record};

/// Where a resolved credential came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum CredentialSource {
    /// The driver's token cache.
    Cached,
    /// A request to the identity provider for this call.
    Fresh,
    /// A static credential's file.
    File,
    /// A driver that does not say.
    Unknown,
    /// The tenant's own key from the control plane.
    TenantKey,
}

impl CredentialSource {
    /// The name metered.
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Self::Cached => "cached",
            Self::Fresh => "fresh",
            Self::File => "file",
            Self::Unknown => "unknown",
            Self::TenantKey => "tenant-key",
        }
    }

    fn from_driver(served_from: &str) -> Self {
        match served_from {
            "cache" => Self::Cached,
            "identity-provider" => Self::Fresh,
            "file" => Self::File,
            _ => Self::Unknown,
        }
    }
}

/// A provider's token for one call.
#[derive(Debug)]
pub(super) struct ProviderToken {
    /// The token.
    pub(super) token: Secret,
    /// Usually `Bearer`.
    pub(super) token_type: String,
    /// Expiry in epoch ms (0: none known).
    pub(super) expires_at_ms: i64,
    /// Where it came from.
    pub(super) source: CredentialSource,
}

/// The tenant's own key for `record` (a platform provider opened to tenant keys) for
/// a caller of `tenant`; `None`: the platform's credential serves.
pub(super) async fn tenant_token(
    core: &Core,
    tenant: &str,
    record: &Record,
) -> Option<ProviderToken> {
    let keys = core.tenant_keys.as_ref()?;
    if record.tenant != PLATFORM_TENANT || tenant == PLATFORM_TENANT {
        return None;
    }
    let token = keys.key_for(tenant, &record.key).await?;
    Some(ProviderToken {
        token,
        token_type: "Bearer".into(),
        expires_at_ms: 0,
        source: CredentialSource::TenantKey,
    })
}

/// The credentials driver's token for `provider`, with `subject` for token exchanges.
///
/// # Errors
/// The driver's status.
pub(super) async fn driver_token(
    driver: &CredentialsClient,
    provider: &pb::Provider,
    subject: Option<&Secret>,
) -> Result<ProviderToken, DriverError> {
    let resolved = driver.resolve(&provider.credential, subject).await?;
    Ok(ProviderToken {
        source: CredentialSource::from_driver(&resolved.served_from),
        token: Secret::new(resolved.token),
        token_type: resolved.token_type,
        expires_at_ms: resolved.expires_at_ms,
    })
}
