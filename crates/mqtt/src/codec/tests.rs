//! Hand-written byte vectors: real client captures (mosquitto_pub / mosquitto_sub 2.0) and
//! spec examples, plus every validation rule.

#![allow(clippy::unwrap_used)]

use bytes::{Bytes, BytesMut};

use super::*;
use crate::packet::*;
use crate::reason;

const V3: Option<ProtocolVersion> = Some(ProtocolVersion::V311);
const V5: Option<ProtocolVersion> = Some(ProtocolVersion::V5);

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn dec(bytes: &[u8], v: Option<ProtocolVersion>) -> Result<Option<Packet>, DecodeError> {
    let mut b = BytesMut::from(bytes);
    decode(&mut b, v, usize::MAX)
}

/// Decodes exactly one whole packet.
fn one(bytes: &[u8], v: Option<ProtocolVersion>) -> Packet {
    let mut b = BytesMut::from(bytes);
    let p = decode(&mut b, v, usize::MAX).unwrap().unwrap();
    assert!(b.is_empty(), "{} bytes left over", b.len());
    p
}

fn err(bytes: &[u8], v: Option<ProtocolVersion>) -> DecodeError {
    dec(bytes, v).unwrap_err()
}

fn enc(p: &Packet, v: ProtocolVersion) -> Vec<u8> {
    let mut b = BytesMut::new();
    encode(p, v, &mut b).unwrap();
    assert_eq!(b.len(), encoded_len(p, v), "encoded_len of {p:?}");
    b.to_vec()
}

/// Decodes `bytes`, checks the re-encoding is byte-identical and that feeding one byte at a time
/// yields the same packet.
fn canonical(bytes: &[u8], v: Option<ProtocolVersion>) -> Packet {
    let p = one(bytes, v);
    let ver = match (&p, v) {
        (Packet::Connect(c), None) => c.protocol,
        (_, Some(v)) => v,
        _ => unreachable!(),
    };
    assert_eq!(enc(&p, ver), bytes, "re-encoding of {p:?}");
    assert_eq!(incremental(bytes, v), p);
    p
}

fn incremental(bytes: &[u8], v: Option<ProtocolVersion>) -> Packet {
    let mut b = BytesMut::new();
    for (i, byte) in bytes.iter().enumerate() {
        let before = b.len();
        let r = decode(&mut b, v, usize::MAX).unwrap();
        assert!(r.is_none(), "packet decoded after only {i} bytes");
        assert_eq!(b.len(), before, "incomplete decode consumed bytes");
        b.extend_from_slice(&[*byte]);
    }
    let p = decode(&mut b, v, usize::MAX).unwrap().unwrap();
    assert!(b.is_empty());
    p
}

// ---- captures from mosquitto 2.0 clients -------------------------------------------------

/// `mosquitto_pub -V mqttv311 -i client1 -t test -m hello -k 60`
const MOSQ_V3_CONNECT: &str = "101300044d5154540402003c0007636c69656e7431";
const MOSQ_V3_PUBLISH: &str = "300b00047465737468656c6c6f";
/// `mosquitto_pub -V mqttv5 -i client5 -t sensors/temp -m '{"t":21}' -u alice -P secret
///  --will-topic dead/client5 --will-payload gone --will-qos 1 --will-retain
///  -D connect session-expiry-interval 3600 -D publish user-property k v
///  -D publish content-type application/json`
const MOSQ_V5_CONNECT: &str = "104000044d51545405ee003c081100000e102100140007636c69656e743500000c646561642f636c69656e74350004676f6e650005616c6963650006736563726574";
const MOSQ_V5_PUBLISH: &str = "3031000c73656e736f72732f74656d701a2600016b0001760300106170706c69636174696f6e2f6a736f6e7b2274223a32317d";
/// `mosquitto_sub -V mqttv311 -i sub3 -t 'a/+' -q 2`
const MOSQ_V3_SUBSCRIBE: &str = "820800010003612f2b02";
/// `mosquitto_sub -V mqttv5 -i sub5 -t 'a/+' -t 'b/#' -q 1 -D subscribe subscription-identifier 7`
const MOSQ_V5_SUBSCRIBE: &str = "82110001020b070003612f2b010003622f2301";

#[test]
fn mosquitto_v311_connect() {
    let Packet::Connect(c) = canonical(&hex(MOSQ_V3_CONNECT), None) else {
        panic!()
    };
    assert_eq!(c.protocol, ProtocolVersion::V311);
    assert!(c.clean_start);
    assert_eq!(c.keep_alive, 60);
    assert_eq!(c.client_id, "client1");
    assert_eq!((c.will, c.username, c.password), (None, None, None));
}

#[test]
fn mosquitto_v5_connect() {
    let Packet::Connect(c) = canonical(&hex(MOSQ_V5_CONNECT), None) else {
        panic!()
    };
    assert_eq!(c.protocol, ProtocolVersion::V5);
    assert!(c.clean_start);
    assert_eq!(c.client_id, "client5");
    assert_eq!(c.properties.session_expiry_interval, Some(3600));
    assert_eq!(c.properties.receive_maximum, Some(20));
    let w = c.will.unwrap();
    assert_eq!(w.topic, "dead/client5");
    assert_eq!(&w.payload[..], b"gone");
    assert_eq!(w.qos, QoS::AtLeastOnce);
    assert!(w.retain);
    assert_eq!(c.username.as_deref(), Some("alice"));
    assert_eq!(c.password.as_deref(), Some(&b"secret"[..]));
}

#[test]
fn mosquitto_publishes() {
    let Packet::Publish(p) = canonical(&hex(MOSQ_V3_PUBLISH), V3) else {
        panic!()
    };
    assert_eq!(
        (p.topic.as_str(), &p.payload[..], p.qos),
        ("test", &b"hello"[..], QoS::AtMostOnce)
    );
    let Packet::Publish(p) = canonical(&hex(MOSQ_V5_PUBLISH), V5) else {
        panic!()
    };
    assert_eq!(p.topic, "sensors/temp");
    assert_eq!(&p.payload[..], br#"{"t":21}"#);
    assert_eq!(
        p.properties.user_properties,
        vec![("k".to_owned(), "v".to_owned())]
    );
    assert_eq!(
        p.properties.content_type.as_deref(),
        Some("application/json")
    );
}

#[test]
fn mosquitto_subscribes() {
    let Packet::Subscribe(s) = canonical(&hex(MOSQ_V3_SUBSCRIBE), V3) else {
        panic!()
    };
    assert_eq!(s.packet_id, 1);
    assert_eq!(
        s.filters,
        vec![(
            "a/+".to_owned(),
            SubscriptionOptions {
                qos: QoS::ExactlyOnce,
                ..Default::default()
            }
        )]
    );
    let Packet::Subscribe(s) = canonical(&hex(MOSQ_V5_SUBSCRIBE), V5) else {
        panic!()
    };
    assert_eq!(s.properties.subscription_identifier, Some(7));
    let q1 = SubscriptionOptions {
        qos: QoS::AtLeastOnce,
        ..Default::default()
    };
    assert_eq!(
        s.filters,
        vec![("a/+".to_owned(), q1), ("b/#".to_owned(), q1)]
    );
}

#[test]
fn mqtt31_connect() {
    // MQIsdp, level 3, clean session, keep alive 10, client id "c".
    let bytes = [
        &[0x10, 15, 0, 6][..],
        b"MQIsdp",
        &[3, 0x02, 0, 10, 0, 1, b'c'],
    ]
    .concat();
    let Packet::Connect(c) = canonical(&bytes, None) else {
        panic!()
    };
    assert_eq!(c.protocol, ProtocolVersion::V31);
    assert_eq!(c.keep_alive, 10);
    assert_eq!(c.client_id, "c");
}

// ---- every other packet, both versions ---------------------------------------------------

#[test]
fn connack() {
    assert_eq!(
        canonical(&hex("20020000"), V3),
        Packet::ConnAck(ConnAck::default())
    );
    let p = canonical(&hex("20020105"), V3);
    assert_eq!(
        p,
        Packet::ConnAck(ConnAck {
            session_present: true,
            code: 5,
            ..Default::default()
        })
    );
    assert_eq!(
        canonical(&hex("2003000000"), V5),
        Packet::ConnAck(ConnAck::default())
    );
    // A v5 CONNACK without a property length is tolerated.
    assert_eq!(
        one(&hex("20020000"), V5),
        Packet::ConnAck(ConnAck::default())
    );
    // Assigned client id "ab", topic alias maximum 10, maximum QoS 1, shared subs available 0.
    let p = canonical(&hex("200f 0100 0c 24 01 12 0002 6162 22 000a 2a 00"), V5);
    let Packet::ConnAck(c) = p else { panic!() };
    assert!(c.session_present);
    assert_eq!(
        c.properties.assigned_client_identifier.as_deref(),
        Some("ab")
    );
    assert_eq!(c.properties.topic_alias_maximum, Some(10));
    assert_eq!(c.properties.maximum_qos, Some(1));
    assert_eq!(c.properties.shared_subscription_available, Some(0));
    assert!(matches!(
        err(&hex("20020200"), V3),
        DecodeError::Malformed(_)
    ));
    assert!(matches!(
        err(&hex("2003000000 00"), V3),
        DecodeError::Malformed(_)
    ));
}

#[test]
fn publish_qos1_and_2() {
    let p = canonical(&hex("3b 09 0003 612f62 1234 7879"), V3);
    let expect = Publish {
        dup: true,
        qos: QoS::AtLeastOnce,
        retain: true,
        topic: "a/b".into(),
        packet_id: 0x1234,
        payload: Bytes::from_static(b"xy"),
        ..Default::default()
    };
    assert_eq!(p, Packet::Publish(expect.clone()));
    let p = canonical(&hex("3b 0a 0003 612f62 1234 00 7879"), V5);
    assert_eq!(p, Packet::Publish(expect));
    let Packet::Publish(p) = canonical(&hex("34 06 0001 61 0001 00"), V5) else {
        panic!()
    };
    assert_eq!(
        (p.qos, p.packet_id, p.payload.len()),
        (QoS::ExactlyOnce, 1, 0)
    );
}

#[test]
fn publish_v5_all_properties() {
    let props = "01 01 02 0000003c 23 0005 08 0001 72 09 0002 abcd 26 0001 6b 0001 76 0b 07 0b 8001 03 0001 74";
    let plen = hex(props).len();
    let body = format!("0001 61 {plen:02x} {props} ff");
    let bytes = [vec![0x30, hex(&body).len() as u8], hex(&body)].concat();
    let Packet::Publish(p) = canonical(&bytes, V5) else {
        panic!()
    };
    let pr = &p.properties;
    assert_eq!(pr.payload_format_indicator, Some(1));
    assert_eq!(pr.message_expiry_interval, Some(60));
    assert_eq!(pr.topic_alias, Some(5));
    assert_eq!(pr.response_topic.as_deref(), Some("r"));
    assert_eq!(pr.correlation_data.as_deref(), Some(&[0xab, 0xcd][..]));
    assert_eq!(pr.subscription_identifiers, vec![7, 128]);
    assert_eq!(pr.content_type.as_deref(), Some("t"));
    assert_eq!(&p.payload[..], &[0xff]);
}

#[test]
fn publish_payload_is_a_slice_of_the_input() {
    let mut b = BytesMut::from(&hex(MOSQ_V5_PUBLISH)[..]);
    let range = b.as_ptr() as usize..b.as_ptr() as usize + b.len();
    let Some(Packet::Publish(p)) = decode(&mut b, V5, usize::MAX).unwrap() else {
        panic!()
    };
    assert!(range.contains(&(p.payload.as_ptr() as usize)));
}

#[test]
fn publish_acks() {
    for (first, v3) in [
        (0x40u8, "4002 0001"),
        (0x50, "5002 0001"),
        (0x62, "6202 0001"),
        (0x70, "7002 0001"),
    ] {
        let expect = PubResp {
            packet_id: 1,
            ..Default::default()
        };
        let p = canonical(&hex(v3), V3);
        let make = |r: PubResp| match first {
            0x40 => Packet::PubAck(r),
            0x50 => Packet::PubRec(r),
            0x62 => Packet::PubRel(r),
            _ => Packet::PubComp(r),
        };
        assert_eq!(p, make(expect.clone()));
        // v5 short form, reason-only form, full form.
        assert_eq!(canonical(&hex(v3), V5), make(expect.clone()));
        let p = canonical(&[first, 3, 0, 1, 0x92], V5);
        assert_eq!(
            p,
            make(PubResp {
                reason: 0x92,
                ..expect.clone()
            })
        );
        let p = canonical(&[first, 8, 0, 1, 0x80, 4, 0x1f, 0, 1, b'x'], V5);
        let props = AckProperties {
            reason_string: Some("x".into()),
            ..Default::default()
        };
        assert_eq!(
            p,
            make(PubResp {
                reason: 0x80,
                properties: props,
                ..expect.clone()
            })
        );
        // A property length of 0 after the reason is accepted (and re-encoded short).
        assert_eq!(one(&[first, 4, 0, 1, 0, 0], V5), make(expect.clone()));
        // 3.1.1 acks are exactly two bytes.
        assert!(matches!(
            err(&[first, 3, 0, 1, 0], V3),
            DecodeError::Malformed(_)
        ));
        assert!(matches!(
            err(&[first, 2, 0, 0], V3),
            DecodeError::Malformed(_)
        ));
    }
}

#[test]
fn suback_and_unsuback() {
    let p = canonical(&hex("9004 0001 0180"), V3);
    assert_eq!(
        p,
        Packet::SubAck(SubAck {
            packet_id: 1,
            reasons: vec![1, 0x80],
            ..Default::default()
        })
    );
    let p = canonical(&hex("9005 0001 00 0102"), V5);
    assert_eq!(
        p,
        Packet::SubAck(SubAck {
            packet_id: 1,
            reasons: vec![1, 2],
            ..Default::default()
        })
    );
    let p = canonical(&hex("b002 0002"), V3);
    assert_eq!(
        p,
        Packet::UnsubAck(UnsubAck {
            packet_id: 2,
            ..Default::default()
        })
    );
    let p = canonical(&hex("b005 0002 00 0011"), V5);
    assert_eq!(
        p,
        Packet::UnsubAck(UnsubAck {
            packet_id: 2,
            reasons: vec![0, 0x11],
            ..Default::default()
        })
    );
    // 3.1.1 UNSUBACK carries no reason codes: dropped on encode, refused on decode.
    let u = Packet::UnsubAck(UnsubAck {
        packet_id: 2,
        reasons: vec![0],
        ..Default::default()
    });
    assert_eq!(enc(&u, ProtocolVersion::V311), hex("b002 0002"));
    assert!(matches!(
        err(&hex("b003 0002 00"), V3),
        DecodeError::Malformed(_)
    ));
}

#[test]
fn unsubscribe() {
    let expect = Unsubscribe {
        packet_id: 2,
        filters: vec!["a".into(), "b/#".into()],
        ..Default::default()
    };
    assert_eq!(
        canonical(&hex("a20a 0002 0001 61 0003 622f23"), V3),
        Packet::Unsubscribe(expect.clone())
    );
    assert_eq!(
        canonical(&hex("a20b 0002 00 0001 61 0003 622f23"), V5),
        Packet::Unsubscribe(expect)
    );
    let Packet::Unsubscribe(u) = canonical(&hex("a20c 0002 06 260001610000 0001 61"), V5) else {
        panic!()
    };
    assert_eq!(u.user_properties, vec![("a".to_owned(), String::new())]);
}

#[test]
fn subscribe_v5_options() {
    // QoS 2, no local, retain as published, retain handling 2.
    let Packet::Subscribe(s) = canonical(&hex("8207 0005 00 0001 61 2e"), V5) else {
        panic!()
    };
    let o = SubscriptionOptions {
        qos: QoS::ExactlyOnce,
        no_local: true,
        retain_as_published: true,
        retain_handling: 2,
    };
    assert_eq!(s.filters, vec![("a".to_owned(), o)]);
    // v5-only options are dropped for 3.1.1.
    assert_eq!(
        enc(&Packet::Subscribe(s), ProtocolVersion::V311),
        hex("8206 0005 0001 61 02")
    );
}

#[test]
fn ping_disconnect_auth() {
    assert_eq!(canonical(&hex("c000"), V3), Packet::PingReq);
    assert_eq!(canonical(&hex("d000"), V5), Packet::PingResp);
    assert_eq!(
        canonical(&hex("e000"), V3),
        Packet::Disconnect(Disconnect::default())
    );
    assert_eq!(
        canonical(&hex("e000"), V5),
        Packet::Disconnect(Disconnect::default())
    );
    // mosquitto_sub's DISCONNECT on exit: "disconnect with will message".
    let p = canonical(&hex("e00104"), V5);
    assert_eq!(
        p,
        Packet::Disconnect(Disconnect {
            reason: reason::DISCONNECT_WITH_WILL,
            ..Default::default()
        })
    );
    let Packet::Disconnect(d) = canonical(&hex("e007 8b 05 11 0000000a"), V5) else {
        panic!()
    };
    assert_eq!(
        (d.reason, d.properties.session_expiry_interval),
        (0x8b, Some(10))
    );
    // 3.1.1 DISCONNECT has no body; the reason is dropped on encode.
    assert!(matches!(err(&hex("e00100"), V3), DecodeError::Malformed(_)));
    assert_eq!(
        enc(
            &Packet::Disconnect(Disconnect {
                reason: 4,
                ..Default::default()
            }),
            ProtocolVersion::V311
        ),
        hex("e000")
    );
    assert!(matches!(err(&hex("c00100"), V3), DecodeError::Malformed(_)));
    assert!(matches!(err(&hex("d00100"), V5), DecodeError::Malformed(_)));

    assert_eq!(canonical(&hex("f000"), V5), Packet::Auth(Auth::default()));
    let Packet::Auth(a) = canonical(&hex("f00e 18 0c 15 0004 6d657468 16 0002 0102"), V5) else {
        panic!()
    };
    assert_eq!(a.reason, reason::CONTINUE_AUTHENTICATION);
    assert_eq!(a.properties.authentication_method.as_deref(), Some("meth"));
    assert_eq!(
        a.properties.authentication_data.as_deref(),
        Some(&[1, 2][..])
    );
    assert!(matches!(err(&hex("f000"), V3), DecodeError::Malformed(_)));
    let mut b = BytesMut::new();
    assert_eq!(
        encode(
            &Packet::Auth(Auth::default()),
            ProtocolVersion::V311,
            &mut b
        ),
        Err(EncodeError::NotInVersion("AUTH"))
    );
    assert!(b.is_empty());
}

#[test]
fn two_packets_in_one_buffer() {
    let mut b = BytesMut::from(&hex("c000 d000 4002")[..]);
    assert_eq!(decode(&mut b, V3, 100).unwrap(), Some(Packet::PingReq));
    assert_eq!(decode(&mut b, V3, 100).unwrap(), Some(Packet::PingResp));
    assert_eq!(decode(&mut b, V3, 100).unwrap(), None);
    assert_eq!(&b[..], &hex("4002")[..]);
    assert_eq!(decode(&mut BytesMut::new(), V3, 100).unwrap(), None);
}

// ---- size limits --------------------------------------------------------------------------

#[test]
fn too_large_from_header_alone() {
    // PUBLISH announcing 2 MB, nothing of the body present.
    let mut b = BytesMut::from(&hex("30 80 80 80 01")[..]);
    let e = decode(&mut b, V5, 1 << 20).unwrap_err();
    assert_eq!(
        e,
        DecodeError::TooLarge {
            size: 5 + (1 << 21),
            max: 1 << 20
        }
    );
    assert_eq!(e.reason_code(), reason::PACKET_TOO_LARGE);
    // Also for a CONNECT before the version is known.
    let mut b = BytesMut::from(&hex("10 ff 7f")[..]);
    assert!(matches!(
        decode(&mut b, None, 1000),
        Err(DecodeError::TooLarge {
            size: 16386,
            max: 1000
        })
    ));
    // The limit counts the whole packet: 2 bytes of header + 3 of body.
    assert!(
        decode(&mut BytesMut::from(&hex("4003 0001 10")[..]), V5, 5)
            .unwrap()
            .is_some()
    );
    assert!(matches!(
        decode(&mut BytesMut::from(&hex("4003")[..]), V5, 4),
        Err(DecodeError::TooLarge { .. })
    ));
}

#[test]
fn remaining_length_limits() {
    // Five length bytes: malformed as soon as the fourth has its continuation bit.
    assert!(matches!(
        err(&hex("30 ff ff ff ff"), V5),
        DecodeError::Malformed(_)
    ));
    assert!(matches!(
        err(&hex("30 ff ff ff 80"), V5),
        DecodeError::Malformed(_)
    ));
    assert_eq!(dec(&hex("30 ff ff ff"), V5), Ok(None));
    assert_eq!(dec(&hex("30 ff ff ff 7f"), V5), Ok(None));
}

#[test]
fn incomplete_input_consumes_nothing() {
    let full = hex(MOSQ_V5_CONNECT);
    for n in 0..full.len() {
        let mut b = BytesMut::from(&full[..n]);
        assert_eq!(decode(&mut b, None, usize::MAX), Ok(None));
        assert_eq!(b.len(), n);
    }
}

// ---- validation ---------------------------------------------------------------------------

fn connect_bytes(level: u8, flags: u8, rest: &[u8]) -> Vec<u8> {
    let mut body = vec![0, 4, b'M', b'Q', b'T', b'T', level, flags, 0, 60];
    if level == 5 {
        body.push(0);
    }
    body.extend_from_slice(rest);
    let mut out = vec![0x10, body.len() as u8];
    out.extend(body);
    out
}

fn protocol(e: DecodeError) {
    assert!(matches!(e, DecodeError::Protocol(_)), "{e:?}");
    assert_eq!(e.reason_code(), reason::PROTOCOL_ERROR);
}

fn malformed(e: DecodeError) {
    assert!(matches!(e, DecodeError::Malformed(_)), "{e:?}");
    assert_eq!(e.reason_code(), reason::MALFORMED_PACKET);
}

#[test]
fn connect_first_and_only_once() {
    protocol(err(&hex("c000"), None));
    protocol(err(&hex("30 0b"), None));
    protocol(err(&hex(MOSQ_V3_CONNECT), V3));
    protocol(err(&hex(MOSQ_V5_CONNECT), V5));
    malformed(err(&hex("1100"), None));
}

#[test]
fn unsupported_protocols() {
    let e = err(&connect_bytes(6, 2, &[0, 0]), None);
    assert_eq!(e, DecodeError::UnsupportedProtocol(6));
    assert_eq!(e.reason_code(), reason::UNSUPPORTED_PROTOCOL_VERSION);
    assert_eq!(
        err(&connect_bytes(3, 2, &[0, 0]), None),
        DecodeError::UnsupportedProtocol(3)
    );
    let mqisdp4 = [
        &[0x10, 15, 0, 6][..],
        b"MQIsdp",
        &[4, 0x02, 0, 10, 0, 1, b'c'],
    ]
    .concat();
    assert_eq!(err(&mqisdp4, None), DecodeError::UnsupportedProtocol(4));
    let other = [&[0x10, 10, 0, 3][..], b"ABC", &[4, 0x02, 0, 10, 0, 0]].concat();
    assert_eq!(err(&other, None), DecodeError::UnsupportedProtocol(4));
    assert_eq!(peek_connect_level(&mqisdp4), Some(4));
    assert_eq!(peek_connect_level(&hex(MOSQ_V5_CONNECT)), Some(5));
    assert_eq!(peek_connect_level(&hex(MOSQ_V5_CONNECT)[..8]), None);
    assert_eq!(peek_connect_level(&hex("c000")), None);
}

#[test]
fn connect_flags() {
    for level in [4, 5] {
        // Reserved bit.
        malformed(err(&connect_bytes(level, 0x03, &[0, 0]), None));
        // Will QoS / retain without the will flag; will QoS 3.
        malformed(err(&connect_bytes(level, 0x0A, &[0, 0]), None));
        malformed(err(&connect_bytes(level, 0x22, &[0, 0]), None));
        let will = if level == 5 {
            &[0, 0, 0, 0, 1, b't', 0, 0][..]
        } else {
            &[0, 0, 0, 1, b't', 0, 0][..]
        };
        malformed(err(&connect_bytes(level, 0x1E, will), None));
        assert!(one(&connect_bytes(level, 0x16, will), None) != Packet::PingReq);
        // Wildcards or emptiness in the will topic.
        let bad = if level == 5 {
            &[0, 0, 0, 0, 1, b'#', 0, 0][..]
        } else {
            &[0, 0, 0, 1, b'+', 0, 0][..]
        };
        assert!(matches!(
            err(&connect_bytes(level, 0x06, bad), None),
            DecodeError::TopicInvalid(_)
        ));
        let empty = if level == 5 {
            &[0, 0, 0, 0, 0, 0, 0][..]
        } else {
            &[0, 0, 0, 0, 0, 0][..]
        };
        assert!(matches!(
            err(&connect_bytes(level, 0x06, empty), None),
            DecodeError::TopicInvalid(_)
        ));
        // Trailing bytes.
        malformed(err(&connect_bytes(level, 0x02, &[0, 0, 9]), None));
        // Truncated.
        malformed(err(&connect_bytes(level, 0xC2, &[0, 0, 0, 1, b'u']), None));
    }
    // Password without user name: malformed in 3.1.1, allowed in 5.
    malformed(err(&connect_bytes(4, 0x42, &[0, 0, 0, 2, 1, 2]), None));
    let Packet::Connect(c) = one(&connect_bytes(5, 0x42, &[0, 0, 0, 2, 1, 2]), None) else {
        panic!()
    };
    assert_eq!(
        (c.username, c.password.as_deref()),
        (None, Some(&[1, 2][..]))
    );
}

#[test]
fn strings_must_be_valid_utf8_without_nul() {
    malformed(err(&connect_bytes(4, 2, &[0, 2, 0xC3, 0x28]), None));
    malformed(err(&connect_bytes(4, 2, &[0, 3, b'a', 0, b'b']), None));
    // Encoded surrogate half U+D800.
    malformed(err(&connect_bytes(4, 2, &[0, 3, 0xED, 0xA0, 0x80]), None));
    malformed(err(&hex("3005 0003 610062"), V3));
    malformed(err(&hex("a205 0001 0001 00"), V5));
}

#[test]
fn fixed_header_flags() {
    malformed(err(&hex("0000"), V5));
    malformed(err(&hex("2100"), V5));
    malformed(err(&hex("4102 0001"), V5));
    malformed(err(&hex("6002 0001"), V5)); // PUBREL needs 0010
    malformed(err(&hex("8006 0001 0001 61 00"), V3)); // SUBSCRIBE needs 0010
    malformed(err(&hex("a005 0001 0001 61"), V3)); // UNSUBSCRIBE needs 0010
    malformed(err(&hex("c100"), V3));
    malformed(err(&hex("e800"), V5));
    malformed(err(&hex("f100"), V5));
    // QoS 3.
    malformed(err(&hex("3605 0001 61 0001"), V3));
    malformed(err(&hex("3605 0001 61 0001"), V5));
    // DUP on QoS 0: protocol error in 5, malformed in 3.1.1.
    protocol(err(&hex("3803 0001 61"), V5));
    malformed(err(&hex("3803 0001 61"), V3));
}

#[test]
fn packet_ids_must_be_non_zero() {
    malformed(err(&hex("3205 0001 61 0000"), V3));
    malformed(err(&hex("4002 0000"), V5));
    malformed(err(&hex("6202 0000"), V3));
    malformed(err(&hex("8206 0000 0001 61 00"), V3));
    malformed(err(&hex("a205 0000 0001 61"), V3));
}

#[test]
fn publish_topics() {
    for v in [V3, V5] {
        let e = err(&hex("3003 0001 2b"), v);
        assert!(matches!(e, DecodeError::TopicInvalid(_)));
        assert_eq!(e.reason_code(), reason::TOPIC_NAME_INVALID);
        assert!(matches!(
            err(&hex("3005 0003 612f23"), v),
            DecodeError::TopicInvalid(_)
        ));
    }
    assert!(matches!(
        err(&hex("3002 0000"), V3),
        DecodeError::TopicInvalid(_)
    ));
    // v5: empty topic only together with a Topic Alias.
    protocol(err(&hex("3003 0000 00"), V5));
    let Packet::Publish(p) = canonical(&hex("3006 0000 03 230001"), V5) else {
        panic!()
    };
    assert_eq!((p.topic.as_str(), p.properties.topic_alias), ("", Some(1)));
}

#[test]
fn subscribe_validation() {
    for v in [V3, V5] {
        // No filters.
        protocol(err(
            &hex(if v == V3 { "8202 0001" } else { "8203 0001 00" }),
            v,
        ));
        // Requested QoS 3.
        let q3 = if v == V3 {
            "8206 0001 0001 61 03"
        } else {
            "8207 0001 00 0001 61 03"
        };
        malformed(err(&hex(q3), v));
        // Truncated options.
        malformed(err(
            &hex(if v == V3 {
                "8205 0001 0001 61"
            } else {
                "8206 0001 00 0001 61"
            }),
            v,
        ));
        // No filters in UNSUBSCRIBE.
        protocol(err(
            &hex(if v == V3 { "a202 0001" } else { "a203 0001 00" }),
            v,
        ));
    }
    // 3.1.1: upper six bits of the requested QoS byte.
    malformed(err(&hex("8206 0001 0001 61 04"), V3));
    // 5: reserved bits, retain handling 3, No Local on a shared subscription.
    malformed(err(&hex("8207 0001 00 0001 61 40"), V5));
    protocol(err(&hex("8207 0001 00 0001 61 30"), V5));
    let shared = [&hex("8211 0001 00 000b")[..], b"$share/g/a/", &[0x04]].concat();
    protocol(err(&shared, V5));
    // Subscription identifier 0 and a second one.
    protocol(err(&hex("8209 0001 02 0b00 0001 61 00"), V5));
    protocol(err(&hex("820b 0001 04 0b01 0b02 0001 61 00"), V5));
    // Filters are not validated by the codec: the SUBACK reports each one.
    assert!(one(&hex("8209 0001 00 0003 232f61 00"), V5) != Packet::PingReq);
}

#[test]
fn property_rules() {
    // Topic Alias in CONNECT: not allowed there (malformed).
    malformed(err(&connect_bytes_props(&[0x23, 0, 1]), None));
    // Unknown identifier.
    malformed(err(&connect_bytes_props(&[0x7f, 0]), None));
    malformed(err(&connect_bytes_props(&[0x80, 0]), None));
    // Duplicate once-only property: protocol error.
    protocol(err(
        &connect_bytes_props(&[0x11, 0, 0, 0, 1, 0x11, 0, 0, 0, 2]),
        None,
    ));
    // User properties repeat freely.
    let two = [0x26, 0, 1, b'a', 0, 0, 0x26, 0, 1, b'a', 0, 0];
    let Packet::Connect(c) = one(&connect_bytes_props(&two), None) else {
        panic!()
    };
    assert_eq!(c.properties.user_properties.len(), 2);
    // Value constraints.
    protocol(err(&connect_bytes_props(&[0x21, 0, 0]), None)); // Receive Maximum 0
    protocol(err(&connect_bytes_props(&[0x27, 0, 0, 0, 0]), None)); // Maximum Packet Size 0
    protocol(err(&connect_bytes_props(&[0x17, 2]), None)); // Request Problem Information 2
    protocol(err(&connect_bytes_props(&[0x19, 2]), None)); // Request Response Information 2
    protocol(err(&connect_bytes_props(&[0x16, 0, 0]), None)); // auth data without method
    // Property section overrunning the packet, or a property overrunning the section.
    malformed(err(&hex("4004 0001 00 05"), V5));
    malformed(err(&hex("4007 0001 00 02 1f 0001 61"), V5));
    // Reason String in PUBACK fine; Topic Alias in PUBACK not.
    malformed(err(&hex("4007 0001 00 03 230001"), V5));
    // Topic Alias 0.
    protocol(err(&hex("3007 0001 61 03 230000"), V5));
    // Duplicate Topic Alias in PUBLISH.
    protocol(err(&hex("300a 0001 61 06 230001 230002"), V5));
    // Will properties: Topic Alias is not a will property.
    let will = [0u8, 0, 3, 0x23, 0, 1, 0, 1, b't', 0, 0];
    malformed(err(&connect_bytes(5, 0x06, &will), None));
    // CONNACK: Maximum QoS 2 is a protocol error; Session Expiry is allowed.
    protocol(err(&hex("2005 0000 02 2402"), V5));
    // DISCONNECT: Topic Alias not allowed.
    malformed(err(&hex("e005 00 03 230001"), V5));
    // AUTH: Session Expiry not allowed.
    malformed(err(&hex("f007 00 05 1100000001"), V5));
    // UNSUBSCRIBE: only user properties.
    malformed(err(&hex("a208 0001 02 1f00 0001 61"), V5));
}

fn connect_bytes_props(props: &[u8]) -> Vec<u8> {
    let mut body = vec![0, 4, b'M', b'Q', b'T', b'T', 5, 2, 0, 60, props.len() as u8];
    body.extend_from_slice(props);
    body.extend_from_slice(&[0, 0]);
    let mut out = vec![0x10, body.len() as u8];
    out.extend(body);
    out
}

// ---- encoding -----------------------------------------------------------------------------

#[test]
fn encode_refuses_overlong_strings_and_appends_nothing() {
    let p = Packet::Publish(Publish {
        topic: "a".repeat(70_000),
        ..Default::default()
    });
    let mut b = BytesMut::from(&b"xyz"[..]);
    assert_eq!(
        encode(&p, ProtocolVersion::V5, &mut b),
        Err(EncodeError::TooLarge(70_000))
    );
    assert_eq!(&b[..], b"xyz");
    let p = Packet::Publish(Publish {
        topic: "a".into(),
        payload: Bytes::from(vec![0u8; MAX_REMAINING_LENGTH]),
        ..Default::default()
    });
    assert!(matches!(
        encode(&p, ProtocolVersion::V311, &mut b),
        Err(EncodeError::TooLarge(_))
    ));
    assert_eq!(&b[..], b"xyz");
}

#[test]
fn encode_short_forms() {
    let v5 = ProtocolVersion::V5;
    let ack = |reason, reason_string: Option<&str>| {
        Packet::PubAck(PubResp {
            packet_id: 7,
            reason,
            properties: AckProperties {
                reason_string: reason_string.map(Into::into),
                ..Default::default()
            },
        })
    };
    assert_eq!(enc(&ack(0, None), v5), hex("4002 0007"));
    assert_eq!(enc(&ack(0x10, None), v5), hex("4003 0007 10"));
    assert_eq!(enc(&ack(0, Some("r")), v5), hex("4008 0007 00 04 1f000172"));
    assert_eq!(
        enc(&ack(0x10, Some("r")), ProtocolVersion::V311),
        hex("4002 0007")
    );
    let d = |reason| {
        Packet::Disconnect(Disconnect {
            reason,
            ..Default::default()
        })
    };
    assert_eq!(enc(&d(0), v5), hex("e000"));
    assert_eq!(enc(&d(0x8e), v5), hex("e001 8e"));
    assert_eq!(
        enc(
            &Packet::Auth(Auth {
                reason: 0x18,
                ..Default::default()
            }),
            v5
        ),
        hex("f002 1800")
    );
    // Large remaining lengths take several bytes.
    let p = Packet::Publish(Publish {
        topic: "t".into(),
        payload: Bytes::from(vec![1; 200]),
        ..Default::default()
    });
    let b = enc(&p, v5);
    assert_eq!(&b[..3], &[0x30, 0xCC, 0x01]);
    assert_eq!(one(&b, V5), p);
    // DUP is never written for QoS 0.
    let p = Packet::Publish(Publish {
        dup: true,
        topic: "t".into(),
        ..Default::default()
    });
    assert_eq!(enc(&p, v5)[0], 0x30);
}

#[test]
fn connect_encodes_for_the_requested_version() {
    let c = Connect {
        protocol: ProtocolVersion::V311,
        client_id: "c".into(),
        ..Default::default()
    };
    let b = enc(&Packet::Connect(Box::new(c.clone())), ProtocolVersion::V31);
    assert_eq!(&b[2..10], &[0, 6, b'M', b'Q', b'I', b's', b'd', b'p']);
    let Packet::Connect(back) = one(&b, None) else {
        panic!()
    };
    assert_eq!(
        *back,
        Connect {
            protocol: ProtocolVersion::V31,
            ..c
        }
    );
}

#[test]
fn publish_subscription_identifiers() {
    // Several identifiers in a PUBLISH to a client are fine; 0 is a protocol error; a
    // five-byte identifier is malformed.
    let Packet::Publish(p) = one(&hex("3008 0001 61 04 0b01 0b02"), V5) else {
        panic!()
    };
    assert_eq!(p.properties.subscription_identifiers, vec![1, 2]);
    protocol(err(&hex("3006 0001 61 02 0b00"), V5));
    malformed(err(&hex("300a 0001 61 06 0b ffffffff7f"), V5));
    // The largest one (268,435,455) round-trips; one more cannot be encoded.
    let Packet::Publish(mut p) = one(&hex("3009 0001 61 05 0b ffffff7f"), V5) else {
        panic!()
    };
    assert_eq!(p.properties.subscription_identifiers, vec![268_435_455]);
    p.properties.subscription_identifiers = vec![268_435_456];
    let mut b = BytesMut::new();
    assert!(encode(&Packet::Publish(p), ProtocolVersion::V5, &mut b).is_err());
    assert!(b.is_empty());
}

#[test]
fn v5_connect_with_every_property() {
    let c = Connect {
        protocol: ProtocolVersion::V5,
        clean_start: false,
        keep_alive: 0,
        client_id: "ünïcode".into(),
        will: Some(LastWill {
            topic: "w/t".into(),
            payload: Bytes::from_static(&[0, 1, 2]),
            qos: QoS::ExactlyOnce,
            retain: false,
            properties: WillProperties {
                will_delay_interval: Some(5),
                payload_format_indicator: Some(1),
                message_expiry_interval: Some(60),
                content_type: Some("text/plain".into()),
                response_topic: Some("resp".into()),
                correlation_data: Some(Bytes::from_static(b"cd")),
                user_properties: vec![("k".into(), "v".into()), ("k".into(), "v2".into())],
            },
        }),
        username: Some("u".into()),
        password: Some(Bytes::from_static(b"p")),
        properties: ConnectProperties {
            session_expiry_interval: Some(u32::MAX),
            receive_maximum: Some(10),
            maximum_packet_size: Some(1 << 20),
            topic_alias_maximum: Some(8),
            request_response_information: Some(1),
            request_problem_information: Some(0),
            user_properties: vec![("a".into(), "b".into())],
            authentication_method: Some("SCRAM-SHA-1".into()),
            authentication_data: Some(Bytes::from_static(b"client-first")),
        },
    };
    let p = Packet::Connect(Box::new(c));
    let wire = enc(&p, ProtocolVersion::V5);
    assert_eq!(one(&wire, None), p);
    assert_eq!(incremental(&wire, None), p);
    // Level 5 (after a two-byte remaining length); user name, password, will QoS 2, will flag.
    assert_eq!((wire[9], wire[10]), (5, 0xC0 | 0x10 | 0x04));
}

#[test]
fn reason_codes_of_errors() {
    assert_eq!(DecodeError::Malformed("x").reason_code(), 0x81);
    assert_eq!(DecodeError::Protocol("x").reason_code(), 0x82);
    assert_eq!(DecodeError::UnsupportedProtocol(9).reason_code(), 0x84);
    assert_eq!(DecodeError::TopicInvalid("x").reason_code(), 0x90);
    assert_eq!(
        DecodeError::TooLarge { size: 2, max: 1 }.reason_code(),
        0x95
    );
}
