//! The control API: what tests and scripts do as the people and servers on WhatsApp's
//! side would (create an account, scan a QR, type a code, look at linked devices, kick
//! or remove a device). JSON over HTTP on the emulator's port, errors as
//! `{"error": {"code", "message"}}`.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use poem::http::StatusCode;
use poem::web::{Data, Json, Path};
use poem::{IntoResponse, Response, Route, get, handler, post};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::network::{Addressing, Network, digits};
use crate::pairing::{self, LinkError, Linked};
use crate::phone::Phone;
use crate::wire;

mod messages;

pub fn routes() -> Route {
    Route::new()
        .at("/control/health", get(health))
        .at("/control/accounts", post(create_account))
        .at("/control/accounts/:phone/link", post(link))
        .at("/control/accounts/:phone/link-code", post(link_code))
        .at("/control/accounts/:phone/devices", get(devices))
        .at("/control/accounts/:phone/devices/kick", post(kick))
        .at("/control/accounts/:phone/unlink", post(unlink))
        .at(
            "/control/accounts/:phone/messages",
            get(messages::received).post(messages::send),
        )
        .at("/control/accounts/:phone/receipts", get(messages::receipts))
        .at("/control/accounts/:phone/chatstates", get(messages::chatstates))
        .at("/control/accounts/:phone/read", post(messages::read))
        .at("/control/accounts/:phone/refuse", post(messages::refuse))
        .at("/control/accounts/:phone/groups", post(messages::create_group))
        .at("/control/accounts/:phone/status", post(messages::post_status))
        .at("/control/newsletters/:id/posts", post(messages::post_newsletter))
}

pub(crate) fn error(status: StatusCode, code: &str, message: impl std::fmt::Display) -> Response {
    (
        status,
        Json(json!({ "error": { "code": code, "message": message.to_string() } })),
    )
        .into_response()
}

pub(crate) fn not_found(phone: &str) -> Response {
    error(
        StatusCode::NOT_FOUND,
        "account_not_found",
        format!("there is no account for {phone}"),
    )
}

#[handler]
fn health(Data(net): Data<&Arc<Network>>) -> Json<serde_json::Value> {
    let state = net.state();
    let phones = state
        .accounts
        .values()
        .filter_map(|a| a.devices.get(&0))
        .filter(|d| d.conn.is_some())
        .count();
    Json(json!({
        "status": "ok",
        "accounts": state.accounts.len(),
        // Linked devices' connections; the accounts' own phones are counted apart.
        "connections": state.conns.len().saturating_sub(phones),
        "phoneConnections": phones,
        "doubleConnections": state.double_connections,
        "groups": state.groups.len(),
        "mediaBlobs": net.media.len(),
    }))
}

#[derive(Deserialize)]
struct NewAccount {
    phone: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    addressing: Addressing,
}

#[handler]
async fn create_account(Data(net): Data<&Arc<Network>>, body: poem::Result<Json<NewAccount>>) -> Response {
    let Ok(Json(body)) = body else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_body",
            "expected {\"phone\", \"name\"?, \"addressing\"?: \"pn\"|\"lid\"}",
        );
    };
    let phone = digits(&body.phone);
    if !(7..=15).contains(&phone.len()) {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_phone",
            "a phone number has 7 to 15 digits",
        );
    }
    if net.state().accounts.contains_key(&phone) {
        return error(
            StatusCode::CONFLICT,
            "account_exists",
            format!("{phone} already has an account"),
        );
    }
    let name = body.name.unwrap_or_else(|| format!("Account {phone}"));
    if let Err(err) = Phone::create(net, &phone, &name, body.addressing).await {
        return error(StatusCode::INTERNAL_SERVER_ERROR, "phone_failed", err);
    }
    let state = net.state();
    let Some(account) = state.accounts.get(&phone) else {
        return not_found(&phone);
    };
    (
        StatusCode::CREATED,
        Json(json!({
            "phone": phone,
            "name": name,
            "jid": account.jid(),
            "lid": account.lid_jid(),
            "addressing": account.addressing,
        })),
    )
        .into_response()
}

fn link_error(err: &LinkError) -> Response {
    let (status, code) = match err {
        LinkError::NoAccount(_) => (StatusCode::NOT_FOUND, "account_not_found"),
        LinkError::BadQr(_) => (StatusCode::BAD_REQUEST, "invalid_qr"),
        LinkError::UnknownRef => (StatusCode::NOT_FOUND, "qr_not_shown"),
        LinkError::QrMismatch => (StatusCode::BAD_REQUEST, "qr_mismatch"),
        LinkError::NoCodeRequest(_) => (StatusCode::NOT_FOUND, "no_code_request"),
        LinkError::WrongCode => (StatusCode::BAD_REQUEST, "wrong_code"),
        LinkError::Timeout => (StatusCode::GATEWAY_TIMEOUT, "device_timeout"),
        LinkError::Refused(_) => (StatusCode::BAD_GATEWAY, "device_refused"),
        LinkError::Gone => (StatusCode::GONE, "device_gone"),
    };
    error(status, code, err)
}

fn linked(result: Result<Linked, LinkError>) -> Response {
    match result {
        Ok(linked) => Json(json!({
            "phone": linked.phone,
            "device": linked.device,
            "name": linked.name,
        }))
        .into_response(),
        Err(err) => link_error(&err),
    }
}

#[derive(Deserialize)]
struct Scan {
    qr: String,
}

#[handler]
async fn link(Data(net): Data<&Arc<Network>>, Path(phone): Path<String>, body: poem::Result<Json<Scan>>) -> Response {
    let Ok(Json(body)) = body else {
        return error(StatusCode::BAD_REQUEST, "invalid_body", "expected {\"qr\"}");
    };
    linked(pairing::link_qr(net, &phone, &body.qr).await)
}

#[derive(Deserialize)]
struct Typed {
    code: String,
}

#[handler]
async fn link_code(
    Data(net): Data<&Arc<Network>>,
    Path(phone): Path<String>,
    body: poem::Result<Json<Typed>>,
) -> Response {
    let Ok(Json(body)) = body else {
        return error(StatusCode::BAD_REQUEST, "invalid_body", "expected {\"code\"}");
    };
    linked(pairing::link_code(net, &phone, &body.code).await)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DeviceView {
    id: u16,
    jid: String,
    name: String,
    platform: String,
    connected: bool,
    linked_at: DateTime<Utc>,
    last_seen_at: Option<DateTime<Utc>>,
    presence: Option<String>,
    available_count: u32,
    prekeys: usize,
    /// Stanzas waiting for it to acknowledge them.
    inbox: usize,
}

#[handler]
fn devices(Data(net): Data<&Arc<Network>>, Path(phone): Path<String>) -> Response {
    let phone = digits(&phone);
    let state = net.state();
    let Some(account) = state.accounts.get(&phone) else {
        return not_found(&phone);
    };
    let data: Vec<DeviceView> = account
        .devices
        .values()
        .filter(|d| d.id != 0)
        .map(|d| DeviceView {
            id: d.id,
            jid: format!("{phone}:{}@s.whatsapp.net", d.id),
            name: d.name.clone(),
            platform: d.platform.clone(),
            connected: d.conn.is_some_and(|c| state.conns.contains_key(&c)),
            linked_at: d.linked_at,
            last_seen_at: d.last_seen_at,
            presence: d.presence.clone(),
            available_count: d.available_count,
            prekeys: d.keys.as_ref().map_or(0, |k| k.one_time.len()),
            inbox: d.inbox.len(),
        })
        .collect();
    let banned_until = account
        .banned
        .map(|(until, _)| until)
        .filter(|until| *until > Utc::now());
    Json(json!({ "data": data, "bannedUntil": banned_until })).into_response()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Kick {
    reason: KickReason,
    /// For a ban: how long it lasts (default an hour).
    #[serde(default)]
    seconds: Option<u64>,
    /// One device; every linked device of the account when absent.
    #[serde(default)]
    device: Option<u16>,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum KickReason {
    /// WhatsApp logs the device out (stream error 401): it is unlinked.
    Logout,
    /// Another connection took the device's place (conflict "replaced").
    Replaced,
    /// The account is banned for a time; the device is disconnected and refused until then.
    Ban,
    /// The network drops the connection without a goodbye.
    Drop,
}

#[handler]
fn kick(Data(net): Data<&Arc<Network>>, Path(phone): Path<String>, body: poem::Result<Json<Kick>>) -> Response {
    let Ok(Json(body)) = body else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_body",
            "expected {\"reason\": \"logout\"|\"replaced\"|\"ban\"|\"drop\", \"seconds\"?, \"device\"?}",
        );
    };
    let phone = digits(&phone);
    let mut state = net.state();
    let Some(account) = state.accounts.get_mut(&phone) else {
        return not_found(&phone);
    };
    if let Some(id) = body.device
        && !account.devices.contains_key(&id)
    {
        return error(
            StatusCode::NOT_FOUND,
            "device_not_found",
            format!("{phone} has no device {id}"),
        );
    }
    let chosen = account.chosen(body.device);
    let mut until = None;
    if body.reason == KickReason::Ban {
        let ends = Utc::now() + chrono::Duration::seconds(i64::try_from(body.seconds.unwrap_or(3600)).unwrap_or(3600));
        account.banned = Some((ends, 101));
        until = Some(ends);
    }
    let conns: Vec<u64> = chosen
        .iter()
        .filter_map(|id| account.devices.get(id).and_then(|d| d.conn))
        .collect();
    if body.reason == KickReason::Logout {
        for id in &chosen {
            account.devices.remove(id);
        }
    }
    let live: Vec<_> = conns.iter().filter_map(|id| state.conns.get(id).cloned()).collect();
    if live.is_empty() && matches!(body.reason, KickReason::Replaced | KickReason::Drop) {
        return error(StatusCode::CONFLICT, "not_connected", "no chosen device is connected");
    }
    for conn in &live {
        match body.reason {
            KickReason::Logout => conn.close(Some(wire::stream_error_code(401))),
            KickReason::Replaced => conn.close(Some(wire::stream_conflict("replaced"))),
            // The connection ends; logging in again is refused with the ban's end.
            KickReason::Ban => conn.close(Some(wire::stream_end())),
            KickReason::Drop => conn.drop_now(),
        }
    }
    Json(json!({ "devices": chosen, "connections": live.len(), "bannedUntil": until })).into_response()
}

#[derive(Deserialize, Default)]
struct Unlink {
    #[serde(default)]
    device: Option<u16>,
}

#[handler]
fn unlink(Data(net): Data<&Arc<Network>>, Path(phone): Path<String>, body: Option<Json<Unlink>>) -> Response {
    let body = body.map(|Json(b)| b).unwrap_or_default();
    let phone = digits(&phone);
    let mut state = net.state();
    let Some(account) = state.accounts.get_mut(&phone) else {
        return not_found(&phone);
    };
    let chosen = account.chosen(body.device);
    if chosen.is_empty() {
        return error(StatusCode::NOT_FOUND, "device_not_found", "no such linked device");
    }
    let conns: Vec<u64> = chosen
        .iter()
        .filter_map(|id| account.devices.remove(id).and_then(|d| d.conn))
        .collect();
    for id in conns {
        if let Some(conn) = state.conns.get(&id) {
            conn.close(Some(wire::stream_conflict("device_removed")));
        }
    }
    tracing::info!(%phone, devices = ?chosen, "the person removed linked devices");
    Json(json!({ "devices": chosen })).into_response()
}
