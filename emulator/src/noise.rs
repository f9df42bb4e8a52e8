//! The responder's half of WhatsApp's Noise handshake. A client that is not registered,
//! or has no cached server key, opens with XX (hello → server hello with our static key
//! and certificate chain → client finish). A registered client that cached our key opens
//! with IK (its static key and login payload already in the hello); if that hello does
//! not decrypt under our key (the emulator's key changed), we answer with XXfallback and
//! the client finishes as in XX. Either way both sides end with a pair of transport keys.

use wacore::libsignal::protocol::KeyPair;
use wacore_binary::consts::{NOISE_PATTERN_IK, NOISE_PATTERN_XX, NOISE_PATTERN_XXFALLBACK, WA_CONN_HEADER};
use wacore_noise::{NoiseCipher, NoiseHandshake};
use waproto::buffa::{Message, MessageField};
use waproto::whatsapp::{self as wa, handshake_message};

/// The server's long-term Noise identity and the certificate chain that vouches for it.
pub struct ServerKeys {
    pub static_key: KeyPair,
    pub cert_chain: Vec<u8>,
}

impl ServerKeys {
    pub fn generate() -> Self {
        let static_key = wacore::crypto::generate_curve_key_pair();
        let public = key32(static_key.public_key.public_key_bytes()).unwrap_or([0; 32]);
        // A chain with zeroed signatures: clients accept it only when built with
        // `danger-skip-cert-chain-verify` (the leaf key and serials are still checked).
        let cert_chain = wacore_noise::test_util::build_cert_chain_bytes(&public);
        Self { static_key, cert_chain }
    }
}

/// What a finished handshake gives the connection.
pub struct Established {
    pub read: NoiseCipher,
    pub write: NoiseCipher,
    /// The client's Noise static key, which identifies its device.
    pub client_static: [u8; 32],
    pub payload: wa::ClientPayload,
    pub pattern: &'static str,
}

#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    #[error("the handshake message is malformed: {0}")]
    Malformed(String),
    #[error("the handshake failed: {0}")]
    Crypto(String),
}

fn crypto(err: impl std::fmt::Display) -> HandshakeError {
    HandshakeError::Crypto(err.to_string())
}

fn key32(bytes: &[u8]) -> Option<[u8; 32]> {
    bytes.try_into().ok()
}

pub fn decode_hello(frame: &[u8]) -> Result<handshake_message::ClientHello, HandshakeError> {
    let message =
        wa::HandshakeMessage::decode_from_slice(frame).map_err(|e| HandshakeError::Malformed(e.to_string()))?;
    message
        .client_hello
        .into_option()
        .ok_or_else(|| HandshakeError::Malformed("no client hello".into()))
}

/// The server's answer to a hello, and what is needed to finish once the client answers.
pub enum Reply {
    /// IK accepted: the handshake is complete.
    Done(Box<Established>, Vec<u8>),
    /// XX or XXfallback: send the server hello, then [`finish_xx`] with the client finish.
    AwaitFinish(Box<XxResponder>, Vec<u8>),
}

pub struct XxResponder {
    hs: NoiseHandshake,
    ephemeral: KeyPair,
    pattern: &'static str,
}

/// Answers a client hello: IK when the hello carries the client's static key and login
/// payload and they decrypt under our key, XX (or XXfallback after a failed IK) otherwise.
pub fn respond(keys: &ServerKeys, hello: &handshake_message::ClientHello) -> Result<Reply, HandshakeError> {
    let ephemeral = hello
        .ephemeral
        .as_deref()
        .and_then(key32)
        .ok_or_else(|| HandshakeError::Malformed("the client ephemeral key is not 32 bytes".into()))?;
    if let (Some(statik), Some(payload)) = (hello.r#static.as_deref(), hello.payload.as_deref()) {
        match accept_ik(keys, &ephemeral, statik, payload) {
            Ok(done) => return Ok(done),
            Err(err) => tracing::info!(error = %err, "an IK hello did not decrypt under our key; falling back to XX"),
        }
        return start_xx(keys, &ephemeral, NOISE_PATTERN_XXFALLBACK);
    }
    start_xx(keys, &ephemeral, NOISE_PATTERN_XX)
}

fn server_hello(ephemeral: &[u8], statik: Option<Vec<u8>>, payload: Vec<u8>) -> Vec<u8> {
    wa::HandshakeMessage {
        server_hello: MessageField::some(handshake_message::ServerHello {
            ephemeral: Some(ephemeral.to_vec()),
            r#static: statik,
            payload: Some(payload),
            ..Default::default()
        }),
        ..Default::default()
    }
    .encode_to_vec()
}

fn start_xx(keys: &ServerKeys, client_ephemeral: &[u8; 32], pattern: &'static str) -> Result<Reply, HandshakeError> {
    let mut hs = NoiseHandshake::new(pattern, &WA_CONN_HEADER).map_err(crypto)?;
    hs.authenticate(client_ephemeral);
    let ephemeral = wacore::crypto::generate_curve_key_pair();
    hs.authenticate(ephemeral.public_key.public_key_bytes());
    hs.mix_shared_secret(ephemeral.private_key.serialize(), client_ephemeral)
        .map_err(crypto)?;
    let static_enc = hs
        .encrypt(keys.static_key.public_key.public_key_bytes())
        .map_err(crypto)?;
    hs.mix_shared_secret(keys.static_key.private_key.serialize(), client_ephemeral)
        .map_err(crypto)?;
    let cert_enc = hs.encrypt(&keys.cert_chain).map_err(crypto)?;
    let hello = server_hello(ephemeral.public_key.public_key_bytes(), Some(static_enc), cert_enc);
    Ok(Reply::AwaitFinish(
        Box::new(XxResponder { hs, ephemeral, pattern }),
        hello,
    ))
}

/// Completes XX with the client's finish message.
pub fn finish_xx(responder: XxResponder, frame: &[u8]) -> Result<Established, HandshakeError> {
    let XxResponder {
        mut hs,
        ephemeral,
        pattern,
    } = responder;
    let message =
        wa::HandshakeMessage::decode_from_slice(frame).map_err(|e| HandshakeError::Malformed(e.to_string()))?;
    let finish = message
        .client_finish
        .into_option()
        .ok_or_else(|| HandshakeError::Malformed("no client finish".into()))?;
    let statik_enc = finish
        .r#static
        .ok_or_else(|| HandshakeError::Malformed("the client finish has no static key".into()))?;
    let payload_enc = finish
        .payload
        .ok_or_else(|| HandshakeError::Malformed("the client finish has no payload".into()))?;
    let client_static = hs.decrypt(&statik_enc).map_err(crypto)?;
    let client_static = key32(&client_static).ok_or_else(|| HandshakeError::Malformed("client static key".into()))?;
    hs.mix_shared_secret(ephemeral.private_key.serialize(), &client_static)
        .map_err(crypto)?;
    let payload = hs.decrypt(&payload_enc).map_err(crypto)?;
    established(hs, client_static, &payload, pattern)
}

fn accept_ik(
    keys: &ServerKeys,
    client_ephemeral: &[u8; 32],
    statik_enc: &[u8],
    payload_enc: &[u8],
) -> Result<Reply, HandshakeError> {
    let mut hs = NoiseHandshake::new(NOISE_PATTERN_IK, &WA_CONN_HEADER).map_err(crypto)?;
    hs.authenticate(keys.static_key.public_key.public_key_bytes());
    hs.authenticate(client_ephemeral);
    hs.mix_shared_secret(keys.static_key.private_key.serialize(), client_ephemeral)
        .map_err(crypto)?;
    let client_static = hs.decrypt(statik_enc).map_err(crypto)?;
    let client_static = key32(&client_static).ok_or_else(|| HandshakeError::Malformed("client static key".into()))?;
    hs.mix_shared_secret(keys.static_key.private_key.serialize(), &client_static)
        .map_err(crypto)?;
    let payload = hs.decrypt(payload_enc).map_err(crypto)?;
    let ephemeral = wacore::crypto::generate_curve_key_pair();
    hs.authenticate(ephemeral.public_key.public_key_bytes());
    hs.mix_shared_secret(ephemeral.private_key.serialize(), client_ephemeral)
        .map_err(crypto)?;
    hs.mix_shared_secret(ephemeral.private_key.serialize(), &client_static)
        .map_err(crypto)?;
    let cert_enc = hs.encrypt(&keys.cert_chain).map_err(crypto)?;
    let hello = server_hello(ephemeral.public_key.public_key_bytes(), None, cert_enc);
    let done = established(hs, client_static, &payload, NOISE_PATTERN_IK)?;
    Ok(Reply::Done(Box::new(done), hello))
}

fn established(
    hs: NoiseHandshake,
    client_static: [u8; 32],
    payload: &[u8],
    pattern: &'static str,
) -> Result<Established, HandshakeError> {
    let payload =
        wa::ClientPayload::decode_from_slice(payload).map_err(|e| HandshakeError::Malformed(e.to_string()))?;
    // The split is named from the client's side: its write key is our read key.
    let (read, write) = hs.finish().map_err(crypto)?;
    Ok(Established {
        read,
        write,
        client_static,
        payload,
        pattern,
    })
}
