//! Decoding of control packets (MQTT 3.1.1 §2–3, MQTT 5.0 §2–3).

use bytes::BytesMut;

use super::read::{Reader, utf8};
use super::{DecodeError, props};
use crate::packet::*;

pub(super) const CONNECT: u8 = 1;
pub(super) const CONNACK: u8 = 2;
pub(super) const PUBLISH: u8 = 3;
pub(super) const PUBACK: u8 = 4;
pub(super) const PUBREC: u8 = 5;
pub(super) const PUBREL: u8 = 6;
pub(super) const PUBCOMP: u8 = 7;
pub(super) const SUBSCRIBE: u8 = 8;
pub(super) const SUBACK: u8 = 9;
pub(super) const UNSUBSCRIBE: u8 = 10;
pub(super) const UNSUBACK: u8 = 11;
pub(super) const PINGREQ: u8 = 12;
pub(super) const PINGRESP: u8 = 13;
pub(super) const DISCONNECT: u8 = 14;
pub(super) const AUTH: u8 = 15;

/// Checks the first byte of the fixed header: packet type allowed in this state and the
/// reserved flag bits.
fn check_first_byte(first: u8, version: Option<ProtocolVersion>) -> Result<(), DecodeError> {
    let kind = first >> 4;
    let flags = first & 0x0F;
    let Some(version) = version else {
        if kind != CONNECT {
            return Err(DecodeError::Protocol("first packet must be CONNECT"));
        }
        return if flags == 0 {
            Ok(())
        } else {
            Err(DecodeError::Malformed("reserved flags of CONNECT set"))
        };
    };
    let expected = match kind {
        0 => return Err(DecodeError::Malformed("reserved packet type 0")),
        CONNECT => return Err(DecodeError::Protocol("second CONNECT")),
        PUBLISH => {
            let qos = (flags >> 1) & 0b11;
            if qos == 3 {
                return Err(DecodeError::Malformed("PUBLISH with QoS 3"));
            }
            if qos == 0 && flags & 0b1000 != 0 {
                return Err(if version.is_v5() {
                    DecodeError::Protocol("DUP set on a QoS 0 PUBLISH")
                } else {
                    DecodeError::Malformed("DUP set on a QoS 0 PUBLISH")
                });
            }
            return Ok(());
        }
        PUBREL | SUBSCRIBE | UNSUBSCRIBE => 0b0010,
        AUTH if !version.is_v5() => return Err(DecodeError::Malformed("reserved packet type 15")),
        _ => 0,
    };
    if flags != expected {
        return Err(DecodeError::Malformed("invalid fixed header flags"));
    }
    Ok(())
}

/// The fixed header once its remaining length is readable: `(header_len, remaining_len)`.
/// `Ok(None)` while more bytes are needed.
#[inline]
fn fixed_header(buf: &[u8]) -> Result<Option<(usize, usize)>, DecodeError> {
    let mut value: usize = 0;
    for i in 0..4 {
        let Some(&b) = buf.get(1 + i) else {
            return Ok(None);
        };
        value |= usize::from(b & 0x7F) << (7 * i);
        if b & 0x80 == 0 {
            return Ok(Some((2 + i, value)));
        }
    }
    Err(DecodeError::Malformed(
        "remaining length longer than 4 bytes",
    ))
}

pub(super) fn decode(
    buf: &mut BytesMut,
    version: Option<ProtocolVersion>,
    max_packet_size: usize,
) -> Result<Option<Packet>, DecodeError> {
    let Some(&first) = buf.first() else {
        return Ok(None);
    };
    check_first_byte(first, version)?;
    let Some((header_len, remaining)) = fixed_header(buf)? else {
        return Ok(None);
    };
    let size = header_len + remaining;
    if size > max_packet_size {
        return Err(DecodeError::TooLarge {
            size,
            max: max_packet_size,
        });
    }
    if buf.len() < size {
        return Ok(None);
    }
    let frame = buf.split_to(size).freeze();
    let mut r = Reader::new(&frame, header_len);
    let flags = first & 0x0F;
    let packet = match version {
        None => Packet::Connect(Box::new(connect(&mut r)?)),
        Some(v) => body(first >> 4, flags, v, &mut r)?,
    };
    Ok(Some(packet))
}

fn body(
    kind: u8,
    flags: u8,
    v: ProtocolVersion,
    r: &mut Reader<'_>,
) -> Result<Packet, DecodeError> {
    let v5 = v.is_v5();
    Ok(match kind {
        CONNACK => Packet::ConnAck(connack(r, v5)?),
        PUBLISH => Packet::Publish(publish(r, flags, v5)?),
        PUBACK => Packet::PubAck(pub_resp(r, v5, "property not allowed in PUBACK")?),
        PUBREC => Packet::PubRec(pub_resp(r, v5, "property not allowed in PUBREC")?),
        PUBREL => Packet::PubRel(pub_resp(r, v5, "property not allowed in PUBREL")?),
        PUBCOMP => Packet::PubComp(pub_resp(r, v5, "property not allowed in PUBCOMP")?),
        SUBSCRIBE => Packet::Subscribe(subscribe(r, v5)?),
        SUBACK => Packet::SubAck(suback(r, v5)?),
        UNSUBSCRIBE => Packet::Unsubscribe(unsubscribe(r, v5)?),
        UNSUBACK => Packet::UnsubAck(unsuback(r, v5)?),
        PINGREQ => {
            r.finish("PINGREQ with a body")?;
            Packet::PingReq
        }
        PINGRESP => {
            r.finish("PINGRESP with a body")?;
            Packet::PingResp
        }
        DISCONNECT => Packet::Disconnect(disconnect(r, v5)?),
        AUTH => Packet::Auth(auth(r)?),
        // CONNECT, type 0 and AUTH before v5 were refused by `check_first_byte`.
        _ => return Err(DecodeError::Malformed("unexpected packet type")),
    })
}

#[inline]
fn packet_id(r: &mut Reader<'_>) -> Result<u16, DecodeError> {
    let id = r.u16()?;
    if id == 0 {
        return Err(DecodeError::Malformed("packet identifier 0"));
    }
    Ok(id)
}

/// Checks a topic name read from the wire: no wildcards (may be empty; callers decide).
#[inline]
fn topic_name(r: &mut Reader<'_>) -> Result<String, DecodeError> {
    let raw = r.raw_prefixed()?;
    // One scan for the rare cases (NUL, wildcards); UTF-8 validation is the only other pass.
    if raw.iter().any(|&b| b == 0 || b == b'+' || b == b'#') {
        let topic = utf8(raw)?;
        if crate::topic::has_wildcards(topic) {
            return Err(DecodeError::TopicInvalid("topic name contains a wildcard"));
        }
    }
    std::str::from_utf8(raw)
        .map(str::to_owned)
        .map_err(|_| DecodeError::Malformed("string is not valid UTF-8"))
}

fn connect(r: &mut Reader<'_>) -> Result<Connect, DecodeError> {
    let name = r.raw_prefixed()?;
    let level = r.u8()?;
    let protocol = match (name, level) {
        (b"MQTT", 4) => ProtocolVersion::V311,
        (b"MQTT", 5) => ProtocolVersion::V5,
        (b"MQIsdp", 3) => ProtocolVersion::V31,
        _ => return Err(DecodeError::UnsupportedProtocol(level)),
    };
    let v5 = protocol.is_v5();
    let flags = r.u8()?;
    if flags & 0x01 != 0 {
        return Err(DecodeError::Malformed("reserved CONNECT flag set"));
    }
    let clean_start = flags & 0x02 != 0;
    let will_flag = flags & 0x04 != 0;
    let will_qos = (flags >> 3) & 0b11;
    let will_retain = flags & 0x20 != 0;
    let has_password = flags & 0x40 != 0;
    let has_username = flags & 0x80 != 0;
    if !will_flag && (will_qos != 0 || will_retain) {
        return Err(DecodeError::Malformed(
            "Will QoS or Will Retain set without the Will Flag",
        ));
    }
    let will_qos = QoS::from_u8(will_qos).ok_or(DecodeError::Malformed("Will QoS 3"))?;
    if !v5 && has_password && !has_username {
        return Err(DecodeError::Malformed("password without user name"));
    }
    let keep_alive = r.u16()?;
    let properties = if v5 {
        props::connect(r)?
    } else {
        ConnectProperties::default()
    };
    let client_id = r.string()?;
    let will = if will_flag {
        let properties = if v5 {
            props::will(r)?
        } else {
            WillProperties::default()
        };
        let topic = topic_name(r)?;
        if topic.is_empty() {
            return Err(DecodeError::TopicInvalid("empty Will Topic"));
        }
        let payload = r.binary()?;
        Some(LastWill {
            topic,
            payload,
            qos: will_qos,
            retain: will_retain,
            properties,
        })
    } else {
        None
    };
    let username = if has_username {
        Some(r.string()?)
    } else {
        None
    };
    let password = if has_password {
        Some(r.binary()?)
    } else {
        None
    };
    r.finish("CONNECT longer than its contents")?;
    Ok(Connect {
        protocol,
        clean_start,
        keep_alive,
        client_id,
        will,
        username,
        password,
        properties,
    })
}

fn connack(r: &mut Reader<'_>, v5: bool) -> Result<ConnAck, DecodeError> {
    let flags = r.u8()?;
    if flags & 0xFE != 0 {
        return Err(DecodeError::Malformed("reserved CONNACK flags set"));
    }
    let code = r.u8()?;
    // Some servers omit an empty property section; accept that.
    let properties = if v5 && !r.is_empty() {
        props::connack(r)?
    } else {
        ConnAckProperties::default()
    };
    r.finish("CONNACK longer than its contents")?;
    Ok(ConnAck {
        session_present: flags & 0x01 != 0,
        code,
        properties,
    })
}

fn publish(r: &mut Reader<'_>, flags: u8, v5: bool) -> Result<Publish, DecodeError> {
    let dup = flags & 0b1000 != 0;
    let retain = flags & 0b0001 != 0;
    // `check_first_byte` refused QoS 3.
    let qos = QoS::from_u8((flags >> 1) & 0b11).unwrap_or_default();
    let topic = topic_name(r)?;
    let packet_id = if qos == QoS::AtMostOnce {
        0
    } else {
        packet_id(r)?
    };
    let properties = if v5 {
        props::publish(r)?
    } else {
        PublishProperties::default()
    };
    if topic.is_empty() {
        if !v5 {
            return Err(DecodeError::TopicInvalid("empty topic name"));
        }
        if properties.topic_alias.is_none() {
            return Err(DecodeError::Protocol(
                "empty topic name without a Topic Alias",
            ));
        }
    }
    let payload = r.rest();
    Ok(Publish {
        dup,
        qos,
        retain,
        topic,
        packet_id,
        payload,
        properties,
    })
}

fn pub_resp(r: &mut Reader<'_>, v5: bool, bad_prop: &'static str) -> Result<PubResp, DecodeError> {
    let packet_id = packet_id(r)?;
    let mut out = PubResp {
        packet_id,
        ..PubResp::default()
    };
    if v5 {
        // Remaining length 2: success without properties; 3: reason code only.
        if !r.is_empty() {
            out.reason = r.u8()?;
            if !r.is_empty() {
                out.properties = props::ack(r, bad_prop)?;
            }
        }
    }
    r.finish("acknowledgement longer than its contents")?;
    Ok(out)
}

fn subscribe(r: &mut Reader<'_>, v5: bool) -> Result<Subscribe, DecodeError> {
    let packet_id = packet_id(r)?;
    let properties = if v5 {
        props::subscribe(r)?
    } else {
        SubscribeProperties::default()
    };
    let mut filters = Vec::new();
    while !r.is_empty() {
        let filter = r.string()?;
        let o = r.u8()?;
        let qos =
            QoS::from_u8(o & 0b11).ok_or(DecodeError::Malformed("subscription with QoS 3"))?;
        let options = if v5 {
            if o & 0xC0 != 0 {
                return Err(DecodeError::Malformed(
                    "reserved subscription option bits set",
                ));
            }
            let retain_handling = (o >> 4) & 0b11;
            if retain_handling == 3 {
                return Err(DecodeError::Protocol("Retain Handling 3"));
            }
            let no_local = o & 0b0100 != 0;
            if no_local && filter.starts_with("$share/") {
                return Err(DecodeError::Protocol(
                    "No Local set on a shared subscription",
                ));
            }
            SubscriptionOptions {
                qos,
                no_local,
                retain_as_published: o & 0b1000 != 0,
                retain_handling,
            }
        } else {
            if o & 0xFC != 0 {
                return Err(DecodeError::Malformed("reserved bits of requested QoS set"));
            }
            SubscriptionOptions {
                qos,
                ..SubscriptionOptions::default()
            }
        };
        filters.push((filter, options));
    }
    if filters.is_empty() {
        return Err(DecodeError::Protocol("SUBSCRIBE without topic filters"));
    }
    Ok(Subscribe {
        packet_id,
        filters,
        properties,
    })
}

fn suback(r: &mut Reader<'_>, v5: bool) -> Result<SubAck, DecodeError> {
    let packet_id = r.u16()?;
    let properties = if v5 {
        props::ack(r, "property not allowed in SUBACK")?
    } else {
        AckProperties::default()
    };
    let reasons = r.rest_slice().to_vec();
    Ok(SubAck {
        packet_id,
        reasons,
        properties,
    })
}

fn unsubscribe(r: &mut Reader<'_>, v5: bool) -> Result<Unsubscribe, DecodeError> {
    let packet_id = packet_id(r)?;
    let user_properties = if v5 {
        props::unsubscribe(r)?
    } else {
        UserProperties::new()
    };
    let mut filters = Vec::new();
    while !r.is_empty() {
        filters.push(r.string()?);
    }
    if filters.is_empty() {
        return Err(DecodeError::Protocol("UNSUBSCRIBE without topic filters"));
    }
    Ok(Unsubscribe {
        packet_id,
        filters,
        user_properties,
    })
}

fn unsuback(r: &mut Reader<'_>, v5: bool) -> Result<UnsubAck, DecodeError> {
    let packet_id = r.u16()?;
    if !v5 {
        r.finish("3.1.1 UNSUBACK longer than 2 bytes")?;
        return Ok(UnsubAck {
            packet_id,
            ..UnsubAck::default()
        });
    }
    let properties = props::ack(r, "property not allowed in UNSUBACK")?;
    let reasons = r.rest_slice().to_vec();
    Ok(UnsubAck {
        packet_id,
        reasons,
        properties,
    })
}

fn disconnect(r: &mut Reader<'_>, v5: bool) -> Result<Disconnect, DecodeError> {
    let mut out = Disconnect::default();
    if v5 && !r.is_empty() {
        out.reason = r.u8()?;
        if !r.is_empty() {
            out.properties = props::disconnect(r)?;
        }
    }
    r.finish("DISCONNECT longer than its contents")?;
    Ok(out)
}

fn auth(r: &mut Reader<'_>) -> Result<Auth, DecodeError> {
    let mut out = Auth::default();
    if !r.is_empty() {
        out.reason = r.u8()?;
        if !r.is_empty() {
            out.properties = props::auth(r)?;
        }
    }
    r.finish("AUTH longer than its contents")?;
    Ok(out)
}

/// The protocol level announced by a CONNECT at the front of `buf`, once enough of it has
/// arrived, without consuming anything. Lets a server answer a CONNECT that fails to decode
/// with a CONNACK in the client's own protocol version.
pub fn peek_connect_level(buf: &[u8]) -> Option<u8> {
    if buf.first()? >> 4 != CONNECT {
        return None;
    }
    let (header_len, _) = fixed_header(buf).ok()??;
    let rest = buf.get(header_len..)?;
    let name_len = usize::from(u16::from_be_bytes([*rest.first()?, *rest.get(1)?]));
    rest.get(2 + name_len).copied()
}
