//! Identity asserted by a trusted authenticating proxy (Authorino, an API gateway) in
//! request headers, accepted only on the listener the operator declares as reached by
//! that proxy (`--trusted-proxy-listen`), and only from a proxy that passes the
//! listener's check: its source address, a shared secret header (compared in constant
//! time), or its client certificate (the listener then speaks TLS and requires one
//! from `--trusted-proxy-client-ca`). On every other listener the same headers are
//! stripped before any decision.
//!
//! What the headers say (all names configurable):
//! - the principal header: the caller's subject (missing or empty: UNAUTHENTICATED);
//! - an attributes header: a JSON object of category → string or array of strings;
//! - attribute headers, each mapped to a category: a JSON array of strings or a
//!   comma-separated list, merged with the attributes header's values;
//! - the tenant: a header, or an attribute category with exactly one value;
//! - roles: the values of the roles category (`admin`/`platform admin` role names).
//!
//! Malformed values are UNAUTHENTICATED; the reason goes to the log, not the reply.
//! Principals from here get owner keys of their own namespace
//! ([`super::owner::proxy_owner`]).

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use http::{HeaderMap, HeaderName};

use super::owner::proxy_owner;
use super::{Identity, Principal, User, is_label_value};

/// Header names the gateway reserves: a proxy's configuration may not read them.
const RESERVED_PREFIX: &str = "x-gateway-inference-";

/// The trusted-proxy listener's configuration (the `--trusted-proxy-*` flags).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrustedProxyConfig {
    /// Where the listener binds.
    pub listen: SocketAddr,
    /// Peers allowed to connect (empty: any address, when another check is set).
    pub allowed_peers: Vec<Cidr>,
    /// File holding the shared secret the proxy sends in `secret_header`.
    pub secret_file: Option<PathBuf>,
    /// Header carrying the shared secret.
    pub secret_header: String,
    /// CA the proxy's client certificate must chain to (TLS on the listener).
    pub client_ca: Option<PathBuf>,
    /// Header naming the principal.
    pub principal_header: String,
    /// Header carrying a JSON object of category → values.
    pub attributes_header: Option<String>,
    /// Header name → attribute category.
    pub attribute_headers: BTreeMap<String, String>,
    /// Header naming the tenant.
    pub tenant_header: Option<String>,
    /// Attribute category naming the tenant (one value).
    pub tenant_attribute: Option<String>,
    /// Attribute category holding roles.
    pub roles_attribute: String,
    /// Role of tenant admins.
    pub admin_role: String,
    /// Role of platform admins (`None`: nobody).
    pub platform_admin_role: Option<String>,
}

/// An IP network (`10.0.0.0/8`, `::1/128`; a bare address is a /32 or /128).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl std::str::FromStr for Cidr {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, String> {
        let (address, prefix) = value.split_once('/').unwrap_or((value, ""));
        let network: IpAddr = address
            .trim()
            .parse()
            .map_err(|_| format!("{value:?} is not an address or ADDRESS/PREFIX"))?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = if prefix.is_empty() {
            max
        } else {
            prefix
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{value:?}: the prefix must be 0 to {max}"))?
        };
        Ok(Self { network, prefix })
    }
}

impl Cidr {
    /// Whether `ip` is in this network (IPv4-mapped IPv6 peers count as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 @ IpAddr::V4(_) => v4,
        };
        let (a, b, bits) = match (self.network, ip) {
            (IpAddr::V4(n), IpAddr::V4(i)) => (
                u128::from(u32::from(n)) << 96,
                u128::from(u32::from(i)) << 96,
                self.prefix,
            ),
            (IpAddr::V6(n), IpAddr::V6(i)) => (u128::from(n), u128::from(i), self.prefix),
            _ => return false,
        };
        let mask = if bits == 0 {
            0
        } else {
            u128::MAX << (128 - u32::from(bits))
        };
        a & mask == b & mask
    }
}

/// Why an assertion was refused: `public` for the reply, `reason` for the log.
#[derive(Debug, PartialEq, Eq)]
pub struct Refusal {
    /// What the caller is told.
    pub public: &'static str,
    /// What the log says.
    pub reason: String,
}

impl Refusal {
    fn malformed(reason: String) -> Self {
        Self {
            public: "the proxy's identity headers are malformed",
            reason,
        }
    }
}

/// The loaded configuration: names parsed, the secret's digest read.
#[derive(Clone, Debug)]
pub struct TrustedProxy {
    config: TrustedProxyConfig,
    secret: Option<super::SharedSecret>,
    secret_header: HeaderName,
    principal_header: HeaderName,
    attributes_header: Option<HeaderName>,
    attribute_headers: Vec<(HeaderName, String)>,
    tenant_header: Option<HeaderName>,
}

impl TrustedProxy {
    /// Checks `config` and reads the secret file (which others must not read).
    ///
    /// # Errors
    /// A message naming the flag to fix.
    pub fn load(config: TrustedProxyConfig) -> Result<Self, String> {
        if config.allowed_peers.is_empty()
            && config.secret_file.is_none()
            && config.client_ca.is_none()
        {
            return Err("--trusted-proxy-listen needs at least one check of the proxy: --trusted-proxy-peer, --trusted-proxy-secret-file or --trusted-proxy-client-ca".into());
        }
        if config.tenant_header.is_some() && config.tenant_attribute.is_some() {
            return Err(
                "set --trusted-proxy-tenant-header or --trusted-proxy-tenant-attribute, not both"
                    .into(),
            );
        }
        let secret = match &config.secret_file {
            Some(file) => {
                let text = super::read_shared_secret("--trusted-proxy-secret-file", file)?;
                Some(super::SharedSecret::of(&text))
            }
            None => None,
        };
        let name = |flag: &str, value: &str| -> Result<HeaderName, String> {
            let header = HeaderName::from_bytes(value.as_bytes())
                .map_err(|_| format!("{flag} {value:?} is not an HTTP header name"))?;
            if header.as_str().starts_with(RESERVED_PREFIX) {
                return Err(format!(
                    "{flag} {value:?}: `{RESERVED_PREFIX}*` headers are set by the gateway only"
                ));
            }
            Ok(header)
        };
        let attribute_headers = config
            .attribute_headers
            .iter()
            .map(|(header, category)| {
                Ok((
                    name("--trusted-proxy-attribute-header", header)?,
                    category.clone(),
                ))
            })
            .collect::<Result<_, String>>()?;
        Ok(Self {
            secret,
            secret_header: name("--trusted-proxy-secret-header", &config.secret_header)?,
            principal_header: name("--trusted-proxy-principal-header", &config.principal_header)?,
            attributes_header: config
                .attributes_header
                .as_deref()
                .map(|h| name("--trusted-proxy-attributes-header", h))
                .transpose()?,
            attribute_headers,
            tenant_header: config
                .tenant_header
                .as_deref()
                .map(|h| name("--trusted-proxy-tenant-header", h))
                .transpose()?,
            config,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &TrustedProxyConfig {
        &self.config
    }

    /// What start-up says about how the proxy is checked.
    pub fn checks(&self) -> String {
        let mut checks = Vec::new();
        if !self.config.allowed_peers.is_empty() {
            checks.push(format!("source address in {:?}", self.config.allowed_peers));
        }
        if self.secret.is_some() {
            checks.push(format!("shared secret in {}", self.secret_header));
        }
        if self.config.client_ca.is_some() {
            checks.push("client certificate (TLS)".to_owned());
        }
        checks.join(" and ")
    }

    /// Every header this configuration reads: stripped from requests on every
    /// listener after (on this one) they are read.
    pub fn header_names(&self) -> Vec<HeaderName> {
        [&self.secret_header, &self.principal_header]
            .into_iter()
            .chain(&self.attributes_header)
            .chain(self.attribute_headers.iter().map(|(h, _)| h))
            .chain(&self.tenant_header)
            .cloned()
            .collect()
    }

    /// The listener's check of the connecting proxy (its certificate was checked by
    /// the TLS handshake already).
    ///
    /// # Errors
    /// A [`Refusal`] naming the failed check in the log.
    pub fn admit(&self, headers: &HeaderMap, peer: Option<SocketAddr>) -> Result<(), Refusal> {
        let refused = |reason: String| Refusal {
            public: "this listener accepts calls from the trusted proxy only",
            reason,
        };
        if !self.config.allowed_peers.is_empty() {
            let ip = peer.map(|p| p.ip());
            if !ip.is_some_and(|ip| self.config.allowed_peers.iter().any(|c| c.contains(ip))) {
                return Err(refused(format!(
                    "peer {peer:?} is not an allowed proxy address"
                )));
            }
        }
        if let Some(expected) = &self.secret {
            let presented = headers.get(&self.secret_header).map(|v| v.as_bytes());
            if !expected.matches(presented) {
                return Err(refused(format!(
                    "missing or wrong shared secret in {}",
                    self.secret_header
                )));
            }
        }
        Ok(())
    }

    /// The principal the headers assert.
    ///
    /// # Errors
    /// A [`Refusal`]: no principal, or malformed values.
    pub fn principal(&self, headers: &HeaderMap) -> Result<Principal, Refusal> {
        let subject = single(headers, &self.principal_header)?
            .filter(|s| !s.is_empty())
            .ok_or_else(|| Refusal {
                public: "no principal: the proxy sent no identity",
                reason: format!("missing or empty {}", self.principal_header),
            })?;
        let attributes = self.attributes(headers)?;
        let tenant = match (&self.tenant_header, &self.config.tenant_attribute) {
            (Some(header), _) => Some(single(headers, header)?.unwrap_or_default()),
            (None, Some(category)) => Some(match attributes.get(category) {
                Some(values) if values.len() == 1 => {
                    values.iter().next().cloned().unwrap_or_default()
                }
                _ => String::new(),
            }),
            (None, None) => None,
        };
        let tenant = match tenant {
            Some(tenant) if is_label_value(&tenant) => tenant,
            Some(tenant) => {
                return Err(Refusal {
                    public: "no tenant: the proxy named none (or not one valid name)",
                    reason: format!("tenant {tenant:?} is missing or not a label value"),
                });
            }
            None => crate::store::DEFAULT_TENANT.to_owned(),
        };
        let roles = attributes.get(&self.config.roles_attribute);
        let has = |role: &str| roles.is_some_and(|r| r.contains(role));
        let platform_admin = self.config.platform_admin_role.as_deref().is_some_and(has);
        let user = User {
            owner: proxy_owner(&subject),
            subject,
            admin: platform_admin || has(&self.config.admin_role),
            platform_admin,
            user_role: true,
            scopes: None,
            bearer: None,
        };
        let mut principal = Principal::new(Identity::User(user)).in_tenant(tenant);
        principal.attributes = attributes;
        Ok(principal)
    }

    fn attributes(
        &self,
        headers: &HeaderMap,
    ) -> Result<BTreeMap<String, BTreeSet<String>>, Refusal> {
        let mut attributes: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        if let Some(header) = &self.attributes_header {
            for value in headers.get_all(header) {
                let text = text(header, value)?;
                let object: BTreeMap<String, serde_json::Value> = serde_json::from_str(text)
                    .map_err(|e| Refusal::malformed(format!("{header}: not a JSON object: {e}")))?;
                for (category, values) in object {
                    let values = match values {
                        serde_json::Value::String(one) => vec![one],
                        other => strings(header, other)?,
                    };
                    attributes.entry(category).or_default().extend(values);
                }
            }
        }
        for (header, category) in &self.attribute_headers {
            for value in headers.get_all(header) {
                let text = text(header, value)?.trim();
                let values = if text.starts_with('[') {
                    let parsed = serde_json::from_str(text).map_err(|e| {
                        Refusal::malformed(format!("{header}: not a JSON array: {e}"))
                    })?;
                    strings(header, parsed)?
                } else {
                    text.split(',').map(|v| v.trim().to_owned()).collect()
                };
                attributes
                    .entry(category.clone())
                    .or_default()
                    .extend(values.into_iter().filter(|v| !v.is_empty()));
            }
        }
        attributes.retain(|_, values| !values.is_empty());
        Ok(attributes)
    }
}

/// The one value of `header` (`None` when absent).
fn single(headers: &HeaderMap, header: &HeaderName) -> Result<Option<String>, Refusal> {
    let mut values = headers.get_all(header).iter();
    let Some(first) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(Refusal::malformed(format!(
            "{header} is sent more than once"
        )));
    }
    Ok(Some(text(header, first)?.trim().to_owned()))
}

fn text<'a>(header: &HeaderName, value: &'a http::HeaderValue) -> Result<&'a str, Refusal> {
    value
        .to_str()
        .map_err(|_| Refusal::malformed(format!("{header} is not visible ASCII")))
}

fn strings(header: &HeaderName, value: serde_json::Value) -> Result<Vec<String>, Refusal> {
    let serde_json::Value::Array(items) = value else {
        return Err(Refusal::malformed(format!(
            "{header}: values must be strings or arrays of strings"
        )));
    };
    items
        .into_iter()
        .map(|item| match item {
            serde_json::Value::String(s) => Ok(s),
            _ => Err(Refusal::malformed(format!(
                "{header}: values must be strings or arrays of strings"
            ))),
        })
        .collect()
}

#[cfg(test)]
mod tests;
