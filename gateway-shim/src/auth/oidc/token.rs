//! A compact JWS access token: parsing, and the checks on its claims (issuer,
//! audience, expiry, not-before), as pure functions.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde_json::Value;

/// A token split into what verification needs.
#[derive(Debug)]
pub(super) struct Parsed {
    /// Header `alg`.
    pub(super) alg: String,
    /// Header `kid`.
    pub(super) kid: Option<String>,
    /// `header.payload`, the signed bytes.
    pub(super) signed: String,
    /// The signature.
    pub(super) signature: Vec<u8>,
    /// The claims.
    pub(super) claims: Value,
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
    /// Extensions the recipient must understand (RFC 7515 §4.1.11). We understand
    /// none, so a token naming any is refused.
    #[serde(default)]
    crit: Option<Value>,
}

/// Splits and decodes `token`.
///
/// # Errors
/// A reason, for an UNAUTHENTICATED message.
pub(super) fn parse(token: &str) -> Result<Parsed, &'static str> {
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("not a JWT");
    };
    let decode = |part: &str| {
        URL_SAFE_NO_PAD
            .decode(part)
            .map_err(|_| "malformed JWT encoding")
    };
    let header: Header =
        serde_json::from_slice(&decode(header)?).map_err(|_| "malformed JWT header")?;
    if header.crit.is_some() {
        return Err("JWT header names critical extensions this gateway does not understand");
    }
    let claims: Value =
        serde_json::from_slice(&decode(payload)?).map_err(|_| "malformed JWT claims")?;
    if !claims.is_object() {
        return Err("malformed JWT claims");
    }
    let signed_len = token.len() - signature.len() - 1;
    Ok(Parsed {
        alg: header.alg,
        kid: header.kid,
        signed: token[..signed_len].to_owned(),
        signature: decode(signature)?,
        claims,
    })
}

/// What the claims must say.
#[derive(Clone, Debug)]
pub(super) struct Expectations<'a> {
    /// `iss`.
    pub(super) issuer: &'a str,
    /// One of `aud`.
    pub(super) audience: &'a str,
    /// Now, seconds since the epoch.
    pub(super) now: u64,
    /// Clock skew allowed on `exp` and `nbf`, seconds.
    pub(super) leeway: u64,
}

/// Checks issuer, audience, expiry and not-before.
///
/// # Errors
/// A reason, for an UNAUTHENTICATED message.
pub(super) fn check(claims: &Value, expect: &Expectations<'_>) -> Result<(), &'static str> {
    if claims["iss"].as_str() != Some(expect.issuer) {
        return Err("token from another issuer");
    }
    let audience_ok = match &claims["aud"] {
        Value::String(aud) => aud == expect.audience,
        Value::Array(auds) => auds.iter().any(|a| a.as_str() == Some(expect.audience)),
        _ => false,
    };
    if !audience_ok {
        return Err("token for another audience");
    }
    let Some(exp) = claims["exp"].as_u64() else {
        return Err("token without expiry");
    };
    if exp + expect.leeway <= expect.now {
        return Err("token expired");
    }
    if let Some(nbf) = claims["nbf"].as_u64()
        && nbf > expect.now + expect.leeway
    {
        return Err("token not valid yet");
    }
    if claims["sub"].as_str().is_none_or(str::is_empty) {
        return Err("token without subject");
    }
    Ok(())
}

/// The strings at a dotted claim path (`realm_access.roles`): an array of strings or
/// one string.
pub(super) fn strings_at(claims: &Value, path: &str) -> Vec<String> {
    let mut value = claims;
    for part in path.split('.') {
        value = &value[part];
    }
    match value {
        Value::Array(items) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        Value::String(s) => vec![s.clone()],
        _ => Vec::new(),
    }
}

/// Scopes from a claim: a space-separated string or an array.
pub(super) fn scopes_at(claims: &Value, claim: &str) -> Vec<String> {
    strings_at(claims, claim)
        .iter()
        .flat_map(|s| s.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn expect() -> Expectations<'static> {
        Expectations {
            issuer: "https://idp/realms/r",
            audience: "gw",
            now: 1_000,
            leeway: 30,
        }
    }

    fn compact(header: &Value) -> String {
        let part = |v: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap());
        format!(
            "{}.{}.{}",
            part(header),
            part(&json!({"sub": "a"})),
            URL_SAFE_NO_PAD.encode(b"sig")
        )
    }

    #[test]
    fn critical_extensions_are_refused() {
        let plain = compact(&json!({"alg": "RS256", "kid": "k"}));
        assert_eq!(parse(&plain).unwrap().kid.as_deref(), Some("k"));
        for crit in [
            json!(["exp"]),
            json!(["http://example.com/ext"]),
            json!([]),
            json!("b64"),
        ] {
            let token = compact(&json!({"alg": "RS256", "crit": crit, "exp": 1}));
            let error = parse(&token).unwrap_err();
            assert!(error.contains("critical"), "{crit}: {error}");
        }
    }

    #[test]
    fn claims_are_checked_with_leeway() {
        let good = json!({"iss": "https://idp/realms/r", "aud": ["x", "gw"], "exp": 1_100, "sub": "alice"});
        assert_eq!(check(&good, &expect()), Ok(()));
        let mut c = good.clone();
        c["exp"] = json!(975);
        assert_eq!(check(&c, &expect()), Ok(()), "within leeway");
        c["exp"] = json!(960);
        assert_eq!(check(&c, &expect()), Err("token expired"));
        let mut c = good.clone();
        c["nbf"] = json!(1_100);
        assert_eq!(check(&c, &expect()), Err("token not valid yet"));
        let mut c = good.clone();
        c["aud"] = json!("other");
        assert_eq!(check(&c, &expect()), Err("token for another audience"));
        let mut c = good;
        c["iss"] = json!("https://evil/realms/r");
        assert_eq!(check(&c, &expect()), Err("token from another issuer"));
    }

    #[test]
    fn roles_and_scopes_come_from_configurable_claims() {
        let c = json!({"realm_access": {"roles": ["openshell-user", "x"]}, "scope": "sandbox:read provider:read", "scp": ["a", "b"]});
        assert_eq!(
            strings_at(&c, "realm_access.roles"),
            ["openshell-user", "x"]
        );
        assert_eq!(scopes_at(&c, "scope"), ["sandbox:read", "provider:read"]);
        assert_eq!(scopes_at(&c, "scp"), ["a", "b"]);
        assert!(strings_at(&c, "missing.path").is_empty());
    }

    #[test]
    fn malformed_tokens_are_refused() {
        assert_eq!(parse("a.b").unwrap_err(), "not a JWT");
        assert_eq!(parse("a.b.c.d").unwrap_err(), "not a JWT");
        assert!(parse("!!.e30.").is_err());
    }
}
