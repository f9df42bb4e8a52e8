//! Sample media (real magic bytes, so the server's sniffing sees what it would see in
//! production) and a local HTTP server that serves them for `mediaLink` tests.

use std::net::SocketAddr;

use poem::http::StatusCode;
use poem::listener::{Acceptor, Listener, TcpListener};
use poem::web::Path;
use poem::{Response, Route, Server, handler};

use crate::helpers::{DEADLINE, eventually};

pub fn png() -> Vec<u8> {
    let mut bytes = vec![
        0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13, b'I', b'H', b'D', b'R',
    ];
    bytes.extend_from_slice(&[0; 64]);
    bytes
}

pub fn jpeg() -> Vec<u8> {
    let mut bytes = vec![0xFF, 0xD8, 0xFF, 0xE0, 0, 16, b'J', b'F', b'I', b'F', 0];
    bytes.extend_from_slice(&[0; 64]);
    bytes
}

pub fn mp4() -> Vec<u8> {
    let mut bytes = vec![
        0, 0, 0, 0x18, b'f', b't', b'y', b'p', b'i', b's', b'o', b'm', 0, 0, 2, 0,
    ];
    bytes.extend_from_slice(b"isomiso2");
    bytes.extend_from_slice(&[0; 64]);
    bytes
}

pub fn pdf() -> Vec<u8> {
    let mut bytes = b"%PDF-1.4\n".to_vec();
    bytes.extend_from_slice(&[b'x'; 64]);
    bytes
}

pub fn webp() -> Vec<u8> {
    let mut bytes = b"RIFF".to_vec();
    bytes.extend_from_slice(&[60, 0, 0, 0]);
    bytes.extend_from_slice(b"WEBPVP8 ");
    bytes.extend_from_slice(&[0; 64]);
    bytes
}

/// Serves `/files/{name}` with the sample files, `/big` (2 MiB), anything else 404.
pub struct FileServer(Serving);

impl FileServer {
    pub async fn start() -> Self {
        let app = Route::new().at("/files/:name", serve_file).at("/big", big);
        Self(Serving::start("127.0.0.1:0", app).await)
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.0.addr)
    }
}

/// A poem app served on loopback until dropped.
struct Serving {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Serving {
    async fn start(addr: &str, app: impl poem::Endpoint + 'static) -> Self {
        let acceptor = TcpListener::bind(addr.to_owned()).into_acceptor().await.unwrap();
        let addr = acceptor.local_addr()[0].as_socket_addr().copied().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(Server::new_with_acceptor(acceptor).run_with_graceful_shutdown(
            app,
            async move {
                let _ = rx.await;
            },
            None,
        ));
        Self { addr, stop: Some(tx) }
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

#[handler]
fn serve_file(Path(name): Path<String>) -> Response {
    let (bytes, mime) = match name.as_str() {
        "photo.png" => (png(), "image/png"),
        "photo.jpg" => (jpeg(), "image/jpeg"),
        "clip.mp4" => (mp4(), "video/mp4"),
        "voice.ogg" => (wagate::media::probe::samples::ogg_opus(2), "audio/ogg"),
        "report.pdf" => (pdf(), "application/pdf"),
        "sticker.webp" => (webp(), "image/webp"),
        "mislabelled.png" => (pdf(), "image/png"),
        _ => return Response::builder().status(StatusCode::NOT_FOUND).finish(),
    };
    Response::builder().content_type(mime).body(bytes)
}

#[handler]
fn big() -> Response {
    Response::builder()
        .content_type("image/png")
        .body(vec![0u8; 2 * 1024 * 1024])
}

/// One request a [`Receiver`] got.
#[derive(Debug, Clone)]
pub struct Hit {
    pub headers: poem::http::HeaderMap,
    pub body: String,
}

impl Hit {
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap()
    }
}

#[derive(Default)]
struct ReceiverState {
    hits: std::sync::Mutex<Vec<Hit>>,
    /// Answer 500 to this many requests before answering 200.
    failures_left: std::sync::atomic::AtomicUsize,
}

/// A webhook receiver on loopback that records every request.
pub struct Receiver {
    server: Serving,
    state: std::sync::Arc<ReceiverState>,
}

impl Receiver {
    pub async fn start() -> Self {
        Self::start_on("127.0.0.1:0").await
    }

    pub async fn start_on(addr: &str) -> Self {
        let state = std::sync::Arc::new(ReceiverState::default());
        let shared = state.clone();
        let app = poem::endpoint::make(move |req: poem::Request| {
            let state = shared.clone();
            async move {
                let headers = req.headers().clone();
                let body = req.into_body().into_string().await.unwrap_or_default();
                state.hits.lock().unwrap().push(Hit { headers, body });
                let failing = state
                    .failures_left
                    .fetch_update(
                        std::sync::atomic::Ordering::SeqCst,
                        std::sync::atomic::Ordering::SeqCst,
                        |n| n.checked_sub(1),
                    )
                    .is_ok();
                if failing {
                    Response::builder()
                        .status(StatusCode::INTERNAL_SERVER_ERROR)
                        .body("not now")
                } else {
                    Response::builder().status(StatusCode::OK).body("ok")
                }
            }
        });
        Self {
            server: Serving::start(addr, app).await,
            state,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}/hook", self.server.addr)
    }

    pub fn fail_next(&self, n: usize) {
        self.state.failures_left.store(n, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn hits(&self) -> Vec<Hit> {
        self.state.hits.lock().unwrap().clone()
    }

    /// Waits until at least `n` requests arrived and returns them.
    pub async fn wait_for(&self, n: usize) -> Vec<Hit> {
        eventually(DEADLINE, || async {
            let hits = self.hits();
            if hits.len() >= n {
                Ok(hits)
            } else {
                Err(format!("only {} of {n} webhook requests arrived", hits.len()))
            }
        })
        .await
    }
}

/// Checks a webhook request's signature the way a receiver would.
pub fn signature_valid(hit: &Hit, secret: &str) -> bool {
    use hmac::{Hmac, Mac};
    let Some(given) = hit.header("x-wagate-signature").strip_prefix("sha256=") else {
        return false;
    };
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{}.{}", hit.header("x-wagate-timestamp"), hit.body).as_bytes());
    mac.verify_slice(&hex::decode(given).unwrap_or_default()).is_ok()
}
