//! `/api/v1/user/phones` and `/api/v1/user/quota`: add, list and delete phones, and link
//! them to WhatsApp (QR code or pairing code), disconnect and log out.

use std::borrow::Cow;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::registry::{MetaSchema, MetaSchemaRef};
use poem_openapi::types::{MaybeUndefined, ParseError, ParseFromParameter, ParseResult, Type};
use poem_openapi::{ApiResponse, Enum, Object, OpenApi};
use qrcode::QrCode;

use super::ApiTags;
use super::auth::Confirmation;
use super::error::statuses::*;
use super::error::{ApiError, Errors};
use super::payload::OptionalJson;
use crate::actors::{Pairing, PhoneEntry};
use crate::api::AppState;
use crate::api::scheme::Owner;
use crate::domain::{PhoneNumber, PhoneStatus};
use crate::engine::PairingMode;

#[derive(Default)]
pub struct PhonesApi;

/// A phone's connection state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum PhoneStatusView {
    /// Not connected; a linked phone connects again without a QR code.
    Disconnected,
    /// Logging in with the stored link.
    Connecting,
    /// Waiting for the QR code to be scanned or the pairing code to be entered.
    Pairing,
    /// Online.
    Connected,
    /// The connection dropped; reconnecting by itself.
    Reconnecting,
    /// Unlinked: connecting needs a new pairing.
    LoggedOut,
    /// The session kept failing and was stopped; connect to try again.
    Failed,
}

impl From<PhoneStatus> for PhoneStatusView {
    fn from(status: PhoneStatus) -> Self {
        match status {
            PhoneStatus::Disconnected => Self::Disconnected,
            PhoneStatus::Connecting => Self::Connecting,
            PhoneStatus::Pairing => Self::Pairing,
            PhoneStatus::Connected => Self::Connected,
            PhoneStatus::Reconnecting => Self::Reconnecting,
            PhoneStatus::LoggedOut => Self::LoggedOut,
            PhoneStatus::Failed => Self::Failed,
        }
    }
}

/// The QR code to scan now.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct QrView {
    /// The raw QR payload, for rendering it yourself.
    code: String,
    /// The QR code as a PNG image, as a `data:` URL.
    png_data_url: String,
    /// The QR code as an SVG document.
    svg: String,
    /// When this code stops working; a new one replaces it before then.
    expires_at: DateTime<Utc>,
    /// How many codes this pairing attempt has shown, this one included.
    count: u32,
}

/// The code to type on the phone now.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct PairingCodeView {
    /// Type this in WhatsApp: Linked devices → Link a device → Link with phone number instead.
    code: String,
    /// When this code stops working.
    expires_at: DateTime<Utc>,
}

/// A phone: its connection state, the linked account, and the QR or pairing code while it pairs.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct PhoneView {
    /// The phone number in E.164 form.
    phone: String,
    /// ISO 3166 alpha-2 country of the number.
    country: Option<String>,
    status: PhoneStatusView,
    /// The linked account's JID, once connected.
    jid: Option<String>,
    /// The linked account's LID (hidden-number identity), once connected.
    lid: Option<String>,
    /// The name the account shows to others.
    push_name: Option<String>,
    /// When the current connection was made.
    connected_at: Option<DateTime<Utc>>,
    /// Why the phone is not connected, in words, when something went wrong.
    last_error: Option<String>,
    /// When the phone was added.
    created_at: DateTime<Utc>,
    /// The QR code to scan, while pairing by QR code.
    qr: Option<QrView>,
    /// The code to type on the phone, while pairing by code.
    pairing_code: Option<PairingCodeView>,
}

impl From<PhoneEntry> for PhoneView {
    fn from(entry: PhoneEntry) -> Self {
        let (qr, pairing_code) = match entry.pairing {
            Some(Pairing::Qr {
                code,
                expires_at,
                count,
            }) => (
                Some(QrView {
                    png_data_url: qr_png_data_url(&code),
                    svg: qr_svg(&code),
                    code,
                    expires_at,
                    count,
                }),
                None,
            ),
            Some(Pairing::Code { code, expires_at }) => (None, Some(PairingCodeView { code, expires_at })),
            None => (None, None),
        };
        Self {
            phone: entry.phone.to_string(),
            country: entry.country,
            status: entry.state.status.into(),
            jid: entry.state.jid,
            lid: entry.state.lid,
            push_name: entry.state.push_name,
            connected_at: entry.state.connected_at,
            last_error: entry.state.last_error,
            created_at: entry.created_at,
            qr,
            pairing_code,
        }
    }
}

/// Every phone the token may see, oldest first.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct PhoneList {
    /// Every phone, oldest first.
    data: Vec<PhoneView>,
}

/// A phone number to add (E.164, or national with `country`).
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct AddPhoneRequest {
    /// The number with its country code (`+12015550123`), or a national number with `country`.
    #[oai(validator(max_length = 32))]
    phone: String,
    /// ISO 3166 alpha-2 country (`US`, `GB`, `BR`) for a number written without country code.
    #[oai(validator(pattern = "^[A-Za-z]{2}$"))]
    country: Option<String>,
}

/// How to pair a phone that is not linked yet.
#[derive(Debug, Default, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct ConnectRequest {
    /// Pair by typing a code on the phone instead of scanning a QR code. Default false.
    pairing_code_mode: MaybeUndefined<bool>,
}

#[derive(ApiResponse)]
pub enum PhoneCreated {
    /// The phone was added; connect it to link it to WhatsApp.
    #[oai(status = 201)]
    Created(Json<PhoneView>),
}

/// Phones added, and how many may be (`limits.max_phones`).
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct PhoneQuota {
    /// Phones added.
    used: u64,
    /// Phones allowed (`limits.max_phones`).
    limit: u32,
}

/// Phones used and allowed, and the media kinds that may be sent.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct QuotaView {
    phones: PhoneQuota,
    /// Media kinds that may be sent.
    allowed_media: Vec<String>,
}

#[OpenApi(prefix_path = "/user", tag = "ApiTags::Phones")]
impl PhonesApi {
    /// List phones
    ///
    /// Every phone with its current connection state.
    #[oai(path = "/phones", method = "get", operation_id = "listPhones")]
    async fn list(&self, owner: Owner, state: Data<&AppState>) -> Result<Json<PhoneList>, Errors<{ SIGNED_IN }>> {
        Ok(Json(PhoneList {
            data: state
                .gateway
                .phones()
                .into_iter()
                .filter(|entry| owner.grant.allows_phone(entry.phone.as_str()))
                .map(PhoneView::from)
                .collect(),
        }))
    }

    /// Add a phone
    ///
    /// Adds a phone number to link to WhatsApp. The number is validated and stored in E.164
    /// form. Connect it afterwards to pair it.
    #[oai(path = "/phones", method = "post", operation_id = "addPhone")]
    async fn add(
        &self,
        owner: Owner,
        state: Data<&AppState>,
        body: Json<AddPhoneRequest>,
    ) -> Result<PhoneCreated, Errors<{ SIGNED_IN | BODY | CONFLICT }>> {
        let country = body.0.country.as_deref().map(str::to_ascii_uppercase);
        let phone = PhoneNumber::parse(&body.0.phone, country.as_deref())
            .map_err(|err| ApiError::bad_request("invalid_phone", err.to_string()))?;
        if !owner.grant.allows_phone(phone.as_str()) {
            return Err(ApiError::forbidden(
                "insufficient_scope",
                "this token is limited to some phones and may add only those",
            )
            .into());
        }
        let entry = state.gateway.add_phone(phone, country).await?;
        Ok(PhoneCreated::Created(Json(entry.into())))
    }

    /// Get a phone
    ///
    /// One phone's state, with its QR code or pairing code while it is pairing.
    #[oai(path = "/phones/:phone", method = "get", operation_id = "getPhone")]
    async fn get(
        &self,
        _owner: Owner,
        state: Data<&AppState>,
        phone: Path<PhonePath>,
    ) -> Result<Json<PhoneView>, Errors<{ SIGNED_IN | PHONE }>> {
        let phone = phone.0.0;
        Ok(Json(state.gateway.phone(&phone)?.entry()?.into()))
    }

    /// Delete a phone
    ///
    /// Logs the device out of WhatsApp, stops its session and deletes its keys and data.
    #[oai(path = "/phones/:phone", method = "delete", operation_id = "deletePhone")]
    async fn delete(
        &self,
        _owner: Owner,
        state: Data<&AppState>,
        phone: Path<PhonePath>,
    ) -> Result<Json<Confirmation>, Errors<{ SIGNED_IN | PHONE }>> {
        let phone = phone.0.0;
        state.gateway.remove_phone(&phone).await?;
        Ok(Confirmation::new(format!("phone {phone} deleted")))
    }

    /// Connect a phone
    ///
    /// Connects a linked phone, or starts pairing one that is not linked: the answer then
    /// carries the QR code (raw, PNG and SVG) or, with `pairingCodeMode`, the code to type
    /// on the phone. Idempotent: on a connected phone it returns its state, on a pairing
    /// phone the current code. QR codes rotate; `GET /phones/{phone}` or the WebSocket
    /// stream shows the newest.
    #[oai(path = "/phones/:phone/connect", method = "post", operation_id = "connectPhone")]
    async fn connect(
        &self,
        _owner: Owner,
        state: Data<&AppState>,
        phone: Path<PhonePath>,
        body: OptionalJson<ConnectRequest>,
    ) -> Result<Json<PhoneView>, Errors<{ SIGNED_IN | PHONE | BODY | CONFLICT }>> {
        let phone = phone.0.0;
        if body.pairing_code_mode.is_null() {
            return Err(ApiError::bad_request("invalid_request", "`pairingCodeMode` must be true or false").into());
        }
        let mode = if body.pairing_code_mode.as_opt_ref().flatten().copied().unwrap_or(false) {
            PairingMode::Code
        } else {
            PairingMode::Qr
        };
        Ok(Json(state.gateway.phone(&phone)?.connect(mode).await?.into()))
    }

    /// Disconnect a phone
    ///
    /// Takes the phone offline but keeps its link, so the next connect needs no QR code.
    /// Idempotent.
    #[oai(
        path = "/phones/:phone/disconnect",
        method = "post",
        operation_id = "disconnectPhone"
    )]
    async fn disconnect(
        &self,
        _owner: Owner,
        state: Data<&AppState>,
        phone: Path<PhonePath>,
    ) -> Result<Json<PhoneView>, Errors<{ SIGNED_IN | PHONE | CONFLICT }>> {
        let phone = phone.0.0;
        Ok(Json(state.gateway.phone(&phone)?.disconnect().await?.into()))
    }

    /// Log a phone out
    ///
    /// Unlinks the device from the WhatsApp account and deletes its keys; the next connect
    /// pairs anew. The phone stays in the list.
    #[oai(path = "/phones/:phone/logout", method = "post", operation_id = "logoutPhone")]
    async fn logout(
        &self,
        _owner: Owner,
        state: Data<&AppState>,
        phone: Path<PhonePath>,
    ) -> Result<Json<PhoneView>, Errors<{ SIGNED_IN | PHONE | CONFLICT }>> {
        let phone = phone.0.0;
        Ok(Json(state.gateway.phone(&phone)?.logout().await?.into()))
    }

    /// Quota
    ///
    /// Phones used and allowed, and the media kinds that may be sent.
    #[oai(path = "/quota", method = "get", operation_id = "getQuota")]
    async fn quota(&self, _owner: Owner, state: Data<&AppState>) -> Result<Json<QuotaView>, Errors<{ SIGNED_IN }>> {
        let limits = &state.config.limits;
        Ok(Json(QuotaView {
            phones: PhoneQuota {
                used: state.gateway.phones().len() as u64,
                limit: limits.max_phones,
            },
            allowed_media: limits.allowed_media.iter().map(|k| k.as_str().to_owned()).collect(),
        }))
    }
}

/// The `{phone}` of a path: `+12015550123`, `12015550123` or `%2B12015550123`, parsed
/// once here for every route. A segment that is not a phone number is refused before the
/// handler runs (400 `invalid_phone`, see [`super::error`]).
pub struct PhonePath(pub PhoneNumber);

impl Type for PhonePath {
    const IS_REQUIRED: bool = true;
    type RawValueType = Self;
    type RawElementValueType = Self;

    fn name() -> Cow<'static, str> {
        "string".into()
    }

    fn schema_ref() -> MetaSchemaRef {
        MetaSchemaRef::Inline(Box::new(MetaSchema {
            pattern: Some(r"^(\+|%2B)?[1-9][0-9]{6,14}$".into()),
            ..MetaSchema::new("string")
        }))
    }

    fn as_raw_value(&self) -> Option<&Self> {
        Some(self)
    }

    fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a Self> + 'a> {
        Box::new(self.as_raw_value().into_iter())
    }
}

impl ParseFromParameter for PhonePath {
    fn parse_from_parameter(value: &str) -> ParseResult<Self> {
        PhoneNumber::parse_path(value).map(Self).map_err(ParseError::custom)
    }
}

fn qr_svg(code: &str) -> String {
    QrCode::new(code.as_bytes())
        .map(|qr| {
            qr.render::<qrcode::render::svg::Color<'_>>()
                .min_dimensions(256, 256)
                .build()
        })
        .unwrap_or_default()
}

fn qr_png_data_url(code: &str) -> String {
    let Ok(qr) = QrCode::new(code.as_bytes()) else {
        return String::new();
    };
    let image = qr.render::<image::Luma<u8>>().min_dimensions(256, 256).build();
    let mut png = std::io::Cursor::new(Vec::new());
    if image.write_to(&mut png, image::ImageFormat::Png).is_err() {
        return String::new();
    }
    format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(png.into_inner())
    )
}
