//! Decoding and encoding of control packets.

use bytes::BytesMut;

use crate::packet::{Packet, ProtocolVersion};

/// Why bytes from a peer could not be decoded. Each maps to the MQTT 5 reason code a server
/// sends before closing (or to a plain close on 3.1.1).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("malformed packet: {0}")]
    Malformed(&'static str),
    #[error("protocol error: {0}")]
    Protocol(&'static str),
    #[error("packet of {size} bytes exceeds the maximum of {max}")]
    TooLarge { size: usize, max: usize },
    #[error("unsupported protocol name or level {0}")]
    UnsupportedProtocol(u8),
    #[error("topic name invalid: {0}")]
    TopicInvalid(&'static str),
}

impl DecodeError {
    /// The MQTT 5 reason code for a DISCONNECT (or CONNACK) reporting this error.
    pub fn reason_code(&self) -> u8 {
        use crate::reason::*;
        match self {
            DecodeError::Malformed(_) => MALFORMED_PACKET,
            DecodeError::Protocol(_) => PROTOCOL_ERROR,
            DecodeError::TooLarge { .. } => PACKET_TOO_LARGE,
            DecodeError::UnsupportedProtocol(_) => UNSUPPORTED_PROTOCOL_VERSION,
            DecodeError::TopicInvalid(_) => TOPIC_NAME_INVALID,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("packet too large to encode ({0} bytes)")]
    TooLarge(usize),
    #[error("{0} cannot be sent with this protocol version")]
    NotInVersion(&'static str),
}

/// Decodes one packet from the front of `buf`, removing its bytes.
///
/// `version` is `None` until CONNECT has been read: then only CONNECT is accepted and it fixes
/// the version for the connection. Returns `Ok(None)` when `buf` does not yet hold a whole
/// packet. A remaining length above `max_packet_size` is refused from the fixed header alone,
/// before the body is buffered.
pub fn decode(
    buf: &mut BytesMut,
    version: Option<ProtocolVersion>,
    max_packet_size: usize,
) -> Result<Option<Packet>, DecodeError> {
    let _ = (buf, version, max_packet_size);
    todo!("codec")
}

/// Appends the encoding of `packet` for `version` to `buf`.
pub fn encode(packet: &Packet, version: ProtocolVersion, buf: &mut BytesMut) -> Result<(), EncodeError> {
    let _ = (packet, version, buf);
    todo!("codec")
}

/// The number of bytes `encode` would append (fixed header included).
pub fn encoded_len(packet: &Packet, version: ProtocolVersion) -> usize {
    let _ = (packet, version);
    todo!("codec")
}
