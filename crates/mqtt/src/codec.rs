//! Decoding and encoding of control packets.
//!
//! The decoder checks everything that can be checked from the bytes of one packet, whichever
//! side sent it: fixed-header flags, lengths, UTF-8 strings, which properties each packet may
//! carry (a property on the wrong packet is malformed, a second copy of a once-only property a
//! protocol error), property values the specification restricts (Receive Maximum, Maximum
//! Packet Size, Topic Alias and Subscription Identifier non-zero; 0/1 flags), non-zero packet
//! identifiers, wildcards in PUBLISH and Will topics, subscription options. It does *not* check
//! rules that depend on the direction or on connection state, which the session layer owns:
//! a Subscription Identifier in a PUBLISH from a client, Topic Alias against Topic Alias
//! Maximum (and resolving an empty topic), Retain/QoS against what the server granted, topic
//! filters of SUBSCRIBE/UNSUBSCRIBE (reported per filter in SUBACK, see [`crate::topic`]),
//! client identifier rules, reason codes of acknowledgements, AUTH method presence.

mod decode;
mod encode;
mod props;
mod read;

use bytes::BytesMut;

pub use decode::peek_connect_level;

use crate::packet::{Packet, ProtocolVersion};

/// The largest remaining length a fixed header can announce (MQTT §2.2.3 / §1.5.5).
pub const MAX_REMAINING_LENGTH: usize = props::MAX_VBI as usize;

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
/// packet, without consuming anything. With `Some(_)`, a CONNECT is a protocol error (a second
/// CONNECT). On success exactly one packet is removed from `buf`;
/// after an error the connection must be closed and the state of `buf` is unspecified.
///
/// `max_packet_size` bounds the *whole* packet (fixed header included), as MQTT 5's Maximum
/// Packet Size does; a larger packet is refused with [`DecodeError::TooLarge`] from the fixed
/// header alone, before the body is buffered.
///
/// Payloads and binary data are slices of `buf`'s storage, not copies.
pub fn decode(
    buf: &mut BytesMut,
    version: Option<ProtocolVersion>,
    max_packet_size: usize,
) -> Result<Option<Packet>, DecodeError> {
    decode::decode(buf, version, max_packet_size)
}

/// Appends the encoding of `packet` for `version` to `buf`.
///
/// Fields that do not exist in 3.1.1 (properties, reason codes of acknowledgements, subscription
/// options other than QoS) are dropped for `V311`/`V31`; CONNECT is written with the protocol
/// name and level of `version` (its `protocol` field is not consulted). MQTT 5 acknowledgements,
/// DISCONNECT and AUTH use the short forms when the reason code is 0 and there are no
/// properties. On error nothing is appended.
pub fn encode(
    packet: &Packet,
    version: ProtocolVersion,
    buf: &mut BytesMut,
) -> Result<(), EncodeError> {
    encode::encode(packet, version, buf)
}

/// The number of bytes `encode` appends for `packet` (fixed header included). Exact whenever
/// `encode` succeeds; for packets `encode` refuses the value is an estimate.
pub fn encoded_len(packet: &Packet, version: ProtocolVersion) -> usize {
    encode::encoded_len(packet, version)
}

#[cfg(test)]
mod tests;
