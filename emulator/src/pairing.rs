//! Linking a companion device to an account, as the person's primary phone and
//! WhatsApp's servers do it together:
//! - a device that needs pairing is offered QR references ([`offer_refs`]); the person
//!   scans the QR it shows ([`link_qr`]), which carries the device's keys and the shared
//!   ADV secret;
//! - or the device asks for a pairing code for a phone number ([`on_companion_reg`]);
//!   the person types the code on the phone ([`link_code`]), and the two sides derive the
//!   ADV secret from a key exchange wrapped in that code.
//!
//! Either way the primary then signs the device into the account ([`complete`]):
//! `pair-success` with an `ADVSignedDeviceIdentity` under the account's key, the device's
//! counter-signature back, and a 515 stream error that makes it log in with its new
//! identity.

use std::sync::Arc;

use base64::Engine as _;
use base64::prelude::BASE64_STANDARD;
use rand::RngCore;
use tokio::sync::oneshot;
use wacore::adv::{AdvValidation, validate_adv_with_identity_key};
use wacore::libsignal::protocol::{KeyPair, PublicKey};
use wacore::pair::PairUtils;
use wacore::pair_code::PairCodeUtils;
use wacore_binary::builder::NodeBuilder;
use wacore_binary::node::Node;
use waproto::buffa::Message as _;
use waproto::whatsapp as wa;

use crate::network::{CodeFlow, Conn, Device, Finish, Network, Registered, Registration, Role, digits};
use crate::wire::{self, SERVER, attr, attr_is, child, child_bytes, iq_error, iq_result, now_secs};

/// Why a link the person attempted did not happen.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("there is no account for {0}")]
    NoAccount(String),
    #[error("this is not a WhatsApp linking QR code: {0}")]
    BadQr(String),
    #[error("no device is showing this QR code (it expired, or the device went away)")]
    UnknownRef,
    #[error("the QR code does not match the keys of the device that shows it")]
    QrMismatch,
    #[error("no device asked for a pairing code for {0}")]
    NoCodeRequest(String),
    #[error("the code is wrong: the device's key bundle does not open with it")]
    WrongCode,
    #[error("the device did not answer in time")]
    Timeout,
    #[error("the device refused: {0}")]
    Refused(String),
    #[error("the device went away before linking finished")]
    Gone,
}

/// What a finished link made.
#[derive(Debug, Clone)]
pub struct Linked {
    pub phone: String,
    pub device: u16,
    pub name: String,
}

/// `<pair-device>` with fresh QR references for a device that needs pairing.
pub fn offer_refs(net: &Network, conn: &Conn) -> Node {
    let refs: Vec<String> = (0..net.config.qr_refs.max(1)).map(|_| new_ref()).collect();
    {
        let mut state = net.state();
        for r in &refs {
            state.refs.insert(r.clone(), conn.id);
        }
    }
    let children = refs
        .into_iter()
        .map(|r| NodeBuilder::new("ref").bytes(r.into_bytes()).build());
    NodeBuilder::new("iq")
        .attr("from", SERVER)
        .attr("type", "set")
        .attr("id", net.next_stanza_id())
        .attr("xmlns", "md")
        .children([NodeBuilder::new("pair-device").children(children).build()])
        .build()
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    rand::rng().fill_bytes(&mut bytes);
    bytes
}

fn new_ref() -> String {
    format!("2@{}", BASE64_STANDARD.encode(random_bytes::<18>()))
}

/// The person scans `qr` with the phone of account `phone`.
pub async fn link_qr(net: &Arc<Network>, phone: &str, qr: &str) -> Result<Linked, LinkError> {
    let (pairing_ref, noise, identity) =
        PairUtils::parse_qr_code(qr.trim()).map_err(|e| LinkError::BadQr(e.to_string()))?;
    let adv_secret = qr_adv_secret(qr.trim())?;
    let phone = digits(phone);
    let (conn, registration) = {
        let state = net.state();
        if !state.accounts.contains_key(&phone) {
            return Err(LinkError::NoAccount(phone));
        }
        let conn = state
            .refs
            .get(&pairing_ref)
            .and_then(|id| state.conns.get(id))
            .cloned()
            .ok_or(LinkError::UnknownRef)?;
        let Role::Registering(registration) = conn.role() else {
            return Err(LinkError::UnknownRef);
        };
        (conn, registration)
    };
    if conn.client_static != noise || registration.identity_key != identity {
        return Err(LinkError::QrMismatch);
    }
    complete(net, &conn, &phone, &registration, &adv_secret).await
}

/// The ADV secret is the QR's fourth field; [`PairUtils::parse_qr_code`] checks the rest.
fn qr_adv_secret(qr: &str) -> Result<[u8; 32], LinkError> {
    let body = qr
        .strip_prefix(wacore::companion_reg::NATIVE_CAMERA_DEEP_LINK_PREFIX)
        .unwrap_or(qr);
    let field = body
        .split(',')
        .nth(3)
        .ok_or_else(|| LinkError::BadQr("no ADV secret".into()))?;
    BASE64_STANDARD
        .decode(field)
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .ok_or_else(|| LinkError::BadQr("the ADV secret is not 32 bytes of base64".into()))
}

/// A device's pair-code request (`companion_hello`) or its answer to the primary
/// (`companion_finish`).
pub fn on_companion_reg(net: &Network, conn: &Conn, iq: &Node) -> Node {
    let Some(reg) = child(iq, "link_code_companion_reg") else {
        return iq_error(iq, 400, "bad-request");
    };
    if attr_is(reg, "stage", "companion_hello") {
        let phone = digits(&attr(reg, "jid").unwrap_or_default());
        let Some(wrapped) = child_bytes(reg, "link_code_pairing_wrapped_companion_ephemeral_pub") else {
            return iq_error(iq, 400, "bad-request");
        };
        let mut state = net.state();
        if !state.accounts.contains_key(&phone) {
            // What WhatsApp answers for a number that has no account.
            return iq_error(iq, 400, "bad-request");
        }
        let pairing_ref = new_ref().into_bytes();
        state.codes.insert(
            phone,
            CodeFlow {
                conn: conn.id,
                pairing_ref: pairing_ref.clone(),
                wrapped_companion_ephemeral: wrapped,
                finish: None,
            },
        );
        return iq_result(
            iq,
            vec![
                NodeBuilder::new("link_code_companion_reg")
                    .children([NodeBuilder::new("link_code_pairing_ref").bytes(pairing_ref).build()])
                    .build(),
            ],
        );
    }
    if attr_is(reg, "stage", "companion_finish") {
        let (Some(bundle), Some(identity), Some(pairing_ref)) = (
            child_bytes(reg, "link_code_pairing_wrapped_key_bundle"),
            child_bytes(reg, "companion_identity_public"),
            child_bytes(reg, "link_code_pairing_ref"),
        ) else {
            return iq_error(iq, 400, "bad-request");
        };
        let waiter = net
            .state()
            .codes
            .values_mut()
            .find(|flow| flow.conn == conn.id && flow.pairing_ref == pairing_ref)
            .and_then(|flow| flow.finish.take());
        let Some(waiter) = waiter else {
            return iq_error(iq, 400, "bad-request");
        };
        let _ = waiter.send(Finish {
            wrapped_key_bundle: bundle,
            companion_identity: identity,
        });
        return iq_result(iq, Vec::new());
    }
    iq_error(iq, 400, "bad-request")
}

/// The person types `code` on the phone of account `phone`.
pub async fn link_code(net: &Arc<Network>, phone: &str, code: &str) -> Result<Linked, LinkError> {
    let phone = digits(phone);
    let code: String = code
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_uppercase())
        .collect();
    let (identity, pairing_ref, wrapped, conn, registration) = {
        let state = net.state();
        let account = state
            .accounts
            .get(&phone)
            .ok_or_else(|| LinkError::NoAccount(phone.clone()))?;
        let flow = state
            .codes
            .get(&phone)
            .ok_or_else(|| LinkError::NoCodeRequest(phone.clone()))?;
        let conn = state.conns.get(&flow.conn).cloned().ok_or(LinkError::Gone)?;
        let Role::Registering(registration) = conn.role() else {
            return Err(LinkError::Gone);
        };
        (
            account.identity.clone(),
            flow.pairing_ref.clone(),
            flow.wrapped_companion_ephemeral.clone(),
            conn,
            registration,
        )
    };
    let ephemeral = wacore::crypto::generate_curve_key_pair();
    let ephemeral_pub = key32(ephemeral.public_key.public_key_bytes())?;
    // Both are PBKDF2 with many rounds: off the async threads.
    let typed = code.clone();
    let (companion_ephemeral, wrapped_ours) = tokio::task::spawn_blocking(move || {
        let theirs = PairCodeUtils::decrypt_primary_ephemeral_pub(&wrapped, &typed);
        (theirs, PairCodeUtils::encrypt_ephemeral_pub(&ephemeral_pub, &typed))
    })
    .await
    .map_err(|_| LinkError::Gone)?;
    let companion_ephemeral = companion_ephemeral.map_err(|_| LinkError::WrongCode)?;

    let (tx, rx) = oneshot::channel();
    {
        let mut state = net.state();
        let flow = state
            .codes
            .get_mut(&phone)
            .filter(|flow| flow.pairing_ref == pairing_ref)
            .ok_or(LinkError::Gone)?;
        flow.finish = Some(tx);
    }
    conn.send(
        NodeBuilder::new("notification")
            .attr("from", SERVER)
            .attr("type", "link_code_companion_reg")
            .attr("id", net.next_stanza_id())
            .attr("t", now_secs().to_string())
            .children([NodeBuilder::new("link_code_companion_reg")
                .attr("stage", "primary_hello")
                .children([
                    NodeBuilder::new("link_code_pairing_wrapped_primary_ephemeral_pub")
                        .bytes(wrapped_ours.to_vec())
                        .build(),
                    NodeBuilder::new("primary_identity_pub")
                        .bytes(identity.public_key.public_key_bytes().to_vec())
                        .build(),
                    NodeBuilder::new("link_code_pairing_ref").bytes(pairing_ref).build(),
                ])
                .build()])
            .build(),
    );
    let finish = match tokio::time::timeout(net.config.answer_timeout, rx).await {
        Err(_) => return Err(LinkError::Timeout),
        Ok(Err(_)) => return Err(LinkError::Gone),
        Ok(Ok(finish)) => finish,
    };
    let adv_secret = open_key_bundle(&ephemeral, &companion_ephemeral, &identity, &finish)?;
    if finish.companion_identity != registration.identity_key {
        return Err(LinkError::QrMismatch);
    }
    net.state().codes.remove(&phone);
    complete(net, &conn, &phone, &registration, &adv_secret).await
}

fn key32(bytes: &[u8]) -> Result<[u8; 32], LinkError> {
    bytes
        .try_into()
        .map_err(|_| LinkError::Refused("a key is not 32 bytes".into()))
}

/// Opens the device's key bundle with the key agreed through the code and derives the
/// ADV secret the way the device did. A wrong code shows here: the bundle does not open.
fn open_key_bundle(
    ephemeral: &KeyPair,
    companion_ephemeral: &[u8; 32],
    identity: &KeyPair,
    finish: &Finish,
) -> Result<[u8; 32], LinkError> {
    let theirs = PublicKey::from_djb_public_key_bytes(companion_ephemeral).map_err(|_| LinkError::WrongCode)?;
    let ephemeral_shared = ephemeral
        .private_key
        .calculate_agreement(&theirs)
        .map_err(|_| LinkError::WrongCode)?;
    let bundle = &finish.wrapped_key_bundle;
    let (Some(salt), Some(iv), Some(sealed)) = (bundle.get(..32), bundle.get(32..44), bundle.get(44..)) else {
        return Err(LinkError::Refused("the key bundle is too short".into()));
    };
    let key = wacore::crypto::hkdf_sha256(
        &ephemeral_shared,
        32,
        Some(salt),
        b"link_code_pairing_key_bundle_encryption_key",
    )
    .map_err(|_| LinkError::WrongCode)?;
    let key: [u8; 32] = key32(&key)?;
    let iv: [u8; 12] = iv.try_into().map_err(|_| LinkError::WrongCode)?;
    let mut plain = Vec::new();
    wacore::libsignal::crypto::aes_256_gcm_decrypt(&key, &iv, b"", sealed, &mut plain)
        .map_err(|_| LinkError::WrongCode)?;
    let (Some(companion_identity), Some(primary_identity), Some(random)) =
        (plain.get(..32), plain.get(32..64), plain.get(64..96))
    else {
        return Err(LinkError::Refused("the key bundle is too short".into()));
    };
    if companion_identity != finish.companion_identity.as_slice()
        || primary_identity != identity.public_key.public_key_bytes()
    {
        return Err(LinkError::Refused("the key bundle names other keys".into()));
    }
    let companion = PublicKey::from_djb_public_key_bytes(companion_identity).map_err(|_| LinkError::WrongCode)?;
    let identity_shared = identity
        .private_key
        .calculate_agreement(&companion)
        .map_err(|_| LinkError::WrongCode)?;
    let secret = [ephemeral_shared.as_ref(), identity_shared.as_ref(), random].concat();
    let adv = wacore::crypto::hkdf_sha256(&secret, 32, None, b"adv_secret").map_err(|_| LinkError::WrongCode)?;
    key32(&adv)
}

/// The account signs the device in: `pair-success`, the device's counter-signature,
/// then 515 so it logs in as itself.
async fn complete(
    net: &Arc<Network>,
    conn: &Arc<Conn>,
    phone: &str,
    registration: &Registration,
    adv_secret: &[u8; 32],
) -> Result<Linked, LinkError> {
    let (request, account_key, device_id, key_index, lid) = {
        let mut state = net.state();
        let account = state
            .accounts
            .get_mut(phone)
            .ok_or_else(|| LinkError::NoAccount(phone.to_owned()))?;
        let device_id = account.next_device;
        account.next_device += 1;
        let key_index = account.next_key_index;
        account.next_key_index += 1;
        let details = wa::ADVDeviceIdentity {
            raw_id: Some(account.raw_id),
            timestamp: u64::try_from(now_secs()).ok(),
            key_index: Some(key_index),
            ..Default::default()
        }
        .encode_to_vec();
        let account_key = key32(account.identity.public_key.public_key_bytes())?;
        let signature = wacore::crypto::calculate_curve_signature(
            &account.identity.private_key,
            &[&[6u8, 0][..], &details, &registration.identity_key].concat(),
        )
        .map_err(|e| LinkError::Refused(e.to_string()))?;
        let signed = wa::ADVSignedDeviceIdentity {
            details: Some(details),
            account_signature_key: Some(account_key.to_vec()),
            account_signature: Some(signature.to_vec()),
            ..Default::default()
        }
        .encode_to_vec();
        let hmac = wacore::libsignal::crypto::hmac_sha256(adv_secret, &signed);
        let container = wa::ADVSignedDeviceIdentityHMAC {
            details: Some(signed),
            hmac: Some(hmac.to_vec()),
            ..Default::default()
        }
        .encode_to_vec();
        let request = NodeBuilder::new("iq")
            .attr("from", SERVER)
            .attr("type", "set")
            .attr("xmlns", "md")
            .attr("id", net.next_stanza_id())
            .attr("t", now_secs().to_string())
            .children([NodeBuilder::new("pair-success")
                .children([
                    NodeBuilder::new("device-identity").bytes(container).build(),
                    NodeBuilder::new("platform").attr("name", "android").build(),
                    NodeBuilder::new("device")
                        .attr("jid", format!("{phone}:{device_id}@s.whatsapp.net"))
                        .attr("lid", format!("{}:{device_id}@lid", account.lid))
                        .build(),
                    NodeBuilder::new("biz").attr("name", account.name.clone()).build(),
                ])
                .build()])
            .build();
        (request, account_key, device_id, key_index, account.lid.clone())
    };
    let answer = conn
        .request(request, net.config.answer_timeout)
        .await
        .ok_or(LinkError::Timeout)?;
    if !attr_is(&answer, "type", "result") {
        let text = child(&answer, "error")
            .and_then(|e| attr(e, "text"))
            .unwrap_or_default()
            .into_owned();
        return Err(LinkError::Refused(text));
    }
    let signed = child(&answer, "pair-device-sign")
        .and_then(|sign| child_bytes(sign, "device-identity"))
        .ok_or_else(|| LinkError::Refused("no signed device identity".into()))?;
    if validate_adv_with_identity_key(&signed, &registration.identity_key, Some(&account_key)) != AdvValidation::Valid {
        return Err(LinkError::Refused("the device's signature does not verify".into()));
    }
    let name = registration.name.clone();
    {
        let mut state = net.state();
        let account = state
            .accounts
            .get_mut(phone)
            .ok_or_else(|| LinkError::NoAccount(phone.to_owned()))?;
        let registered = Registered {
            name: name.clone(),
            platform: registration.platform.clone(),
            noise_key: conn.client_static,
            identity_key: registration.identity_key,
            registration_id: registration.registration_id,
            signed_identity: signed,
            key_index,
        };
        account.devices.insert(device_id, Device::new(device_id, registered));
        state.refs.retain(|_, id| *id != conn.id);
        state.codes.retain(|_, flow| flow.conn != conn.id);
        crate::routing::devices_changed(&mut state, phone, device_id, "add");
    }
    conn.set_role(Role::Paired);
    tracing::info!(%phone, device = device_id, %lid, %name, "a device was linked");
    conn.close(Some(wire::stream_error_code(515)));
    Ok(Linked {
        phone: phone.to_owned(),
        device: device_id,
        name,
    })
}
