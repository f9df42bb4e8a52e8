//! A network on which WhatsApp cannot be reached, for the real engine: every WebSocket and
//! HTTPS request fails as it would on a machine without internet.

use std::sync::Arc;

use wagate::engine::Engine;
use wagate::engine::whatsapp::{Network, Options, WhatsappEngine};
use whatsapp_rust::http::{HttpClient, HttpRequest, HttpResponse};
use whatsapp_rust::transport::{Transport, TransportEvent, TransportFactory};

pub const REASON: &str = "network is unreachable (test network)";

struct Offline;

#[whatsapp_rust::async_trait]
impl TransportFactory for Offline {
    async fn create_transport(
        &self,
    ) -> Result<
        (
            Arc<dyn Transport>,
            whatsapp_rust::async_channel::Receiver<TransportEvent>,
        ),
        anyhow::Error,
    > {
        Err(anyhow::anyhow!(REASON))
    }
}

#[whatsapp_rust::async_trait]
impl HttpClient for Offline {
    async fn execute(&self, _request: HttpRequest) -> anyhow::Result<HttpResponse> {
        Err(anyhow::anyhow!(REASON))
    }
}

pub fn engine(data_dir: &std::path::Path) -> Arc<dyn Engine> {
    let offline = Arc::new(Offline);
    Arc::new(WhatsappEngine::with_network(
        data_dir.to_path_buf(),
        Network {
            transports: offline.clone(),
            http: offline,
            version: None,
        },
        Options::default(),
    ))
}
