//! The dashboard: static files compiled into the binary, served at `/` with a strict
//! Content-Security-Policy (no inline scripts, nothing from other origins).

use poem::endpoint::{EmbeddedFileEndpoint, EmbeddedFilesEndpoint};
use poem::middleware::SetHeader;
use poem::{Endpoint, EndpointExt, Route};
use rust_embed::RustEmbed;

#[derive(RustEmbed)]
#[folder = "src/web/assets/"]
struct Assets;

const CSP: &str = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; \
                   connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// For `/docs` (Swagger UI, whose page carries inline scripts): it may not be framed by
/// another page (clickjacking), and what it loads is not sniffed into another type.
pub fn docs_headers() -> SetHeader {
    SetHeader::new()
        .overriding("Content-Security-Policy", "frame-ancestors 'none'; base-uri 'none'")
        .overriding("X-Frame-Options", "DENY")
        .overriding("X-Content-Type-Options", "nosniff")
        .overriding("Referrer-Policy", "no-referrer")
}

/// `/` (the page) and `/assets/…` (its script and styles).
pub fn routes() -> impl Endpoint {
    Route::new()
        .at("/", EmbeddedFileEndpoint::<Assets>::new("index.html"))
        .nest("/assets", EmbeddedFilesEndpoint::<Assets>::new())
        .with(
            SetHeader::new()
                .overriding("Content-Security-Policy", CSP)
                .overriding("X-Frame-Options", "DENY")
                .overriding("X-Content-Type-Options", "nosniff")
                .overriding("Referrer-Policy", "no-referrer"),
        )
}
