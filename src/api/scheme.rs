//! The security scheme of the API: extracting [`Owner`] *is* the auth check. A request
//! carries a token as `Authorization: Bearer <jwt>` or in the session cookie; both are
//! declared in the spec as alternatives, and both are checked by [`crate::auth::Auth::authenticate`].

use std::sync::Arc;

use poem::Request;
use poem::http::header;
use poem_openapi::registry::{MetaSecurityScheme, Registry};
use poem_openapi::{ApiExtractor, ApiExtractorType, ExtractParamOptions};

use super::AppState;
use super::error::{ApiError, Rejection};
use crate::actors::PhoneError;
use crate::auth::jwt::Claims;
use crate::auth::scope::{self, Grant};
use crate::auth::{COOKIE_NAME, cookie_name};
use crate::domain::PhoneNumber;

pub const BEARER_SCHEME: &str = "bearerAuth";
pub const COOKIE_SCHEME: &str = "cookieAuth";

/// The authenticated owner, the claims of the token they presented and what it may do.
/// Extracting it has checked that the token may call this operation (its scope) on this
/// phone (its phone list).
pub struct Owner {
    pub claims: Arc<Claims>,
    pub grant: Arc<Grant>,
}

/// The token a request presents, if any: the Bearer header wins over the cookie (named for
/// `secure`, see [`cookie_name`]).
pub fn presented_token(req: &Request, secure: bool) -> Option<String> {
    if let Some(value) = req.headers().get(header::AUTHORIZATION) {
        let value = value.to_str().ok()?;
        let (scheme, token) = value.split_once(' ')?;
        return scheme
            .eq_ignore_ascii_case("bearer")
            .then(|| token.trim().to_owned())
            .filter(|t| !t.is_empty());
    }
    cookie_value(req, cookie_name(secure)).filter(|t| !t.is_empty())
}

/// Whether the request's token is the session cookie (no `Authorization` header).
fn via_cookie(req: &Request) -> bool {
    !req.headers().contains_key(header::AUTHORIZATION)
}

/// Requests a page of another site could make a browser send with the owner's cookie and
/// that change something: any method but GET/HEAD/OPTIONS, and every WebSocket upgrade
/// (a GET that opens the live event stream).
fn needs_same_origin(req: &Request) -> bool {
    let upgrade = req
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    upgrade
        || !matches!(
            *req.method(),
            poem::http::Method::GET | poem::http::Method::HEAD | poem::http::Method::OPTIONS
        )
}

/// Whether `Origin` (or, without it, `Referer`) names the host the request was sent to
/// (`Host`, or `X-Forwarded-Host` from a reverse proxy: a cross-site page cannot set
/// either). `SameSite=Strict` alone ignores ports, so any page on `localhost:3000` would
/// count as the dashboard's site.
pub fn same_origin(req: &Request) -> bool {
    let headers = req.headers();
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let Some(origin) = text("origin")
        .filter(|o| *o != "null")
        .or_else(|| text("referer"))
        .and_then(|o| url::Url::parse(o).ok())
    else {
        return false;
    };
    let Some(origin_host) = origin.host_str() else {
        return false;
    };
    let origin_port = origin.port_or_known_default();
    let matches = |host: &str| {
        let host = host.split(',').next().unwrap_or_default().trim();
        url::Url::parse(&format!("{}://{host}", origin.scheme())).is_ok_and(|target| {
            target.host_str().is_some_and(|h| h.eq_ignore_ascii_case(origin_host))
                && target.port_or_known_default() == origin_port
        })
    };
    text("host").is_some_and(matches) || text("x-forwarded-host").is_some_and(matches)
}

/// Reads a cookie straight from the `Cookie` headers, so the check does not depend on
/// which middleware ran before it.
fn cookie_value(req: &Request, name: &str) -> Option<String> {
    req.headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.trim_matches('"').to_owned())
}

impl<'a> ApiExtractor<'a> for Owner {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::SecurityScheme];

    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        registry.create_security_scheme(
            BEARER_SCHEME,
            MetaSecurityScheme {
                ty: "http",
                description: Some(
                    "A session token from `POST /api/v1/auth/login` or a permanent token from \
                     `POST /api/v1/auth/generate-token`, as `Authorization: Bearer <token>`.",
                ),
                name: None,
                key_in: None,
                scheme: Some("bearer"),
                bearer_format: Some("JWT"),
                flows: None,
                openid_connect_url: None,
            },
        );
        registry.create_security_scheme(
            COOKIE_SCHEME,
            MetaSecurityScheme {
                ty: "apiKey",
                description: Some(
                    "The session cookie set by `POST /api/v1/auth/login` (named \
                     `__Host-wagate_session` when the server is configured for HTTPS).",
                ),
                name: Some(COOKIE_NAME),
                key_in: Some("cookie"),
                scheme: None,
                bearer_format: None,
                flows: None,
                openid_connect_url: None,
            },
        );
    }

    fn security_schemes() -> Vec<&'static str> {
        vec![BEARER_SCHEME, COOKIE_SCHEME]
    }

    async fn from_request(
        req: &'a Request,
        _body: &mut poem::RequestBody,
        _param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        let state = req.data::<AppState>().ok_or_else(|| {
            Rejection(ApiError::internal(&std::io::Error::other(
                "AppState missing from request data",
            )))
        })?;
        let token = presented_token(req, state.auth.cookie_secure());
        let authorized = match token {
            Some(token) => state.auth.authorize(&token),
            None if !state.auth.password_set() => Err(crate::auth::AuthError::PasswordNotSet),
            None => Err(crate::auth::AuthError::MissingCredentials),
        };
        // A valid cookie from another site's page: the owner's browser, not the owner.
        if authorized.is_ok() && via_cookie(req) && needs_same_origin(req) && !same_origin(req) {
            return Err(Rejection(ApiError::forbidden(
                "cross_origin_refused",
                "a request made with the session cookie must come from this server's own pages \
                 (its Origin must match the Host); scripts and other sites use \
                 `Authorization: Bearer <token>`",
            ))
            .into());
        }
        let (claims, grant) = authorized.map_err(|err| Rejection(ApiError::from(err)))?;
        permitted(req, &grant).map_err(Rejection)?;
        Ok(Owner { claims, grant })
    }
}

/// Whether the token's grant covers this operation and, when it names one, this phone.
fn permitted(req: &Request, grant: &Grant) -> Result<(), ApiError> {
    // The full path: inside the API's nested routes `uri()` has lost the prefix.
    let path = req.original_uri().path();
    let route = crate::api::routes::find(req.method(), path);
    let operation = route.map_or("an unknown operation", |r| r.operation_id.as_str());
    // A route the table does not know: only a token that may do everything.
    let needed = route.map_or(scope::Scope::Admin, |r| scope::required(&r.operation_id, req.method()));
    if !grant.allows(needed) {
        return Err(ApiError::forbidden(
            "insufficient_scope",
            format!(
                "this token lacks the `{}` scope that {operation} needs; mint one that has it",
                needed.as_str()
            ),
        ));
    }
    if grant.all_phones() {
        return Ok(());
    }
    match route.and_then(|r| r.phone_segment(path)) {
        // A phone outside the token's list does not exist as far as the token can tell.
        // Decoded as the router decodes it for the handler (`%31%32…` is `12…`).
        Some(segment) => match percent_encoding::percent_decode_str(segment)
            .decode_utf8()
            .ok()
            .and_then(|decoded| PhoneNumber::parse_path(&decoded).ok())
        {
            Some(phone) if grant.allows_phone(phone.as_str()) => Ok(()),
            Some(phone) => Err(ApiError::from(PhoneError::NotFound(phone))),
            None => Err(ApiError::not_found(
                "phone_not_found",
                "no such phone has been added; add it with POST /api/v1/user/phones",
            )),
        },
        None if scope::open_to_phone_limited(operation) => Ok(()),
        None => Err(ApiError::forbidden(
            "insufficient_scope",
            format!("this token is limited to some phones, and {operation} concerns every phone"),
        )),
    }
}
