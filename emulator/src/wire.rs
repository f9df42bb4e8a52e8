//! Stanzas on the wire: binary nodes in Noise transport frames. [`FrameStream`] turns
//! WebSocket payloads (which may split or batch frames) back into frames; the helpers
//! below read the few attributes and children the emulator looks at and build the
//! answers it sends.

use std::borrow::Cow;

use wacore_binary::builder::NodeBuilder;
use wacore_binary::node::{Node, NodeContent};
use wacore_noise::framing::FrameDecoder;

/// WhatsApp's connection header, in front of the first frame a client sends.
pub const WA_HEADER: [u8; 4] = [b'W', b'A', 6, 3];
/// An optional edge-routing intro that may come before the header.
const EDGE_ROUTING: [u8; 4] = [b'E', b'D', 0, 1];

/// Frames out of a byte stream that arrives in arbitrary pieces.
#[derive(Default)]
pub struct FrameStream {
    decoder: FrameDecoder,
}

impl FrameStream {
    /// Feeds the first WebSocket payload of a connection: strips the intro and header.
    pub fn feed_first(&mut self, data: &[u8]) -> Result<(), WireError> {
        let mut data = data;
        if data.starts_with(&EDGE_ROUTING) {
            let len = data
                .get(4..7)
                .map(|b| usize::from(b[0]) << 16 | usize::from(b[1]) << 8 | usize::from(b[2]))
                .ok_or(WireError::Header)?;
            data = data.get(7 + len..).ok_or(WireError::Header)?;
        }
        let rest = data.strip_prefix(&WA_HEADER[..]).ok_or(WireError::Header)?;
        self.decoder.feed(rest);
        Ok(())
    }

    pub fn feed(&mut self, data: &[u8]) {
        self.decoder.feed(data);
    }

    pub fn next_frame(&mut self) -> Option<Vec<u8>> {
        self.decoder.decode_frame().map(|f| f.to_vec())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("the client did not start with WhatsApp's connection header")]
    Header,
    #[error("a frame could not be decoded: {0}")]
    Decode(String),
}

/// A decrypted frame's plaintext (flags byte, maybe zlib) as a node.
pub fn decode_node(plain: &[u8]) -> Result<Node, WireError> {
    let body = wacore_binary::util::unpack(plain).map_err(|e| WireError::Decode(e.to_string()))?;
    let node = wacore_binary::marshal::unmarshal_ref(&body).map_err(|e| WireError::Decode(e.to_string()))?;
    Ok(node.to_owned())
}

pub fn encode_node(node: &Node) -> Result<Vec<u8>, WireError> {
    wacore_binary::marshal::marshal(node).map_err(|e| WireError::Decode(e.to_string()))
}

/// A node as readable text, for logs.
pub fn show(node: &Node) -> String {
    wacore::xml::DisplayableNode(node).to_string()
}

pub fn attr<'a>(node: &'a Node, key: &str) -> Option<Cow<'a, str>> {
    node.attrs.get(key).map(|v| v.as_str())
}

pub fn attr_is(node: &Node, key: &str, value: &str) -> bool {
    attr(node, key).is_some_and(|v| v == value)
}

pub fn child<'a>(node: &'a Node, tag: &str) -> Option<&'a Node> {
    node.get_optional_child(tag)
}

pub fn children(node: &Node) -> &[Node] {
    node.children().unwrap_or_default()
}

/// A child's bytes (binary content; text content as its UTF-8 bytes).
pub fn child_bytes(node: &Node, tag: &str) -> Option<Vec<u8>> {
    match &child(node, tag)?.content {
        Some(NodeContent::Bytes(b)) => Some(b.clone()),
        Some(NodeContent::String(s)) => Some(s.as_bytes().to_vec()),
        _ => None,
    }
}

/// The server's JID, as WhatsApp writes it in `from`.
pub const SERVER: &str = "s.whatsapp.net";

pub fn now_secs() -> i64 {
    chrono::Utc::now().timestamp()
}

/// `<iq type="result">` answering `request`, with `content` inside.
pub fn iq_result(request: &Node, content: Vec<Node>) -> Node {
    let mut iq = NodeBuilder::new("iq")
        .attr("from", SERVER)
        .attr("type", "result")
        .attr("id", attr(request, "id").unwrap_or_default().into_owned());
    if !content.is_empty() {
        iq = iq.children(content);
    }
    iq.build()
}

/// `<iq type="error">` answering `request`.
pub fn iq_error(request: &Node, code: u16, text: &str) -> Node {
    NodeBuilder::new("iq")
        .attr("from", SERVER)
        .attr("type", "error")
        .attr("id", attr(request, "id").unwrap_or_default().into_owned())
        .children([NodeBuilder::new("error")
            .attr("code", code.to_string())
            .attr("text", text.to_owned())
            .build()])
        .build()
}

/// `<stream:error code=…/>`, e.g. 515 (restart after pairing) or 401 (logged out).
pub fn stream_error_code(code: u16) -> Node {
    NodeBuilder::new("stream:error").attr("code", code.to_string()).build()
}

/// `<stream:error><conflict type=…/></stream:error>`: "replaced" or "device_removed".
pub fn stream_conflict(kind: &str) -> Node {
    NodeBuilder::new("stream:error")
        .children([NodeBuilder::new("conflict").attr("type", kind.to_owned()).build()])
        .build()
}

pub fn stream_end() -> Node {
    NodeBuilder::new("xmlstreamend").build()
}
