//! `/api/v1/auth`: log in and out, permanent API tokens, the owner's password.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use poem::Request;
use poem::web::Data;
use poem::web::cookie::{Cookie, SameSite};
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};

use super::ApiTags;
use super::client::{client_ip, peer_ip};
use super::error::statuses::*;
use super::error::{ApiError, Errors};
use crate::api::AppState;
use crate::api::scheme::{Owner, presented_token};
use crate::auth::scope::{Grant, Scope};
use crate::auth::{ApiToken, AuthError, cookie_name};
use crate::domain::PhoneNumber;

#[derive(Default)]
pub struct AuthApi;

/// The owner's password.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct LoginRequest {
    /// The owner's password.
    password: String,
}

/// A session token, also set as the session cookie.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct SessionView {
    /// A session token; also set as the `wagate_session` cookie. Send it as
    /// `Authorization: Bearer <token>` from scripts.
    token: String,
    /// Always `Bearer`.
    token_type: String,
    /// Seconds until the token expires.
    expires_in: u64,
    /// When the token expires.
    expires_at: DateTime<Utc>,
}

#[derive(ApiResponse)]
pub enum LoginResponse {
    /// Logged in: the token is in the body and in the `wagate_session` cookie.
    #[oai(status = 200)]
    Ok(
        Json<SessionView>,
        /// The `HttpOnly`, `SameSite=Strict` session cookie.
        #[oai(header = "Set-Cookie")]
        String,
    ),
}

/// A permanent token to mint: its label, scopes and phones.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct GenerateTokenRequest {
    /// The owner's password.
    password: String,
    /// A label to recognise the token by in the token list, e.g. "crm-prod".
    #[oai(validator(max_length = 100))]
    name: Option<String>,
    /// What the token may do: `read` (GET operations), `send` (messages, typing,
    /// number checks), `manage` (phones, webhooks, the sandbox), `admin` (the token list,
    /// and everything). Omitted: everything. Each operation's scope is in its description.
    #[oai(validator(min_items = 1, max_items = 4))]
    scopes: Option<Vec<Scope>>,
    /// The phones (E.164) the token may act on; omitted: every phone. Another phone is
    /// answered as if it did not exist, and operations about every phone (webhooks,
    /// contacts of all phones) are refused; the phone list and event stream show only these.
    #[oai(validator(min_items = 1, max_items = 1000))]
    phones: Option<Vec<String>>,
}

/// A new permanent token; the token itself is shown only now.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct GeneratedToken {
    /// The permanent token. It is shown only in this response: copy it now.
    token: String,
    /// Always null: the token does not expire; revoke it with `DELETE /api/v1/auth/tokens/{id}`.
    expires_in: Option<u64>,
    /// The token's id, for listing and revoking it.
    id: String,
    /// The token's label.
    name: String,
    /// What it may do.
    scopes: Vec<Scope>,
    /// The phones it may act on; null: every phone.
    phones: Option<Vec<String>>,
    /// When the token was minted.
    created_at: DateTime<Utc>,
}

/// The new password, and the current one (or the setup code for the first).
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct ChangePasswordRequest {
    /// The current password. Leave it blank or omit it only while no password is set.
    old_password: Option<String>,
    /// The new password, at least 8 characters (shorter ones are refused with
    /// `password_too_short`).
    new_password: String,
    /// The one-time setup code printed at start-up. Needed to set the first password from
    /// anywhere but the server's own machine (a loopback address naming a loopback host,
    /// with no proxy headers).
    setup_code: Option<String>,
}

/// What was done.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct Confirmation {
    /// Always true.
    success: bool,
    /// What happened.
    message: String,
}

impl Confirmation {
    pub fn new(message: impl Into<String>) -> Json<Self> {
        Json(Self {
            success: true,
            message: message.into(),
        })
    }
}

#[derive(ApiResponse)]
pub enum SessionEnded {
    /// Done; the session cookie is cleared.
    #[oai(status = 200)]
    Ok(
        Json<Confirmation>,
        /// Expires the session cookie.
        #[oai(header = "Set-Cookie")]
        String,
    ),
}

/// Whether the token is valid, and whether the owner's password is set.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct Validity {
    /// Whether the token is valid now: signed by this server, not expired, not revoked.
    valid: bool,
    /// Whether the owner's password has been set (until then nothing but setting it works).
    password_set: bool,
}

/// The result of checking a token.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct VerifyResponse {
    data: Validity,
}

/// A permanent token, without its secret.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct TokenView {
    /// The token's id.
    id: String,
    /// The token's label.
    name: String,
    /// What it may do (tokens minted before scopes existed: `admin`).
    scopes: Vec<Scope>,
    /// The phones it may act on; absent: every phone.
    phones: Option<Vec<String>>,
    /// When the token was minted.
    created_at: DateTime<Utc>,
}

impl From<ApiToken> for TokenView {
    fn from(token: ApiToken) -> Self {
        Self {
            id: token.id,
            name: token.name,
            scopes: token.scopes,
            phones: token.phones,
            created_at: token.created_at,
        }
    }
}

/// The permanent tokens that have not been revoked.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct TokenList {
    /// Permanent tokens that have not been revoked, oldest first.
    data: Vec<TokenView>,
}

#[OpenApi(prefix_path = "/auth", tag = "ApiTags::Auth")]
impl AuthApi {
    /// Log in
    ///
    /// Checks the owner's password and returns a session token, in the body and as an
    /// `HttpOnly` cookie. Failed attempts are limited per client address (429).
    #[oai(path = "/login", method = "post", operation_id = "login")]
    async fn login(
        &self,
        state: Data<&AppState>,
        req: &Request,
        body: Json<LoginRequest>,
    ) -> Result<LoginResponse, Errors<{ BODY | UNAUTHORIZED | FORBIDDEN | TOO_MANY_REQUESTS | ANY }>> {
        let issued = state.auth.login(client_ip(req), body.0.password).await?;
        let ttl = state.auth.session_ttl();
        let expires_at = issued.claims.expires_at().unwrap_or_else(Utc::now);
        let cookie = session_cookie(&issued.token, ttl, state.auth.cookie_secure());
        Ok(LoginResponse::Ok(
            Json(SessionView {
                token: issued.token,
                token_type: "Bearer".into(),
                expires_in: ttl.as_secs(),
                expires_at,
            }),
            cookie,
        ))
    }

    /// Generate a permanent token
    ///
    /// Checks the owner's password and returns a token that never expires, for scripts and
    /// integrations. The token is shown only once; it can be listed and revoked by id.
    #[oai(path = "/generate-token", method = "post", operation_id = "generateToken")]
    async fn generate_token(
        &self,
        state: Data<&AppState>,
        req: &Request,
        body: Json<GenerateTokenRequest>,
    ) -> Result<Json<GeneratedToken>, Errors<{ BODY | UNAUTHORIZED | FORBIDDEN | TOO_MANY_REQUESTS | ANY }>> {
        let body = body.0;
        let name = body
            .name
            .map(|n| n.replace('\0', "").trim().to_owned())
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| format!("token {}", Utc::now().format("%Y-%m-%d %H:%M")));
        let phones = match body.phones {
            Some(list) => Some(
                list.iter()
                    .map(|raw| {
                        PhoneNumber::parse(raw, None)
                            .map(|p| p.as_str().to_owned())
                            .map_err(|err| ApiError::bad_request("invalid_phone", format!("`phones`: {err}")))
                    })
                    .collect::<Result<Vec<_>, _>>()?,
            ),
            None => None,
        };
        let grant = Grant::new(body.scopes.unwrap_or_else(|| vec![Scope::Admin]), phones);
        let (issued, minted) = state
            .auth
            .generate_token(client_ip(req), body.password, &name, grant)
            .await?;
        Ok(Json(GeneratedToken {
            token: issued.token,
            expires_in: None,
            id: minted.id,
            name: minted.name,
            scopes: minted.scopes,
            phones: minted.phones,
            created_at: minted.created_at,
        }))
    }

    /// Set or change the password
    ///
    /// Changes the owner's password, which ends every session (permanent tokens stay valid
    /// until revoked). While no password is set, `oldPassword` may be blank: the first
    /// password can be set from the server's own machine (a loopback address naming a
    /// loopback host such as `localhost`, with no `Forwarded`/`X-Forwarded-*`/`X-Real-IP`
    /// header) or with the setup code printed at start-up.
    #[oai(path = "/change-password", method = "post", operation_id = "changePassword")]
    async fn change_password(
        &self,
        state: Data<&AppState>,
        req: &Request,
        body: Json<ChangePasswordRequest>,
    ) -> Result<SessionEnded, Errors<{ BODY | UNAUTHORIZED | FORBIDDEN | TOO_MANY_REQUESTS | ANY }>> {
        let body = body.0;
        state
            .auth
            .change_password(
                client_ip(req),
                is_local_caller(req),
                body.old_password,
                body.new_password,
                body.setup_code,
            )
            .await?;
        Ok(SessionEnded::Ok(
            Confirmation::new("password updated; every session has ended, log in again"),
            cleared_cookie(state.auth.cookie_secure()),
        ))
    }

    /// Verify a token
    ///
    /// Tells whether the token in `token`, or else the caller's own credentials (Bearer
    /// header or session cookie), is valid. Never fails for an invalid token: it answers
    /// `valid: false`.
    #[oai(path = "/verify", method = "get", operation_id = "verifyToken")]
    async fn verify(
        &self,
        state: Data<&AppState>,
        req: &Request,
        /// The token to check; without it, the caller's own token is checked.
        token: Query<Option<String>>,
    ) -> Json<VerifyResponse> {
        let token = token.0.or_else(|| presented_token(req, state.auth.cookie_secure()));
        let valid = token.is_some_and(|t| state.auth.authenticate(&t).is_ok());
        Json(VerifyResponse {
            data: Validity {
                valid,
                password_set: state.auth.password_set(),
            },
        })
    }

    /// Log out
    ///
    /// Ends the caller's session token and clears the session cookie. A permanent token is
    /// not revoked by this; use `DELETE /api/v1/auth/tokens/{id}`.
    #[oai(path = "/logout", method = "post", operation_id = "logout")]
    async fn logout(&self, state: Data<&AppState>, req: &Request) -> Result<SessionEnded, Errors<{ ANY }>> {
        if let Some(claims) =
            presented_token(req, state.auth.cookie_secure()).and_then(|t| state.auth.authenticate(&t).ok())
        {
            state.auth.logout(&claims).await?;
        }
        Ok(SessionEnded::Ok(
            Confirmation::new("logged out"),
            cleared_cookie(state.auth.cookie_secure()),
        ))
    }

    /// List permanent tokens
    ///
    /// The permanent tokens that have not been revoked. The tokens themselves are never
    /// shown again, only their ids and labels.
    #[oai(path = "/tokens", method = "get", operation_id = "listTokens")]
    async fn list_tokens(
        &self,
        _owner: Owner,
        state: Data<&AppState>,
    ) -> Result<Json<TokenList>, Errors<{ SIGNED_IN }>> {
        let rows = state.auth.list_tokens().await?;
        Ok(Json(TokenList {
            data: rows.into_iter().map(TokenView::from).collect(),
        }))
    }

    /// Revoke a permanent token
    ///
    /// The token stops working at once.
    #[oai(path = "/tokens/:id", method = "delete", operation_id = "revokeToken")]
    async fn revoke_token(
        &self,
        _owner: Owner,
        state: Data<&AppState>,
        /// The token's id, from the token list.
        id: Path<String>,
    ) -> Result<Json<Confirmation>, Errors<{ SIGNED_IN | BAD_REQUEST | NOT_FOUND }>> {
        state.auth.revoke_token(&id.0).await?;
        Ok(Confirmation::new("token revoked"))
    }
}

/// Whether the request certainly comes from a browser or tool on the server's own machine:
/// a loopback peer that named a loopback host, through no proxy. A reverse proxy on the
/// same host makes every peer 127.0.0.1 (it adds forwarding headers or names the public
/// host), and a web page that rebinds its domain to 127.0.0.1 still sends its own name in
/// `Host`: neither counts.
pub fn is_local_caller(req: &Request) -> bool {
    const FORWARDING: [&str; 6] = [
        "forwarded",
        "x-forwarded-for",
        "x-forwarded-host",
        "x-forwarded-proto",
        "x-real-ip",
        "x-forwarded-server",
    ];
    let peer = peer_ip(req);
    let forwarded = FORWARDING.iter().any(|h| req.headers().contains_key(*h));
    let host = req
        .headers()
        .get(poem::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().host());
    is_loopback(peer) && !forwarded && host.is_some_and(is_loopback_host)
}

/// Loopback, also as an IPv4-mapped IPv6 address (a dual-stack listener's view).
pub fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(v6.is_loopback(), |v4| v4.is_loopback()),
        IpAddr::V4(v4) => v4.is_loopback(),
    }
}

/// `localhost`, `127.0.0.1:8080`, `[::1]:8080` and the like.
fn is_loopback_host(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or_default(),
        None => match host.rsplit_once(':') {
            Some((name, port)) if !name.contains(':') && port.chars().all(|c| c.is_ascii_digit()) => name,
            _ => host,
        },
    };
    let name = name.trim_end_matches('.');
    name.eq_ignore_ascii_case("localhost") || name.parse::<IpAddr>().is_ok_and(is_loopback)
}

fn session_cookie(token: &str, ttl: std::time::Duration, secure: bool) -> String {
    let mut cookie = Cookie::new_with_str(cookie_name(secure), token);
    cookie.set_http_only(true);
    cookie.set_same_site(SameSite::Strict);
    cookie.set_path("/");
    cookie.set_max_age(ttl);
    cookie.set_secure(secure);
    cookie.to_string()
}

fn cleared_cookie(secure: bool) -> String {
    let mut cookie = Cookie::new_with_str(cookie_name(secure), "");
    cookie.set_http_only(true);
    cookie.set_same_site(SameSite::Strict);
    cookie.set_path("/");
    cookie.set_max_age(std::time::Duration::ZERO);
    cookie.set_secure(secure);
    cookie.to_string()
}

impl From<AuthError> for ApiError {
    fn from(err: AuthError) -> Self {
        match err {
            AuthError::PasswordNotSet => ApiError::forbidden(
                "password_not_set",
                "no password is set yet: set one with POST /api/v1/auth/change-password \
                 (blank oldPassword) from the server's machine or with the setup code printed \
                 at start-up, or run `wagate password set` on the server",
            ),
            AuthError::InvalidPassword => ApiError::unauthorized("invalid_password", "the password is wrong"),
            AuthError::Throttled(wait) => ApiError::too_many_requests(
                wait.as_secs() + 1,
                "too many failed password attempts from this address; wait and try again",
            ),
            AuthError::Busy => ApiError::too_many_requests(
                1,
                "the server is checking too many passwords at once (auth.hash_queue); retry in a moment",
            ),
            AuthError::SetupCodeRequired => ApiError::forbidden(
                "setup_code_required",
                "setting the first password from a remote address needs `setupCode`, the \
                 one-time code the server printed at start-up (or run `wagate password set` \
                 on the server)",
            ),
            AuthError::OldPasswordRequired => ApiError::bad_request(
                "old_password_required",
                "a password is already set: send the current one as `oldPassword`",
            ),
            AuthError::PasswordTooShort => ApiError::bad_request(
                "password_too_short",
                format!(
                    "`newPassword` must be at least {} characters",
                    crate::auth::password::MIN_LENGTH
                ),
            ),
            AuthError::PasswordTooLong => ApiError::bad_request(
                "password_too_long",
                format!(
                    "`newPassword` must be at most {} bytes",
                    crate::auth::password::MAX_LENGTH
                ),
            ),
            AuthError::MissingCredentials => ApiError::unauthorized(
                "unauthorized",
                "authentication required: send `Authorization: Bearer <token>` or the session \
                 cookie (POST /api/v1/auth/login)",
            ),
            AuthError::InvalidToken => ApiError::unauthorized(
                "invalid_token",
                "the token is invalid, expired or revoked; log in again",
            ),
            AuthError::TokenNotFound => ApiError::not_found("token_not_found", "no active token has that id"),
            AuthError::Db(err) => ApiError::from(err),
            AuthError::Password(err) => ApiError::internal(&err),
            AuthError::Encode(err) => ApiError::internal(&err),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_names_count_as_local_hosts() {
        for host in [
            "localhost",
            "LOCALHOST:8080",
            "127.0.0.1",
            "127.0.0.1:8080",
            "[::1]:8080",
            "::1",
            "localhost.",
        ] {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in [
            "evil.example",
            "evil.example:8080",
            "10.0.0.1:8080",
            "localhost.evil.example",
            "[::2]:80",
            "",
        ] {
            assert!(!is_loopback_host(host), "{host}");
        }
    }

    #[test]
    fn a_mapped_loopback_address_is_loopback() {
        assert!(is_loopback("::ffff:127.0.0.1".parse().unwrap()));
        assert!(is_loopback("::1".parse().unwrap()));
        assert!(!is_loopback("::ffff:10.0.0.1".parse().unwrap()));
    }
}
