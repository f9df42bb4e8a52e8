//! JSON Web Tokens, HS256 only: the algorithm is pinned on decode, so `alg: none` and
//! algorithm-confusion tokens fail before their claims are read.

use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// What a token grants: a login session that expires, or a permanent API token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenKind {
    Session,
    Api,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    /// Unique id: the revocation key of a session, the row id of an API token.
    pub jti: String,
    pub iat: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    pub kind: TokenKind,
    /// Session epoch at issue time; a password change moves the epoch on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<i64>,
}

impl Claims {
    pub fn expires_at(&self) -> Option<DateTime<Utc>> {
        self.exp.and_then(|exp| DateTime::from_timestamp(exp, 0))
    }
}

/// Clock skew tolerated on `exp`, in seconds.
pub const LEEWAY_SECS: i64 = 5;

/// The subject of every token: wagate has one local owner.
pub const OWNER: &str = "owner";

pub struct Jwt {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl Jwt {
    pub fn new(secret: &[u8]) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        // `exp` is checked whenever present; only session tokens carry one, and
        // `Auth::authenticate` insists on it for them.
        validation.set_required_spec_claims(&["sub"]);
        validation.validate_exp = true;
        validation.leeway = LEEWAY_SECS as u64;
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
        }
    }

    pub fn encode(&self, claims: &Claims) -> Result<String, jsonwebtoken::errors::Error> {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
    }

    pub fn decode(&self, token: &str) -> Option<Claims> {
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .ok()
            .map(|data| data.claims)
            .filter(|claims| claims.sub == OWNER)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    fn claims(exp: Option<i64>) -> Claims {
        Claims {
            sub: OWNER.into(),
            jti: "id".into(),
            iat: Utc::now().timestamp(),
            exp,
            kind: TokenKind::Session,
            epoch: Some(0),
        }
    }

    #[test]
    fn round_trip() {
        let jwt = Jwt::new(b"secret");
        let token = jwt.encode(&claims(Some(Utc::now().timestamp() + 60))).unwrap();
        assert_eq!(jwt.decode(&token).unwrap().jti, "id");
    }

    #[test]
    fn rejects_expired_foreign_and_unsigned_tokens() {
        let jwt = Jwt::new(b"secret");
        let expired = jwt.encode(&claims(Some(Utc::now().timestamp() - 60))).unwrap();
        assert!(jwt.decode(&expired).is_none());

        let foreign = Jwt::new(b"other").encode(&claims(None)).unwrap();
        assert!(jwt.decode(&foreign).is_none());

        let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
        let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims(None)).unwrap());
        assert!(jwt.decode(&format!("{header}.{body}.")).is_none());
    }
}
