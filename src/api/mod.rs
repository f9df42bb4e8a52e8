//! The HTTP API: one `#[OpenApi]` struct per tag, composed into one service whose spec is
//! served live at `/api/v1/openapi.json` and committed as `openapi/openapi.json`.

pub mod auth;
pub mod error;
pub mod health;
pub mod middleware;
pub mod payload;
pub mod phones;
pub mod sandbox;

use poem_openapi::{OpenApiService, Tags};

use auth::AuthApi;
use health::HealthApi;
use phones::PhonesApi;
use sandbox::SandboxApi;

/// Where the API lives.
pub const PREFIX: &str = "/api/v1";

#[derive(Tags)]
pub enum ApiTags {
    /// Log in and out, permanent API tokens and the owner's password.
    Auth,
    /// Liveness and resource usage.
    Health,
    /// Phones: add them, link them to WhatsApp by QR code or pairing code, disconnect, log out.
    Phones,
    /// The simulated WhatsApp network (only with `engine = "sandbox"`).
    Sandbox,
}

pub type Apis = (AuthApi, HealthApi, PhonesApi, SandboxApi);

/// The API with its OpenAPI description; the routes and the spec come from this one value.
pub fn service() -> OpenApiService<Apis, ()> {
    OpenApiService::new(
        (AuthApi, HealthApi, PhonesApi, SandboxApi),
        "wagate",
        env!("CARGO_PKG_VERSION"),
    )
    .summary("Self-hosted multi-phone WhatsApp HTTP API gateway")
    .description(DESCRIPTION)
    .url_prefix(PREFIX)
}

/// The spec as pretty JSON with a trailing newline, exactly as committed.
pub fn spec_json() -> String {
    let mut spec = service().spec();
    spec.push('\n');
    spec
}

const DESCRIPTION: &str = "\
Link WhatsApp accounts (phones) by QR code or pairing code, then send messages, check numbers, \
read history, groups and contacts, and receive webhooks.

**Authentication.** Every operation except `health`, `login`, `generateToken`, `changePassword`, \
`verifyToken` and `logout` needs a token: a session token from `login` or a permanent token from \
`generateToken`, sent as `Authorization: Bearer <token>` or as the `wagate_session` cookie.

**Errors.** Every error is JSON: `{\"error\":{\"code\":\"snake_case_code\",\"message\":\"…\"}}`.";
