//! A webhook receiver for the benchmarks: counts deliveries, measures each one's latency
//! from the message's timestamp to its arrival, and can pretend to be down.
//!
//! `cargo run --release --example webhook_receiver -- 127.0.0.1:9999`
//! POST /hook (the webhook URL), POST /down, POST /up, POST /reset, GET /stats.

#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::Instant;

use poem::http::StatusCode;
use poem::listener::TcpListener;
use poem::web::{Data, Json};
use poem::{EndpointExt, Response, Route, Server, handler, post};

#[derive(Default)]
struct Stats {
    down: bool,
    count: u64,
    first: Option<Instant>,
    last: Option<Instant>,
    latencies_ms: Vec<f64>,
}

type Shared = Arc<Mutex<Stats>>;

#[handler]
fn hook(body: String, Data(shared): Data<&Shared>) -> Response {
    let now = Instant::now();
    let mut stats = shared.lock().unwrap();
    if stats.down {
        return Response::builder().status(StatusCode::SERVICE_UNAVAILABLE).finish();
    }
    stats.count += 1;
    stats.first.get_or_insert(now);
    stats.last = Some(now);
    if let Ok(event) = serde_json::from_str::<serde_json::Value>(&body)
        && let Some(ts) = event["data"]["timestamp"].as_str()
        && let Ok(sent) = chrono::DateTime::parse_from_rfc3339(ts)
    {
        let latency = chrono::Utc::now().signed_duration_since(sent);
        stats
            .latencies_ms
            .push(latency.num_microseconds().unwrap_or(0) as f64 / 1000.0);
    }
    Response::builder().status(StatusCode::OK).finish()
}

#[handler]
fn go_down(Data(shared): Data<&Shared>) {
    shared.lock().unwrap().down = true;
}

#[handler]
fn go_up(Data(shared): Data<&Shared>) {
    shared.lock().unwrap().down = false;
}

#[handler]
fn reset(Data(shared): Data<&Shared>) {
    let mut stats = shared.lock().unwrap();
    let is_down = stats.down;
    *stats = Stats {
        down: is_down,
        ..Stats::default()
    };
}

#[handler]
fn report(Data(shared): Data<&Shared>) -> Json<serde_json::Value> {
    let stats = shared.lock().unwrap();
    let mut sorted = stats.latencies_ms.clone();
    sorted.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        if sorted.is_empty() {
            0.0
        } else {
            sorted[((p / 100.0 * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1]
        }
    };
    let span = match (stats.first, stats.last) {
        (Some(first), Some(last)) => last.duration_since(first).as_secs_f64(),
        _ => 0.0,
    };
    Json(serde_json::json!({
        "count": stats.count,
        "seconds": span,
        "perSecond": if span > 0.0 { (stats.count.saturating_sub(1)) as f64 / span } else { 0.0 },
        "p50Ms": pct(50.0),
        "p99Ms": pct(99.0),
        "maxMs": pct(100.0),
    }))
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:9999".into());
    let app = Route::new()
        .at("/hook", post(hook))
        .at("/down", post(go_down))
        .at("/up", post(go_up))
        .at("/reset", post(reset))
        .at("/stats", report)
        .data(Shared::default());
    Server::new(TcpListener::bind(addr)).run(app).await
}
