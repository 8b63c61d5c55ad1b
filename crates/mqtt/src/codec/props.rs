//! MQTT 5 property identifiers (§2.2.2.2) and their decoding per packet type.

use super::DecodeError;
use super::read::Reader;
use crate::packet::*;

pub const PAYLOAD_FORMAT_INDICATOR: u8 = 0x01;
pub const MESSAGE_EXPIRY_INTERVAL: u8 = 0x02;
pub const CONTENT_TYPE: u8 = 0x03;
pub const RESPONSE_TOPIC: u8 = 0x08;
pub const CORRELATION_DATA: u8 = 0x09;
pub const SUBSCRIPTION_IDENTIFIER: u8 = 0x0B;
pub const SESSION_EXPIRY_INTERVAL: u8 = 0x11;
pub const ASSIGNED_CLIENT_IDENTIFIER: u8 = 0x12;
pub const SERVER_KEEP_ALIVE: u8 = 0x13;
pub const AUTHENTICATION_METHOD: u8 = 0x15;
pub const AUTHENTICATION_DATA: u8 = 0x16;
pub const REQUEST_PROBLEM_INFORMATION: u8 = 0x17;
pub const WILL_DELAY_INTERVAL: u8 = 0x18;
pub const REQUEST_RESPONSE_INFORMATION: u8 = 0x19;
pub const RESPONSE_INFORMATION: u8 = 0x1A;
pub const SERVER_REFERENCE: u8 = 0x1C;
pub const REASON_STRING: u8 = 0x1F;
pub const RECEIVE_MAXIMUM: u8 = 0x21;
pub const TOPIC_ALIAS_MAXIMUM: u8 = 0x22;
pub const TOPIC_ALIAS: u8 = 0x23;
pub const MAXIMUM_QOS: u8 = 0x24;
pub const RETAIN_AVAILABLE: u8 = 0x25;
pub const USER_PROPERTY: u8 = 0x26;
pub const MAXIMUM_PACKET_SIZE: u8 = 0x27;
pub const WILDCARD_SUBSCRIPTION_AVAILABLE: u8 = 0x28;
pub const SUBSCRIPTION_IDENTIFIER_AVAILABLE: u8 = 0x29;
pub const SHARED_SUBSCRIPTION_AVAILABLE: u8 = 0x2A;

/// The largest value of a variable byte integer (and of a remaining length).
pub const MAX_VBI: u32 = 268_435_455;

/// "Protocol error: X included more than once".
fn duplicate(id: u8) -> DecodeError {
    DecodeError::Protocol(match id {
        PAYLOAD_FORMAT_INDICATOR => "Payload Format Indicator included more than once",
        MESSAGE_EXPIRY_INTERVAL => "Message Expiry Interval included more than once",
        CONTENT_TYPE => "Content Type included more than once",
        RESPONSE_TOPIC => "Response Topic included more than once",
        CORRELATION_DATA => "Correlation Data included more than once",
        SUBSCRIPTION_IDENTIFIER => "Subscription Identifier included more than once",
        SESSION_EXPIRY_INTERVAL => "Session Expiry Interval included more than once",
        ASSIGNED_CLIENT_IDENTIFIER => "Assigned Client Identifier included more than once",
        SERVER_KEEP_ALIVE => "Server Keep Alive included more than once",
        AUTHENTICATION_METHOD => "Authentication Method included more than once",
        AUTHENTICATION_DATA => "Authentication Data included more than once",
        REQUEST_PROBLEM_INFORMATION => "Request Problem Information included more than once",
        WILL_DELAY_INTERVAL => "Will Delay Interval included more than once",
        REQUEST_RESPONSE_INFORMATION => "Request Response Information included more than once",
        RESPONSE_INFORMATION => "Response Information included more than once",
        SERVER_REFERENCE => "Server Reference included more than once",
        REASON_STRING => "Reason String included more than once",
        RECEIVE_MAXIMUM => "Receive Maximum included more than once",
        TOPIC_ALIAS_MAXIMUM => "Topic Alias Maximum included more than once",
        TOPIC_ALIAS => "Topic Alias included more than once",
        MAXIMUM_QOS => "Maximum QoS included more than once",
        RETAIN_AVAILABLE => "Retain Available included more than once",
        MAXIMUM_PACKET_SIZE => "Maximum Packet Size included more than once",
        WILDCARD_SUBSCRIPTION_AVAILABLE => {
            "Wildcard Subscription Available included more than once"
        }
        SUBSCRIPTION_IDENTIFIER_AVAILABLE => {
            "Subscription Identifier Available included more than once"
        }
        SHARED_SUBSCRIPTION_AVAILABLE => "Shared Subscription Available included more than once",
        _ => "property included more than once",
    })
}

#[inline]
fn once<T>(slot: &mut Option<T>, id: u8, value: T) -> Result<(), DecodeError> {
    if slot.is_some() {
        return Err(duplicate(id));
    }
    *slot = Some(value);
    Ok(())
}

/// A byte property whose only values are 0 and 1.
#[inline]
fn flag(r: &mut Reader<'_>, err: &'static str) -> Result<u8, DecodeError> {
    let v = r.u8()?;
    if v > 1 {
        return Err(DecodeError::Protocol(err));
    }
    Ok(v)
}

#[inline]
fn nonzero_u16(r: &mut Reader<'_>, err: &'static str) -> Result<u16, DecodeError> {
    let v = r.u16()?;
    if v == 0 {
        return Err(DecodeError::Protocol(err));
    }
    Ok(v)
}

#[inline]
fn user_property(r: &mut Reader<'_>, into: &mut UserProperties) -> Result<(), DecodeError> {
    let k = r.string()?;
    let v = r.string()?;
    into.push((k, v));
    Ok(())
}

/// Reads the property length and returns a reader over exactly the properties.
#[inline]
pub(super) fn section<'a>(r: &mut Reader<'a>) -> Result<Reader<'a>, DecodeError> {
    let len = r.vbi()?;
    r.sub(len as usize)
}

/// Reads the next property identifier, `None` at the end of the section. Identifiers are
/// variable byte integers; every defined one fits in one byte, so a longer one is unknown.
#[inline]
fn next_id(p: &mut Reader<'_>) -> Result<Option<u8>, DecodeError> {
    if p.is_empty() {
        return Ok(None);
    }
    let id = p.u8()?;
    if id & 0x80 != 0 {
        return Err(DecodeError::Malformed("unknown property identifier"));
    }
    Ok(Some(id))
}

pub(super) fn connect(r: &mut Reader<'_>) -> Result<ConnectProperties, DecodeError> {
    let mut p = section(r)?;
    let mut out = ConnectProperties::default();
    while let Some(id) = next_id(&mut p)? {
        match id {
            SESSION_EXPIRY_INTERVAL => once(&mut out.session_expiry_interval, id, p.u32()?)?,
            RECEIVE_MAXIMUM => {
                let v = nonzero_u16(&mut p, "Receive Maximum of 0")?;
                once(&mut out.receive_maximum, id, v)?
            }
            MAXIMUM_PACKET_SIZE => {
                let v = p.u32()?;
                if v == 0 {
                    return Err(DecodeError::Protocol("Maximum Packet Size of 0"));
                }
                once(&mut out.maximum_packet_size, id, v)?
            }
            TOPIC_ALIAS_MAXIMUM => once(&mut out.topic_alias_maximum, id, p.u16()?)?,
            REQUEST_RESPONSE_INFORMATION => {
                let v = flag(&mut p, "Request Response Information other than 0 or 1")?;
                once(&mut out.request_response_information, id, v)?
            }
            REQUEST_PROBLEM_INFORMATION => {
                let v = flag(&mut p, "Request Problem Information other than 0 or 1")?;
                once(&mut out.request_problem_information, id, v)?
            }
            USER_PROPERTY => user_property(&mut p, &mut out.user_properties)?,
            AUTHENTICATION_METHOD => once(&mut out.authentication_method, id, p.string()?)?,
            AUTHENTICATION_DATA => once(&mut out.authentication_data, id, p.binary()?)?,
            _ => return Err(DecodeError::Malformed("property not allowed in CONNECT")),
        }
    }
    if out.authentication_data.is_some() && out.authentication_method.is_none() {
        return Err(DecodeError::Protocol(
            "Authentication Data without Authentication Method",
        ));
    }
    Ok(out)
}

pub(super) fn will(r: &mut Reader<'_>) -> Result<WillProperties, DecodeError> {
    let mut p = section(r)?;
    let mut out = WillProperties::default();
    while let Some(id) = next_id(&mut p)? {
        match id {
            WILL_DELAY_INTERVAL => once(&mut out.will_delay_interval, id, p.u32()?)?,
            PAYLOAD_FORMAT_INDICATOR => once(&mut out.payload_format_indicator, id, p.u8()?)?,
            MESSAGE_EXPIRY_INTERVAL => once(&mut out.message_expiry_interval, id, p.u32()?)?,
            CONTENT_TYPE => once(&mut out.content_type, id, p.string()?)?,
            RESPONSE_TOPIC => once(&mut out.response_topic, id, p.string()?)?,
            CORRELATION_DATA => once(&mut out.correlation_data, id, p.binary()?)?,
            USER_PROPERTY => user_property(&mut p, &mut out.user_properties)?,
            _ => {
                return Err(DecodeError::Malformed(
                    "property not allowed in Will Properties",
                ));
            }
        }
    }
    Ok(out)
}

pub(super) fn connack(r: &mut Reader<'_>) -> Result<ConnAckProperties, DecodeError> {
    let mut p = section(r)?;
    let mut out = ConnAckProperties::default();
    while let Some(id) = next_id(&mut p)? {
        match id {
            SESSION_EXPIRY_INTERVAL => once(&mut out.session_expiry_interval, id, p.u32()?)?,
            RECEIVE_MAXIMUM => {
                let v = nonzero_u16(&mut p, "Receive Maximum of 0")?;
                once(&mut out.receive_maximum, id, v)?
            }
            MAXIMUM_QOS => {
                let v = flag(&mut p, "Maximum QoS other than 0 or 1")?;
                once(&mut out.maximum_qos, id, v)?
            }
            RETAIN_AVAILABLE => {
                let v = flag(&mut p, "Retain Available other than 0 or 1")?;
                once(&mut out.retain_available, id, v)?
            }
            MAXIMUM_PACKET_SIZE => {
                let v = p.u32()?;
                if v == 0 {
                    return Err(DecodeError::Protocol("Maximum Packet Size of 0"));
                }
                once(&mut out.maximum_packet_size, id, v)?
            }
            ASSIGNED_CLIENT_IDENTIFIER => {
                once(&mut out.assigned_client_identifier, id, p.string()?)?
            }
            TOPIC_ALIAS_MAXIMUM => once(&mut out.topic_alias_maximum, id, p.u16()?)?,
            REASON_STRING => once(&mut out.reason_string, id, p.string()?)?,
            USER_PROPERTY => user_property(&mut p, &mut out.user_properties)?,
            WILDCARD_SUBSCRIPTION_AVAILABLE => {
                let v = flag(&mut p, "Wildcard Subscription Available other than 0 or 1")?;
                once(&mut out.wildcard_subscription_available, id, v)?
            }
            SUBSCRIPTION_IDENTIFIER_AVAILABLE => {
                let v = flag(
                    &mut p,
                    "Subscription Identifier Available other than 0 or 1",
                )?;
                once(&mut out.subscription_identifier_available, id, v)?
            }
            SHARED_SUBSCRIPTION_AVAILABLE => {
                let v = flag(&mut p, "Shared Subscription Available other than 0 or 1")?;
                once(&mut out.shared_subscription_available, id, v)?
            }
            SERVER_KEEP_ALIVE => once(&mut out.server_keep_alive, id, p.u16()?)?,
            RESPONSE_INFORMATION => once(&mut out.response_information, id, p.string()?)?,
            SERVER_REFERENCE => once(&mut out.server_reference, id, p.string()?)?,
            AUTHENTICATION_METHOD => once(&mut out.authentication_method, id, p.string()?)?,
            AUTHENTICATION_DATA => once(&mut out.authentication_data, id, p.binary()?)?,
            _ => return Err(DecodeError::Malformed("property not allowed in CONNACK")),
        }
    }
    Ok(out)
}

pub(super) fn publish(r: &mut Reader<'_>) -> Result<PublishProperties, DecodeError> {
    let mut p = section(r)?;
    let mut out = PublishProperties::default();
    while let Some(id) = next_id(&mut p)? {
        match id {
            PAYLOAD_FORMAT_INDICATOR => once(&mut out.payload_format_indicator, id, p.u8()?)?,
            MESSAGE_EXPIRY_INTERVAL => once(&mut out.message_expiry_interval, id, p.u32()?)?,
            TOPIC_ALIAS => {
                let v = nonzero_u16(&mut p, "Topic Alias of 0")?;
                once(&mut out.topic_alias, id, v)?
            }
            RESPONSE_TOPIC => once(&mut out.response_topic, id, p.string()?)?,
            CORRELATION_DATA => once(&mut out.correlation_data, id, p.binary()?)?,
            USER_PROPERTY => user_property(&mut p, &mut out.user_properties)?,
            // A server forwarding to a client may include several.
            SUBSCRIPTION_IDENTIFIER => out
                .subscription_identifiers
                .push(subscription_identifier(&mut p)?),
            CONTENT_TYPE => once(&mut out.content_type, id, p.string()?)?,
            _ => return Err(DecodeError::Malformed("property not allowed in PUBLISH")),
        }
    }
    Ok(out)
}

fn subscription_identifier(p: &mut Reader<'_>) -> Result<u32, DecodeError> {
    let v = p.vbi()?;
    if v == 0 {
        return Err(DecodeError::Protocol("Subscription Identifier of 0"));
    }
    Ok(v)
}

/// PUBACK, PUBREC, PUBREL, PUBCOMP, SUBACK and UNSUBACK.
pub(super) fn ack(r: &mut Reader<'_>, packet: &'static str) -> Result<AckProperties, DecodeError> {
    let mut p = section(r)?;
    let mut out = AckProperties::default();
    while let Some(id) = next_id(&mut p)? {
        match id {
            REASON_STRING => once(&mut out.reason_string, id, p.string()?)?,
            USER_PROPERTY => user_property(&mut p, &mut out.user_properties)?,
            _ => return Err(DecodeError::Malformed(packet)),
        }
    }
    Ok(out)
}

pub(super) fn subscribe(r: &mut Reader<'_>) -> Result<SubscribeProperties, DecodeError> {
    let mut p = section(r)?;
    let mut out = SubscribeProperties::default();
    while let Some(id) = next_id(&mut p)? {
        match id {
            SUBSCRIPTION_IDENTIFIER => {
                let v = subscription_identifier(&mut p)?;
                once(&mut out.subscription_identifier, id, v)?
            }
            USER_PROPERTY => user_property(&mut p, &mut out.user_properties)?,
            _ => return Err(DecodeError::Malformed("property not allowed in SUBSCRIBE")),
        }
    }
    Ok(out)
}

pub(super) fn unsubscribe(r: &mut Reader<'_>) -> Result<UserProperties, DecodeError> {
    let mut p = section(r)?;
    let mut out = UserProperties::new();
    while let Some(id) = next_id(&mut p)? {
        match id {
            USER_PROPERTY => user_property(&mut p, &mut out)?,
            _ => {
                return Err(DecodeError::Malformed(
                    "property not allowed in UNSUBSCRIBE",
                ));
            }
        }
    }
    Ok(out)
}

pub(super) fn disconnect(r: &mut Reader<'_>) -> Result<DisconnectProperties, DecodeError> {
    let mut p = section(r)?;
    let mut out = DisconnectProperties::default();
    while let Some(id) = next_id(&mut p)? {
        match id {
            SESSION_EXPIRY_INTERVAL => once(&mut out.session_expiry_interval, id, p.u32()?)?,
            REASON_STRING => once(&mut out.reason_string, id, p.string()?)?,
            USER_PROPERTY => user_property(&mut p, &mut out.user_properties)?,
            SERVER_REFERENCE => once(&mut out.server_reference, id, p.string()?)?,
            _ => return Err(DecodeError::Malformed("property not allowed in DISCONNECT")),
        }
    }
    Ok(out)
}

pub(super) fn auth(r: &mut Reader<'_>) -> Result<AuthProperties, DecodeError> {
    let mut p = section(r)?;
    let mut out = AuthProperties::default();
    while let Some(id) = next_id(&mut p)? {
        match id {
            AUTHENTICATION_METHOD => once(&mut out.authentication_method, id, p.string()?)?,
            AUTHENTICATION_DATA => once(&mut out.authentication_data, id, p.binary()?)?,
            REASON_STRING => once(&mut out.reason_string, id, p.string()?)?,
            USER_PROPERTY => user_property(&mut p, &mut out.user_properties)?,
            _ => return Err(DecodeError::Malformed("property not allowed in AUTH")),
        }
    }
    Ok(out)
}
