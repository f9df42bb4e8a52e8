//! `wa-emulator`: WhatsApp's side of the wire in one local process, so a whatsapp-rust
//! client (the gateway's `whatsapp` engine) can pair, log in, stay online and be kicked
//! offline, at the protocol level, without the internet.
//!
//! - [`connection`]: one client's WebSocket: the Noise handshake ([`noise`]), then binary
//!   stanzas ([`wire`]) answered by [`iq`] and [`pairing`], messages and receipts carried
//!   by [`routing`] (to groups by [`groups`]), keys served by [`prekeys`].
//! - [`network`]: the accounts, their linked devices and the live connections.
//! - [`phone`]: each account's primary phone, a real Signal participant (a whatsapp-rust
//!   client inside the emulator) that decrypts what reaches the person.
//! - [`media`]: the media servers: encrypted uploads and downloads.
//! - [`control`]: the JSON API tests drive it with, as a person and WhatsApp would.
//!
//! [`Emulator::start`] serves both on one port: `ws://HOST:PORT/ws/chat` for clients,
//! `http://HOST:PORT/control/…` for the control API.

pub mod connection;
pub mod control;
pub mod groups;
pub mod iq;
pub mod media;
pub mod network;
pub mod noise;
pub mod pairing;
pub mod phone;
pub mod prekeys;
pub mod routing;
pub mod wire;

use std::net::SocketAddr;
use std::sync::Arc;

use poem::web::Data;
use poem::web::websocket::WebSocket;
use poem::{EndpointExt, IntoResponse, get, handler};

pub use network::{Config, Network};

/// A running emulator. Dropping it stops the server.
pub struct Emulator {
    pub network: Arc<Network>,
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

#[handler]
fn chat(ws: WebSocket, Data(net): Data<&Arc<Network>>) -> impl IntoResponse {
    let net = Arc::clone(net);
    ws.on_upgrade(move |socket| connection::serve(net, socket))
}

impl Emulator {
    /// Listens on `listen` (port 0 picks a free one) and serves until dropped.
    pub async fn start(listen: SocketAddr, config: Config) -> std::io::Result<Self> {
        let listener = std::net::TcpListener::bind(listen)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let acceptor = poem::listener::TcpAcceptor::from_std(listener)?;
        let network = Network::new(config);
        let _ = network.addr.set(addr);
        let app = control::routes()
            .at("/ws/chat", get(chat))
            .at("/mms/:kind/:token", poem::post(media::upload))
            .at("/emu/:kind/:digest", get(media::download))
            .data(Arc::clone(&network));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let server = poem::Server::new_with_acceptor(acceptor);
            let signal = async {
                let _ = stopped.await;
            };
            if let Err(err) = server
                .run_with_graceful_shutdown(app, signal, Some(std::time::Duration::from_secs(1)))
                .await
            {
                tracing::error!(error = %err, "the emulator stopped");
            }
        });
        tracing::info!(%addr, "the WhatsApp emulator listens");
        Ok(Self {
            network,
            addr,
            stop: Some(stop),
        })
    }

    /// The control API's base, `http://HOST:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Where clients connect: `ws://HOST:PORT/ws/chat`.
    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws/chat", self.addr)
    }

    /// Stops the server (dropping the handle does the same).
    pub fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
