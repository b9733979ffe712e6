//! Verification keys from a JWKS, and JWS signature checks with ring.
//!
//! The algorithm is taken from the key (its `alg`, else what its type implies: RSA →
//! RS256, EC P-256 → ES256), never from the token; the token's header must name the
//! same one. Only RS256, PS256 and ES256 exist here: `none` and HS* cannot be
//! expressed, so a token using them cannot verify.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{
    ECDSA_P256_SHA256_FIXED, RSA_PKCS1_2048_8192_SHA256, RSA_PSS_2048_8192_SHA256,
    RsaPublicKeyComponents, UnparsedPublicKey,
};
use serde::Deserialize;

/// The algorithms a key may verify.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Algorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    Rs256,
    /// RSASSA-PSS with SHA-256.
    Ps256,
    /// ECDSA P-256 with SHA-256.
    Es256,
}

impl Algorithm {
    /// The JOSE name.
    pub(super) fn name(self) -> &'static str {
        match self {
            Self::Rs256 => "RS256",
            Self::Ps256 => "PS256",
            Self::Es256 => "ES256",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        match name {
            "RS256" => Some(Self::Rs256),
            "PS256" => Some(Self::Ps256),
            "ES256" => Some(Self::Es256),
            _ => None,
        }
    }
}

/// One key of a JWKS, as published.
#[derive(Clone, Debug, Deserialize)]
pub(super) struct Jwk {
    kty: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default, rename = "use")]
    usage: Option<String>,
    #[serde(default)]
    alg: Option<String>,
    #[serde(default)]
    n: Option<String>,
    #[serde(default)]
    e: Option<String>,
    #[serde(default)]
    crv: Option<String>,
    #[serde(default)]
    x: Option<String>,
    #[serde(default)]
    y: Option<String>,
}

/// A JWKS document.
#[derive(Clone, Debug, Deserialize)]
pub(super) struct JwkSet {
    /// Its keys.
    pub(super) keys: Vec<Jwk>,
}

/// A key ready to verify signatures.
#[derive(Clone, Debug)]
pub(super) struct VerifyingKey {
    /// Its id.
    pub(super) kid: String,
    /// The one algorithm it verifies.
    pub(super) alg: Algorithm,
    material: Material,
}

#[derive(Clone, Debug)]
enum Material {
    Rsa { n: Vec<u8>, e: Vec<u8> },
    EcP256 { point: Vec<u8> },
}

impl Jwk {
    /// The verifying key, or `None` for keys we never use: without `kid`, not for
    /// signatures, of another type or curve, or with an algorithm not allowed.
    pub(super) fn verifying_key(&self) -> Option<VerifyingKey> {
        let kid = self.kid.clone()?;
        if self.usage.as_deref().is_some_and(|u| u != "sig") {
            return None;
        }
        let decode = |v: &Option<String>| v.as_deref().and_then(|s| URL_SAFE_NO_PAD.decode(s).ok());
        let (implied, material) = match (self.kty.as_str(), self.crv.as_deref()) {
            ("RSA", _) => (
                Algorithm::Rs256,
                Material::Rsa {
                    n: decode(&self.n)?,
                    e: decode(&self.e)?,
                },
            ),
            ("EC", Some("P-256")) => {
                let (x, y) = (decode(&self.x)?, decode(&self.y)?);
                if x.len() != 32 || y.len() != 32 {
                    return None;
                }
                let mut point = vec![0x04];
                point.extend(x);
                point.extend(y);
                (Algorithm::Es256, Material::EcP256 { point })
            }
            _ => return None,
        };
        let alg = match self.alg.as_deref() {
            None => implied,
            Some(name) => Algorithm::from_name(name)?,
        };
        let consistent = matches!(
            (alg, &material),
            (Algorithm::Rs256 | Algorithm::Ps256, Material::Rsa { .. })
                | (Algorithm::Es256, Material::EcP256 { .. })
        );
        consistent.then_some(VerifyingKey { kid, alg, material })
    }
}

impl VerifyingKey {
    /// Whether `signature` signs `message` under this key.
    pub(super) fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        match (&self.material, self.alg) {
            (Material::Rsa { n, e }, Algorithm::Rs256) => RsaPublicKeyComponents { n, e }
                .verify(&RSA_PKCS1_2048_8192_SHA256, message, signature)
                .is_ok(),
            (Material::Rsa { n, e }, Algorithm::Ps256) => RsaPublicKeyComponents { n, e }
                .verify(&RSA_PSS_2048_8192_SHA256, message, signature)
                .is_ok(),
            (Material::EcP256 { point }, Algorithm::Es256) => {
                UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point)
                    .verify(message, signature)
                    .is_ok()
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn jwk(json: &str) -> Jwk {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn keys_carry_one_allowed_algorithm() {
        let rsa = r#"{"kty":"RSA","kid":"a","n":"AQAB","e":"AQAB"}"#;
        assert_eq!(jwk(rsa).verifying_key().unwrap().alg, Algorithm::Rs256);
        let ps = r#"{"kty":"RSA","kid":"a","alg":"PS256","n":"AQAB","e":"AQAB"}"#;
        assert_eq!(jwk(ps).verifying_key().unwrap().alg, Algorithm::Ps256);
        for refused in [
            r#"{"kty":"RSA","kid":"a","alg":"HS256","n":"AQAB","e":"AQAB"}"#,
            r#"{"kty":"RSA","kid":"a","alg":"none","n":"AQAB","e":"AQAB"}"#,
            r#"{"kty":"RSA","kid":"a","alg":"ES256","n":"AQAB","e":"AQAB"}"#,
            r#"{"kty":"RSA","kid":"a","use":"enc","n":"AQAB","e":"AQAB"}"#,
            r#"{"kty":"RSA","n":"AQAB","e":"AQAB"}"#,
            r#"{"kty":"oct","kid":"a","k":"c2VjcmV0"}"#,
            r#"{"kty":"EC","kid":"a","crv":"P-384","x":"AA","y":"AA"}"#,
        ] {
            assert!(jwk(refused).verifying_key().is_none(), "{refused}");
        }
    }
}
