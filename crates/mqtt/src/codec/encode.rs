//! Encoding of control packets.
//!
//! One generic writer serves both counting ([`Counter`]) and writing (`BytesMut`), so
//! `encoded_len` equals what `encode` appends by construction.

use bytes::{BufMut, BytesMut};

use super::EncodeError;
use super::decode::*;
use super::props::*;
use crate::packet::*;

/// Destination of encoded bytes.
trait Out {
    fn put(&mut self, b: &[u8]);

    #[inline]
    fn u8(&mut self, v: u8) {
        self.put(&[v]);
    }

    #[inline]
    fn u16(&mut self, v: u16) {
        self.put(&v.to_be_bytes());
    }

    #[inline]
    fn u32(&mut self, v: u32) {
        self.put(&v.to_be_bytes());
    }

    /// A variable byte integer.
    #[inline]
    fn vbi(&mut self, v: usize) -> Result<(), EncodeError> {
        if v > MAX_VBI as usize {
            return Err(EncodeError::TooLarge(v));
        }
        let mut tmp = [0u8; 4];
        let n = vbi_bytes(v, &mut tmp);
        self.put(tmp.get(..n).unwrap_or_default());
        Ok(())
    }

    /// Two-byte length followed by the bytes.
    #[inline]
    fn binary(&mut self, b: &[u8]) -> Result<(), EncodeError> {
        let len = u16::try_from(b.len()).map_err(|_| EncodeError::TooLarge(b.len()))?;
        self.u16(len);
        self.put(b);
        Ok(())
    }

    #[inline]
    fn str(&mut self, s: &str) -> Result<(), EncodeError> {
        self.binary(s.as_bytes())
    }
}

/// Counts bytes instead of writing them; never fails.
pub(super) struct Counter(pub(super) usize);

impl Out for Counter {
    #[inline]
    fn put(&mut self, b: &[u8]) {
        self.0 += b.len();
    }

    #[inline]
    fn u8(&mut self, _: u8) {
        self.0 += 1;
    }

    #[inline]
    fn u16(&mut self, _: u16) {
        self.0 += 2;
    }

    #[inline]
    fn u32(&mut self, _: u32) {
        self.0 += 4;
    }

    #[inline]
    fn vbi(&mut self, v: usize) -> Result<(), EncodeError> {
        self.0 += vbi_len(v);
        Ok(())
    }

    #[inline]
    fn binary(&mut self, b: &[u8]) -> Result<(), EncodeError> {
        self.0 += 2 + b.len();
        Ok(())
    }
}

impl Out for BytesMut {
    #[inline]
    fn put(&mut self, b: &[u8]) {
        self.extend_from_slice(b);
    }

    #[inline]
    fn u8(&mut self, v: u8) {
        self.put_u8(v);
    }

    #[inline]
    fn u16(&mut self, v: u16) {
        self.put_u16(v);
    }

    #[inline]
    fn u32(&mut self, v: u32) {
        self.put_u32(v);
    }
}

/// Bytes a variable byte integer of value `v` takes (4 for anything too large to encode).
#[inline]
pub fn vbi_len(v: usize) -> usize {
    match v {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    }
}

#[inline]
fn vbi_bytes(mut v: usize, out: &mut [u8; 4]) -> usize {
    let mut n = 0;
    for slot in out.iter_mut() {
        let mut b = (v % 128) as u8;
        v /= 128;
        if v > 0 {
            b |= 0x80;
        }
        *slot = b;
        n += 1;
        if v == 0 {
            break;
        }
    }
    n
}

/// Counts what `f` writes.
macro_rules! count {
    ($f:ident($($arg:expr),*)) => {{
        let mut c = Counter(0);
        // Counting never fails.
        let _ = $f(&mut c, $($arg),*);
        c.0
    }};
}

/// Writes a property section: its length, then the properties.
macro_rules! section {
    ($o:expr, $f:ident($($arg:expr),*)) => {{
        let len = count!($f($($arg),*));
        $o.vbi(len)?;
        $f($o, $($arg),*)
    }};
}

pub(super) fn encode(
    packet: &Packet,
    version: ProtocolVersion,
    buf: &mut BytesMut,
) -> Result<(), EncodeError> {
    if matches!(packet, Packet::Auth(_)) && !version.is_v5() {
        return Err(EncodeError::NotInVersion("AUTH"));
    }
    let body_len = count!(body(packet, version));
    let total = 1 + vbi_len(body_len) + body_len;
    if body_len > MAX_VBI as usize {
        return Err(EncodeError::TooLarge(total));
    }
    let start = buf.len();
    buf.reserve(total);
    buf.u8(first_byte(packet));
    let result = buf.vbi(body_len).and_then(|()| body(buf, packet, version));
    if result.is_err() {
        buf.truncate(start);
    }
    debug_assert!(result.is_err() || buf.len() - start == total);
    result
}

pub(super) fn encoded_len(packet: &Packet, version: ProtocolVersion) -> usize {
    let body_len = count!(body(packet, version));
    1 + vbi_len(body_len) + body_len
}

fn first_byte(packet: &Packet) -> u8 {
    match packet {
        Packet::Connect(_) => CONNECT << 4,
        Packet::ConnAck(_) => CONNACK << 4,
        Packet::Publish(p) => {
            let qos = p.qos as u8;
            let dup = if p.dup && qos > 0 { 0b1000 } else { 0 };
            PUBLISH << 4 | dup | qos << 1 | u8::from(p.retain)
        }
        Packet::PubAck(_) => PUBACK << 4,
        Packet::PubRec(_) => PUBREC << 4,
        Packet::PubRel(_) => PUBREL << 4 | 0b0010,
        Packet::PubComp(_) => PUBCOMP << 4,
        Packet::Subscribe(_) => SUBSCRIBE << 4 | 0b0010,
        Packet::SubAck(_) => SUBACK << 4,
        Packet::Unsubscribe(_) => UNSUBSCRIBE << 4 | 0b0010,
        Packet::UnsubAck(_) => UNSUBACK << 4,
        Packet::PingReq => PINGREQ << 4,
        Packet::PingResp => PINGRESP << 4,
        Packet::Disconnect(_) => DISCONNECT << 4,
        Packet::Auth(_) => AUTH << 4,
    }
}

fn body<O: Out>(o: &mut O, packet: &Packet, v: ProtocolVersion) -> Result<(), EncodeError> {
    let v5 = v.is_v5();
    match packet {
        Packet::Connect(c) => connect(o, c, v),
        Packet::ConnAck(c) => {
            o.u8(u8::from(c.session_present));
            o.u8(c.code);
            if v5 {
                section!(o, connack_props(&c.properties))?;
            }
            Ok(())
        }
        Packet::Publish(p) => {
            o.str(&p.topic)?;
            if p.qos != QoS::AtMostOnce {
                o.u16(p.packet_id);
            }
            if v5 {
                section!(o, publish_props(&p.properties))?;
            }
            o.put(&p.payload);
            Ok(())
        }
        Packet::PubAck(r) | Packet::PubRec(r) | Packet::PubRel(r) | Packet::PubComp(r) => {
            o.u16(r.packet_id);
            if v5 {
                reason_and_props(o, r.reason, &r.properties)?;
            }
            Ok(())
        }
        Packet::Subscribe(s) => {
            o.u16(s.packet_id);
            if v5 {
                section!(o, subscribe_props(&s.properties))?;
            }
            for (filter, opts) in &s.filters {
                o.str(filter)?;
                let mut b = opts.qos as u8;
                if v5 {
                    b |= u8::from(opts.no_local) << 2
                        | u8::from(opts.retain_as_published) << 3
                        | (opts.retain_handling & 0b11) << 4;
                }
                o.u8(b);
            }
            Ok(())
        }
        Packet::SubAck(s) => {
            o.u16(s.packet_id);
            if v5 {
                section!(o, ack_props(&s.properties))?;
            }
            o.put(&s.reasons);
            Ok(())
        }
        Packet::Unsubscribe(u) => {
            o.u16(u.packet_id);
            if v5 {
                section!(o, user_props(&u.user_properties))?;
            }
            for filter in &u.filters {
                o.str(filter)?;
            }
            Ok(())
        }
        Packet::UnsubAck(u) => {
            o.u16(u.packet_id);
            if v5 {
                section!(o, ack_props(&u.properties))?;
                o.put(&u.reasons);
            }
            Ok(())
        }
        Packet::PingReq | Packet::PingResp => Ok(()),
        Packet::Disconnect(d) => {
            if v5 {
                let props = count!(disconnect_props(&d.properties));
                if props > 0 {
                    o.u8(d.reason);
                    section!(o, disconnect_props(&d.properties))?;
                } else if d.reason != 0 {
                    o.u8(d.reason);
                }
            }
            Ok(())
        }
        Packet::Auth(a) => {
            let props = count!(auth_props(&a.properties));
            if a.reason != 0 || props > 0 {
                o.u8(a.reason);
                section!(o, auth_props(&a.properties))?;
            }
            Ok(())
        }
    }
}

/// The v5 tail of PUBACK, PUBREC, PUBREL and PUBCOMP: omitted for success without properties,
/// the reason code alone without properties.
fn reason_and_props<O: Out>(o: &mut O, reason: u8, p: &AckProperties) -> Result<(), EncodeError> {
    let props = count!(ack_props(p));
    if props > 0 {
        o.u8(reason);
        o.vbi(props)?;
        ack_props(o, p)
    } else {
        if reason != 0 {
            o.u8(reason);
        }
        Ok(())
    }
}

fn connect<O: Out>(o: &mut O, c: &Connect, v: ProtocolVersion) -> Result<(), EncodeError> {
    let v5 = v.is_v5();
    match v {
        ProtocolVersion::V31 => o.str("MQIsdp")?,
        ProtocolVersion::V311 | ProtocolVersion::V5 => o.str("MQTT")?,
    }
    o.u8(v.level());
    let mut flags = 0u8;
    if c.clean_start {
        flags |= 0x02;
    }
    if let Some(w) = &c.will {
        flags |= 0x04 | (w.qos as u8) << 3;
        if w.retain {
            flags |= 0x20;
        }
    }
    if c.password.is_some() {
        flags |= 0x40;
    }
    if c.username.is_some() {
        flags |= 0x80;
    }
    o.u8(flags);
    o.u16(c.keep_alive);
    if v5 {
        section!(o, connect_props(&c.properties))?;
    }
    o.str(&c.client_id)?;
    if let Some(w) = &c.will {
        if v5 {
            section!(o, will_props(&w.properties))?;
        }
        o.str(&w.topic)?;
        o.binary(&w.payload)?;
    }
    if let Some(u) = &c.username {
        o.str(u)?;
    }
    if let Some(p) = &c.password {
        o.binary(p)?;
    }
    Ok(())
}

#[inline]
fn p_u8<O: Out>(o: &mut O, id: u8, v: Option<u8>) {
    if let Some(v) = v {
        o.u8(id);
        o.u8(v);
    }
}

#[inline]
fn p_u16<O: Out>(o: &mut O, id: u8, v: Option<u16>) {
    if let Some(v) = v {
        o.u8(id);
        o.u16(v);
    }
}

#[inline]
fn p_u32<O: Out>(o: &mut O, id: u8, v: Option<u32>) {
    if let Some(v) = v {
        o.u8(id);
        o.u32(v);
    }
}

#[inline]
fn p_str<O: Out>(o: &mut O, id: u8, v: &Option<String>) -> Result<(), EncodeError> {
    if let Some(v) = v {
        o.u8(id);
        o.str(v)?;
    }
    Ok(())
}

#[inline]
fn p_bin<O: Out>(o: &mut O, id: u8, v: &Option<bytes::Bytes>) -> Result<(), EncodeError> {
    if let Some(v) = v {
        o.u8(id);
        o.binary(v)?;
    }
    Ok(())
}

#[inline]
fn user_props<O: Out>(o: &mut O, props: &UserProperties) -> Result<(), EncodeError> {
    for (k, v) in props {
        o.u8(USER_PROPERTY);
        o.str(k)?;
        o.str(v)?;
    }
    Ok(())
}

fn connect_props<O: Out>(o: &mut O, p: &ConnectProperties) -> Result<(), EncodeError> {
    p_u32(o, SESSION_EXPIRY_INTERVAL, p.session_expiry_interval);
    p_u16(o, RECEIVE_MAXIMUM, p.receive_maximum);
    p_u32(o, MAXIMUM_PACKET_SIZE, p.maximum_packet_size);
    p_u16(o, TOPIC_ALIAS_MAXIMUM, p.topic_alias_maximum);
    p_u8(
        o,
        REQUEST_RESPONSE_INFORMATION,
        p.request_response_information,
    );
    p_u8(
        o,
        REQUEST_PROBLEM_INFORMATION,
        p.request_problem_information,
    );
    user_props(o, &p.user_properties)?;
    p_str(o, AUTHENTICATION_METHOD, &p.authentication_method)?;
    p_bin(o, AUTHENTICATION_DATA, &p.authentication_data)
}

fn will_props<O: Out>(o: &mut O, p: &WillProperties) -> Result<(), EncodeError> {
    p_u32(o, WILL_DELAY_INTERVAL, p.will_delay_interval);
    p_u8(o, PAYLOAD_FORMAT_INDICATOR, p.payload_format_indicator);
    p_u32(o, MESSAGE_EXPIRY_INTERVAL, p.message_expiry_interval);
    p_str(o, CONTENT_TYPE, &p.content_type)?;
    p_str(o, RESPONSE_TOPIC, &p.response_topic)?;
    p_bin(o, CORRELATION_DATA, &p.correlation_data)?;
    user_props(o, &p.user_properties)
}

fn connack_props<O: Out>(o: &mut O, p: &ConnAckProperties) -> Result<(), EncodeError> {
    p_u32(o, SESSION_EXPIRY_INTERVAL, p.session_expiry_interval);
    p_u16(o, RECEIVE_MAXIMUM, p.receive_maximum);
    p_u8(o, MAXIMUM_QOS, p.maximum_qos);
    p_u8(o, RETAIN_AVAILABLE, p.retain_available);
    p_u32(o, MAXIMUM_PACKET_SIZE, p.maximum_packet_size);
    p_str(o, ASSIGNED_CLIENT_IDENTIFIER, &p.assigned_client_identifier)?;
    p_u16(o, TOPIC_ALIAS_MAXIMUM, p.topic_alias_maximum);
    p_str(o, REASON_STRING, &p.reason_string)?;
    user_props(o, &p.user_properties)?;
    p_u8(
        o,
        WILDCARD_SUBSCRIPTION_AVAILABLE,
        p.wildcard_subscription_available,
    );
    p_u8(
        o,
        SUBSCRIPTION_IDENTIFIER_AVAILABLE,
        p.subscription_identifier_available,
    );
    p_u8(
        o,
        SHARED_SUBSCRIPTION_AVAILABLE,
        p.shared_subscription_available,
    );
    p_u16(o, SERVER_KEEP_ALIVE, p.server_keep_alive);
    p_str(o, RESPONSE_INFORMATION, &p.response_information)?;
    p_str(o, SERVER_REFERENCE, &p.server_reference)?;
    p_str(o, AUTHENTICATION_METHOD, &p.authentication_method)?;
    p_bin(o, AUTHENTICATION_DATA, &p.authentication_data)
}

fn publish_props<O: Out>(o: &mut O, p: &PublishProperties) -> Result<(), EncodeError> {
    p_u8(o, PAYLOAD_FORMAT_INDICATOR, p.payload_format_indicator);
    p_u32(o, MESSAGE_EXPIRY_INTERVAL, p.message_expiry_interval);
    p_u16(o, TOPIC_ALIAS, p.topic_alias);
    p_str(o, RESPONSE_TOPIC, &p.response_topic)?;
    p_bin(o, CORRELATION_DATA, &p.correlation_data)?;
    user_props(o, &p.user_properties)?;
    for &id in &p.subscription_identifiers {
        o.u8(SUBSCRIPTION_IDENTIFIER);
        o.vbi(id as usize)?;
    }
    p_str(o, CONTENT_TYPE, &p.content_type)
}

fn ack_props<O: Out>(o: &mut O, p: &AckProperties) -> Result<(), EncodeError> {
    p_str(o, REASON_STRING, &p.reason_string)?;
    user_props(o, &p.user_properties)
}

fn subscribe_props<O: Out>(o: &mut O, p: &SubscribeProperties) -> Result<(), EncodeError> {
    if let Some(id) = p.subscription_identifier {
        o.u8(SUBSCRIPTION_IDENTIFIER);
        o.vbi(id as usize)?;
    }
    user_props(o, &p.user_properties)
}

fn disconnect_props<O: Out>(o: &mut O, p: &DisconnectProperties) -> Result<(), EncodeError> {
    p_u32(o, SESSION_EXPIRY_INTERVAL, p.session_expiry_interval);
    p_str(o, REASON_STRING, &p.reason_string)?;
    user_props(o, &p.user_properties)?;
    p_str(o, SERVER_REFERENCE, &p.server_reference)
}

fn auth_props<O: Out>(o: &mut O, p: &AuthProperties) -> Result<(), EncodeError> {
    p_str(o, AUTHENTICATION_METHOD, &p.authentication_method)?;
    p_bin(o, AUTHENTICATION_DATA, &p.authentication_data)?;
    p_str(o, REASON_STRING, &p.reason_string)?;
    user_props(o, &p.user_properties)
}
