//! WhatsApp's media servers on the emulator's port. Clients ask where to upload
//! (`<iq xmlns="w:m"><media_conn/>`, answered with this host), POST the encrypted blob to
//! `/mms/{kind}/{token}`, and put the returned direct path in the message; the recipient
//! downloads it from there and decrypts it with the key the message carries. The server
//! only ever holds ciphertext.
//!
//! whatsapp-rust always speaks `https://` to media hosts; [`EmulatorHttp`] is the HTTP
//! client of the emulator's own phones, which speaks plain HTTP to the emulator.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use poem::http::StatusCode;
use poem::web::{Data, Path};
use poem::{Body, IntoResponse, Response, handler};
use sha2::{Digest, Sha256};
use wacore_binary::builder::NodeBuilder;
use wacore_binary::node::Node;
use whatsapp_rust::http::{HttpClient, HttpRequest, HttpResponse, UreqHttpClient};

use crate::network::{Network, lock};
use crate::wire::iq_result;

/// Uploaded blobs, by direct path.
#[derive(Default)]
pub struct Store {
    blobs: Mutex<HashMap<String, Arc<Vec<u8>>>>,
}

impl Store {
    pub fn get(&self, path: &str) -> Option<Arc<Vec<u8>>> {
        lock(&self.blobs).get(path).cloned()
    }

    fn put(&self, path: String, blob: Vec<u8>) {
        lock(&self.blobs).insert(path, Arc::new(blob));
    }

    pub fn len(&self) -> usize {
        lock(&self.blobs).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Where media goes: this emulator, with an auth token good for an hour.
pub fn media_conn(net: &Network, iq: &Node) -> Node {
    let host = net.addr.get().map(ToString::to_string).unwrap_or_default();
    iq_result(
        iq,
        vec![
            NodeBuilder::new("media_conn")
                .attr("auth", "emulator-media-auth")
                .attr("ttl", "3600")
                .attr("auth_ttl", "3600")
                .attr("max_buckets", "1")
                .children([NodeBuilder::new("host").attr("hostname", host).build()])
                .build(),
        ],
    )
}

/// `POST /mms/{kind}/{token}`: keeps the encrypted blob and says where it is.
#[handler]
pub async fn upload(
    Data(net): Data<&Arc<Network>>,
    Path((kind, _token)): Path<(String, String)>,
    body: Body,
) -> Response {
    let Ok(blob) = body.into_vec().await else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let digest: String = Sha256::digest(&blob).iter().map(|b| format!("{b:02x}")).collect();
    let direct_path = format!("/emu/{kind}/{digest}");
    net.media.put(direct_path.clone(), blob);
    let host = net.addr.get().map(ToString::to_string).unwrap_or_default();
    poem::web::Json(serde_json::json!({
        "url": format!("https://{host}{direct_path}"),
        "direct_path": direct_path,
    }))
    .into_response()
}

/// `GET /emu/{kind}/{digest}`: the blob at a direct path.
#[handler]
pub fn download(Data(net): Data<&Arc<Network>>, Path((kind, digest)): Path<(String, String)>) -> Response {
    match net.media.get(&format!("/emu/{kind}/{digest}")) {
        Some(blob) => Response::builder()
            .content_type("application/octet-stream")
            .body(blob.as_ref().clone()),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// An HTTP client that reaches the emulator's media host over plain HTTP (whatsapp-rust
/// writes `https://` for every media host) and everything else as asked.
pub struct EmulatorHttp {
    host: String,
    inner: UreqHttpClient,
}

impl EmulatorHttp {
    pub fn new(net: &Network) -> Self {
        Self {
            host: net.addr.get().map(ToString::to_string).unwrap_or_default(),
            inner: UreqHttpClient::new(),
        }
    }
}

/// `https://HOST/…` → `http://HOST/…` when HOST is `host`.
pub fn plain_http(url: &str, host: &str) -> Option<String> {
    let rest = url.strip_prefix("https://")?;
    let authority = rest.split('/').next()?;
    (!host.is_empty() && authority == host).then(|| format!("http://{rest}"))
}

#[whatsapp_rust::async_trait]
impl HttpClient for EmulatorHttp {
    async fn execute(&self, mut request: HttpRequest) -> anyhow::Result<HttpResponse> {
        if let Some(url) = plain_http(&request.url, &self.host) {
            request.url = url;
        }
        self.inner.execute(request).await
    }
}

#[cfg(test)]
mod tests {
    use super::plain_http;

    #[test]
    fn only_the_emulators_host_is_spoken_to_in_plain_http() {
        assert_eq!(
            plain_http("https://127.0.0.1:7780/mms/image/abc?auth=x", "127.0.0.1:7780").as_deref(),
            Some("http://127.0.0.1:7780/mms/image/abc?auth=x")
        );
        assert_eq!(plain_http("https://mmg.whatsapp.net/x", "127.0.0.1:7780"), None);
        assert_eq!(plain_http("https://127.0.0.1:7781/x", "127.0.0.1:7780"), None);
        assert_eq!(plain_http("https://127.0.0.1:7780/x", ""), None);
    }
}
