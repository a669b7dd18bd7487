//! Verification of connection and subscription tokens (JWT).
//!
//! HS256/384/512 with the configured secret, RS256/384/512 and PS* with the configured RSA
//! public key, ES256/384 with the configured ECDSA public key. `alg: none` and any
//! algorithm without a configured key are rejected. `exp` is optional; when present it is
//! checked with no leeway. `aud` and `iss` are checked when configured.

use std::collections::HashSet;

use jsonwebtoken::{Algorithm, DecodingKey, Validation, errors::ErrorKind};
use rootcast_config::TokenConfig;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::protocol::RawJson;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("token expired")]
    Expired,
    #[error("invalid token: {0}")]
    Invalid(String),
}

/// Claims of a connection token.
#[derive(Debug, Deserialize)]
pub struct ConnectionClaims {
    #[serde(default)]
    pub sub: String,
    pub exp: Option<u64>,
    /// Overrides `exp` for how long the connection lives (0 = never expires).
    pub expire_at: Option<u64>,
    /// Connection info attached to presence, join/leave and client publications.
    pub info: Option<RawJson>,
    /// Channels the connection is subscribed to by the server (server-side subscriptions).
    #[serde(default)]
    pub channels: Vec<String>,
    /// Claims only a subscription token (`channel`) or a relay stream token
    /// (`rootcast_stream`) has: the same key signs them, so a token carrying either is
    /// refused as a connection token (a leaked view token must not log anyone in).
    #[serde(default)]
    channel: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    rootcast_stream: Option<serde::de::IgnoredAny>,
}

impl ConnectionClaims {
    /// When the connection expires (unix seconds), if ever.
    pub fn expires_at(&self) -> Option<u64> {
        match self.expire_at {
            Some(0) => None,
            Some(at) => Some(at),
            None => self.exp,
        }
    }
}

/// Claims of a subscription token.
#[derive(Debug, Deserialize)]
pub struct SubscriptionClaims {
    #[serde(default)]
    pub sub: String,
    #[serde(default)]
    pub channel: String,
    pub exp: Option<u64>,
    pub expire_at: Option<u64>,
    /// Channel info attached to presence and join/leave of this subscription.
    pub info: Option<RawJson>,
}

impl SubscriptionClaims {
    pub fn expires_at(&self) -> Option<u64> {
        match self.expire_at {
            Some(0) => None,
            Some(at) => Some(at),
            None => self.exp,
        }
    }
}

/// Checks tokens against the configured keys. Built once at start-up.
pub struct TokenVerifier {
    hmac: Option<DecodingKey>,
    rsa: Option<DecodingKey>,
    ecdsa: Option<DecodingKey>,
    audience: Option<String>,
    issuer: Option<String>,
}

impl TokenVerifier {
    /// Parses the configured keys. Errors name the key that does not parse.
    pub fn new(config: &TokenConfig) -> Result<Self, TokenError> {
        let rsa = (!config.rsa_public_key.is_empty())
            .then(|| DecodingKey::from_rsa_pem(config.rsa_public_key.as_bytes()))
            .transpose()
            .map_err(|e| TokenError::Invalid(format!("client.token.rsa_public_key: {e}")))?;
        let ecdsa = (!config.ecdsa_public_key.is_empty())
            .then(|| DecodingKey::from_ec_pem(config.ecdsa_public_key.as_bytes()))
            .transpose()
            .map_err(|e| TokenError::Invalid(format!("client.token.ecdsa_public_key: {e}")))?;
        let hmac = (!config.hmac_secret_key.is_empty())
            .then(|| DecodingKey::from_secret(config.hmac_secret_key.as_bytes()))
            .transpose()
            .map_err(|e| TokenError::Invalid(format!("client.token.hmac_secret_key: {e}")))?;
        Ok(TokenVerifier {
            hmac,
            rsa,
            ecdsa,
            audience: (!config.audience.is_empty()).then(|| config.audience.clone()),
            issuer: (!config.issuer.is_empty()).then(|| config.issuer.clone()),
        })
    }

    pub fn connection(&self, token: &str) -> Result<ConnectionClaims, TokenError> {
        let claims: ConnectionClaims = self.verify(token)?;
        if claims.channel.is_some() || claims.rootcast_stream.is_some() {
            return Err(TokenError::Invalid(
                "a subscription or stream token is not a connection token".into(),
            ));
        }
        Ok(claims)
    }

    pub fn subscription(&self, token: &str) -> Result<SubscriptionClaims, TokenError> {
        self.verify(token)
    }

    /// Checks a token's signature, algorithm, expiry (and audience/issuer when configured)
    /// and returns all its claims, for tokens that are neither connection nor subscription
    /// tokens (the relay's stream tokens).
    pub fn claims(&self, token: &str) -> Result<serde_json::Value, TokenError> {
        self.verify(token)
    }

    fn verify<C: DeserializeOwned>(&self, token: &str) -> Result<C, TokenError> {
        // decode_header rejects `alg: none` and unknown algorithms.
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| TokenError::Invalid(e.to_string()))?;
        let key = match header.alg {
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => self.hmac.as_ref(),
            Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512 => self.rsa.as_ref(),
            Algorithm::ES256 | Algorithm::ES384 => self.ecdsa.as_ref(),
            _ => None,
        }
        .ok_or_else(|| {
            TokenError::Invalid(format!("no key configured for algorithm {:?}", header.alg))
        })?;
        let mut validation = Validation::new(header.alg);
        validation.required_spec_claims = HashSet::new();
        validation.leeway = 0;
        validation.validate_exp = true;
        validation.validate_aud = false;
        if let Some(audience) = &self.audience {
            validation.validate_aud = true;
            validation.set_audience(&[audience]);
            validation.set_required_spec_claims(&["aud"]);
        }
        if let Some(issuer) = &self.issuer {
            validation.set_issuer(&[issuer]);
        }
        match jsonwebtoken::decode::<C>(token, key, &validation) {
            Ok(data) => Ok(data.claims),
            Err(e) if matches!(e.kind(), ErrorKind::ExpiredSignature) => Err(TokenError::Expired),
            Err(e) => Err(TokenError::Invalid(e.to_string())),
        }
    }
}

/// Signs `claims` as an HS256 token. For `rootcast token` and tests; production back ends
/// issue tokens with their own JWT library.
pub fn issue_hs256(secret: &str, claims: &serde_json::Value) -> Result<String, TokenError> {
    let key = jsonwebtoken::EncodingKey::from_secret(secret.as_bytes())
        .map_err(|e| TokenError::Invalid(e.to_string()))?;
    jsonwebtoken::encode(&jsonwebtoken::Header::default(), claims, &key)
        .map_err(|e| TokenError::Invalid(e.to_string()))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn verifier() -> TokenVerifier {
        TokenVerifier::new(&TokenConfig {
            hmac_secret_key: "secret".into(),
            ..Default::default()
        })
        .unwrap()
    }

    fn sign(claims: serde_json::Value, secret: &str) -> String {
        issue_hs256(secret, &claims).unwrap()
    }

    fn now() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    #[test]
    fn accepts_valid_hs256_with_claims() {
        let token = sign(
            json!({"sub":"alice","exp":now()+60,"info":{"name":"A"},"channels":["news"]}),
            "secret",
        );
        let claims = verifier().connection(&token).unwrap();
        assert_eq!(claims.sub, "alice");
        assert_eq!(claims.channels, vec!["news".to_string()]);
        assert_eq!(claims.info.unwrap().get(), r#"{"name":"A"}"#);
    }

    #[test]
    fn exp_is_optional() {
        let token = sign(json!({"sub":"bob"}), "secret");
        let claims = verifier().connection(&token).unwrap();
        assert_eq!(claims.expires_at(), None);
    }

    #[test]
    fn rejects_expired_forged_and_none() {
        let expired = sign(json!({"sub":"a","exp":now()-1}), "secret");
        assert_eq!(
            verifier().connection(&expired).unwrap_err(),
            TokenError::Expired
        );
        let forged = sign(json!({"sub":"a"}), "other");
        assert!(matches!(
            verifier().connection(&forged),
            Err(TokenError::Invalid(_))
        ));
        // alg: none, no signature.
        let none = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJhIn0.";
        assert!(matches!(
            verifier().connection(none),
            Err(TokenError::Invalid(_))
        ));
        assert!(matches!(
            verifier().connection("garbage"),
            Err(TokenError::Invalid(_))
        ));
    }

    #[test]
    fn subscription_and_stream_tokens_do_not_connect() {
        let subscription = sign(json!({"sub":"a","channel":"qa:1"}), "secret");
        assert!(matches!(
            verifier().connection(&subscription),
            Err(TokenError::Invalid(_))
        ));
        assert_eq!(
            verifier().subscription(&subscription).unwrap().channel,
            "qa:1"
        );
        let stream = sign(
            json!({"sub":"a","rootcast_stream":{"stream":"s","access":["view"]}}),
            "secret",
        );
        assert!(matches!(
            verifier().connection(&stream),
            Err(TokenError::Invalid(_))
        ));
    }

    #[test]
    fn rejects_algorithm_without_key() {
        let no_keys = TokenVerifier::new(&TokenConfig::default()).unwrap();
        let token = sign(json!({"sub":"a"}), "secret");
        assert!(matches!(
            no_keys.connection(&token),
            Err(TokenError::Invalid(_))
        ));
    }

    #[test]
    fn checks_audience_when_configured() {
        let verifier = TokenVerifier::new(&TokenConfig {
            hmac_secret_key: "secret".into(),
            audience: "rootcast".into(),
            ..Default::default()
        })
        .unwrap();
        assert!(
            verifier
                .connection(&sign(json!({"sub":"a","aud":"rootcast"}), "secret"))
                .is_ok()
        );
        assert!(
            verifier
                .connection(&sign(json!({"sub":"a","aud":"other"}), "secret"))
                .is_err()
        );
        assert!(
            verifier
                .connection(&sign(json!({"sub":"a"}), "secret"))
                .is_err()
        );
    }

    fn sign_with(
        alg: Algorithm,
        key: jsonwebtoken::EncodingKey,
        claims: serde_json::Value,
    ) -> String {
        jsonwebtoken::encode(&jsonwebtoken::Header::new(alg), &claims, &key).unwrap()
    }

    fn asymmetric_verifier() -> TokenVerifier {
        TokenVerifier::new(&TokenConfig {
            rsa_public_key: include_str!("../testdata/rsa-public.pem").into(),
            ecdsa_public_key: include_str!("../testdata/ec-p256-public.pem").into(),
            ..Default::default()
        })
        .unwrap()
    }

    #[test]
    fn accepts_rs256_and_es256_with_configured_keys() {
        let rsa =
            jsonwebtoken::EncodingKey::from_rsa_pem(include_bytes!("../testdata/rsa-private.pem"))
                .unwrap();
        let ec = jsonwebtoken::EncodingKey::from_ec_pem(include_bytes!(
            "../testdata/ec-p256-private.pem"
        ))
        .unwrap();
        let verifier = asymmetric_verifier();
        let token = sign_with(Algorithm::RS256, rsa, json!({"sub":"r"}));
        assert_eq!(verifier.connection(&token).unwrap().sub, "r");
        let token = sign_with(Algorithm::ES256, ec, json!({"sub":"e"}));
        assert_eq!(verifier.connection(&token).unwrap().sub, "e");
        // No HMAC secret configured: an HS256 token is refused.
        assert!(
            verifier
                .connection(&sign(json!({"sub":"h"}), "secret"))
                .is_err()
        );
    }

    #[test]
    fn rejects_a_token_signed_by_another_rsa_key_or_tampered() {
        let rsa =
            jsonwebtoken::EncodingKey::from_rsa_pem(include_bytes!("../testdata/rsa-private.pem"))
                .unwrap();
        let token = sign_with(Algorithm::RS256, rsa, json!({"sub":"r"}));
        // Swap the payload for another user's: the signature no longer matches.
        let mut parts: Vec<&str> = token.split('.').collect();
        let forged_payload = "eyJzdWIiOiJhZG1pbiJ9"; // {"sub":"admin"}
        parts[1] = forged_payload;
        let forged = parts.join(".");
        assert!(matches!(
            asymmetric_verifier().connection(&forged),
            Err(TokenError::Invalid(_))
        ));
    }

    #[test]
    fn rejects_a_malformed_public_key() {
        let result = TokenVerifier::new(&TokenConfig {
            rsa_public_key: "-----BEGIN PUBLIC KEY-----\nnot a key\n-----END PUBLIC KEY-----"
                .into(),
            ..Default::default()
        });
        assert!(result.is_err());
    }

    #[test]
    fn expire_at_overrides_exp() {
        let token = sign(json!({"sub":"a","exp":now()+60,"expire_at":0}), "secret");
        assert_eq!(verifier().connection(&token).unwrap().expires_at(), None);
    }
}
