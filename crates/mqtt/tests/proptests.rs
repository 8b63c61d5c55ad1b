//! Property tests: well-formed packets round-trip through encode → decode for both protocol
//! versions with `encoded_len` exact; decoding arbitrary bytes never panics; topic matching
//! agrees with an independent matcher.

#![allow(clippy::unwrap_used)]

use bytes::{Bytes, BytesMut};
use ferrocore_mqtt::topic::{
    TopicLimits, has_wildcards, matches, validate_topic_filter, validate_topic_name,
};
use ferrocore_mqtt::*;
use proptest::collection::vec;
use proptest::option::of;
use proptest::prelude::*;

// ---- strategies -----------------------------------------------------------------------------

fn text() -> impl Strategy<Value = String> {
    // Any printable Unicode (no U+0000), sometimes long enough for two-byte lengths.
    prop_oneof![4 => "\\PC{0,12}", 1 => "[a-z]{100,300}"]
}

fn topic_name() -> impl Strategy<Value = String> {
    "[a-z0-9$é/ _-]{1,24}"
}

fn topic_filter() -> impl Strategy<Value = String> {
    "[a-z0-9$/+#]{1,24}".prop_filter("no $share/", |f| !f.starts_with("$share/"))
}

fn binary() -> impl Strategy<Value = Bytes> {
    vec(any::<u8>(), 0..40).prop_map(Bytes::from)
}

fn payload() -> impl Strategy<Value = Bytes> {
    prop_oneof![8 => vec(any::<u8>(), 0..64), 1 => vec(any::<u8>(), 100..20_000)]
        .prop_map(Bytes::from)
}

fn user_props() -> impl Strategy<Value = UserProperties> {
    vec((text(), text()), 0..3)
}

fn qos() -> impl Strategy<Value = QoS> {
    prop_oneof![
        Just(QoS::AtMostOnce),
        Just(QoS::AtLeastOnce),
        Just(QoS::ExactlyOnce)
    ]
}

fn flag01() -> impl Strategy<Value = Option<u8>> {
    of(0u8..=1)
}

fn pid() -> impl Strategy<Value = u16> {
    1u16..
}

fn sub_id() -> impl Strategy<Value = u32> {
    prop_oneof![1u32..200, 1u32..=268_435_455]
}

fn ack_props() -> impl Strategy<Value = AckProperties> {
    (of(text()), user_props()).prop_map(|(reason_string, user_properties)| AckProperties {
        reason_string,
        user_properties,
    })
}

fn will() -> impl Strategy<Value = LastWill> {
    let props = (
        of(any::<u32>()),
        of(any::<u8>()),
        of(any::<u32>()),
        of(text()),
        of(topic_name()),
        of(binary()),
        user_props(),
    )
        .prop_map(|(a, b, c, d, e, f, g)| WillProperties {
            will_delay_interval: a,
            payload_format_indicator: b,
            message_expiry_interval: c,
            content_type: d,
            response_topic: e,
            correlation_data: f,
            user_properties: g,
        });
    (topic_name(), binary(), qos(), any::<bool>(), props).prop_map(
        |(topic, payload, qos, retain, properties)| LastWill {
            topic,
            payload,
            qos,
            retain,
            properties,
        },
    )
}

fn connect() -> impl Strategy<Value = Packet> {
    let props = (
        of(any::<u32>()),
        of(1u16..),
        of(1u32..),
        of(any::<u16>()),
        flag01(),
        flag01(),
        user_props(),
        of((text(), of(binary()))),
    )
        .prop_map(|(a, b, c, d, e, f, g, auth)| ConnectProperties {
            session_expiry_interval: a,
            receive_maximum: b,
            maximum_packet_size: c,
            topic_alias_maximum: d,
            request_response_information: e,
            request_problem_information: f,
            user_properties: g,
            authentication_method: auth.as_ref().map(|(m, _)| m.clone()),
            authentication_data: auth.and_then(|(_, d)| d),
        });
    (
        any::<bool>(),
        any::<u16>(),
        text(),
        of(will()),
        of(text()),
        of(binary()),
        props,
    )
        .prop_map(
            |(clean_start, keep_alive, client_id, will, username, password, properties)| {
                Packet::Connect(Box::new(Connect {
                    protocol: ProtocolVersion::V5,
                    clean_start,
                    keep_alive,
                    client_id,
                    will,
                    username,
                    password,
                    properties,
                }))
            },
        )
}

fn connack() -> impl Strategy<Value = Packet> {
    let a = (
        of(any::<u32>()),
        of(1u16..),
        flag01(),
        flag01(),
        of(1u32..),
        of(text()),
        of(any::<u16>()),
        of(text()),
    );
    let b = (
        user_props(),
        flag01(),
        flag01(),
        flag01(),
        of(any::<u16>()),
        of(text()),
        of(text()),
        of(text()),
        of(binary()),
    );
    (any::<bool>(), any::<u8>(), a, b).prop_map(|(session_present, code, a, b)| {
        Packet::ConnAck(ConnAck {
            session_present,
            code,
            properties: ConnAckProperties {
                session_expiry_interval: a.0,
                receive_maximum: a.1,
                maximum_qos: a.2,
                retain_available: a.3,
                maximum_packet_size: a.4,
                assigned_client_identifier: a.5,
                topic_alias_maximum: a.6,
                reason_string: a.7,
                user_properties: b.0,
                wildcard_subscription_available: b.1,
                subscription_identifier_available: b.2,
                shared_subscription_available: b.3,
                server_keep_alive: b.4,
                response_information: b.5,
                server_reference: b.6,
                authentication_method: b.7,
                authentication_data: b.8,
            },
        })
    })
}

fn publish() -> impl Strategy<Value = Packet> {
    let props = (
        of(any::<u8>()),
        of(any::<u32>()),
        of(1u16..),
        of(topic_name()),
        of(binary()),
        user_props(),
        vec(sub_id(), 0..3),
        of(text()),
    )
        .prop_map(|(a, b, c, d, e, f, g, h)| PublishProperties {
            payload_format_indicator: a,
            message_expiry_interval: b,
            topic_alias: c,
            response_topic: d,
            correlation_data: e,
            user_properties: f,
            subscription_identifiers: g,
            content_type: h,
        });
    (
        any::<bool>(),
        qos(),
        any::<bool>(),
        prop_oneof![5 => topic_name(), 1 => Just(String::new())],
        pid(),
        payload(),
        props,
    )
        .prop_map(
            |(dup, qos, retain, topic, packet_id, payload, mut properties)| {
                if topic.is_empty() && properties.topic_alias.is_none() {
                    properties.topic_alias = Some(1);
                }
                let (dup, packet_id) = if qos == QoS::AtMostOnce {
                    (false, 0)
                } else {
                    (dup, packet_id)
                };
                Packet::Publish(Publish {
                    dup,
                    qos,
                    retain,
                    topic,
                    packet_id,
                    payload,
                    properties,
                })
            },
        )
}

fn pub_resp() -> impl Strategy<Value = Packet> {
    (
        0..4u8,
        pid(),
        prop_oneof![Just(0u8), any::<u8>()],
        ack_props(),
    )
        .prop_map(|(kind, packet_id, reason, properties)| {
            let r = PubResp {
                packet_id,
                reason,
                properties,
            };
            match kind {
                0 => Packet::PubAck(r),
                1 => Packet::PubRec(r),
                2 => Packet::PubRel(r),
                _ => Packet::PubComp(r),
            }
        })
}

fn subscribe() -> impl Strategy<Value = Packet> {
    let opts = (qos(), any::<bool>(), any::<bool>(), 0u8..=2).prop_map(
        |(qos, no_local, retain_as_published, retain_handling)| SubscriptionOptions {
            qos,
            no_local,
            retain_as_published,
            retain_handling,
        },
    );
    let props =
        (of(sub_id()), user_props()).prop_map(|(subscription_identifier, user_properties)| {
            SubscribeProperties {
                subscription_identifier,
                user_properties,
            }
        });
    (pid(), vec((topic_filter(), opts), 1..5), props).prop_map(
        |(packet_id, filters, properties)| {
            Packet::Subscribe(Subscribe {
                packet_id,
                filters,
                properties,
            })
        },
    )
}

fn others() -> impl Strategy<Value = Packet> {
    prop_oneof![
        (any::<u16>(), vec(any::<u8>(), 0..5), ack_props()).prop_map(
            |(packet_id, reasons, properties)| Packet::SubAck(SubAck {
                packet_id,
                reasons,
                properties
            })
        ),
        (pid(), vec(topic_filter(), 1..4), user_props()).prop_map(
            |(packet_id, filters, user_properties)| {
                Packet::Unsubscribe(Unsubscribe {
                    packet_id,
                    filters,
                    user_properties,
                })
            }
        ),
        (any::<u16>(), vec(any::<u8>(), 0..5), ack_props()).prop_map(
            |(packet_id, reasons, properties)| Packet::UnsubAck(UnsubAck {
                packet_id,
                reasons,
                properties
            })
        ),
        Just(Packet::PingReq),
        Just(Packet::PingResp),
        (
            prop_oneof![Just(0u8), any::<u8>()],
            of(any::<u32>()),
            of(text()),
            user_props(),
            of(text())
        )
            .prop_map(
                |(
                    reason,
                    session_expiry_interval,
                    reason_string,
                    user_properties,
                    server_reference,
                )| {
                    Packet::Disconnect(Disconnect {
                        reason,
                        properties: DisconnectProperties {
                            session_expiry_interval,
                            reason_string,
                            user_properties,
                            server_reference,
                        },
                    })
                }
            ),
        (
            prop_oneof![Just(0u8), Just(0x18), Just(0x19)],
            of(text()),
            of(binary()),
            of(text()),
            user_props()
        )
            .prop_map(
                |(
                    reason,
                    authentication_method,
                    authentication_data,
                    reason_string,
                    user_properties,
                )| {
                    Packet::Auth(Auth {
                        reason,
                        properties: AuthProperties {
                            authentication_method,
                            authentication_data,
                            reason_string,
                            user_properties,
                        },
                    })
                }
            ),
    ]
}

/// A packet valid for MQTT 5 (CONNECT excluded: it is decoded before the version is known).
fn packet_v5() -> impl Strategy<Value = Packet> {
    prop_oneof![connack(), publish(), pub_resp(), subscribe(), others()]
}

/// Clears what 3.1.1 cannot carry, so the packet is what a 3.1.1 decode yields.
fn to_v3(p: Packet) -> Option<Packet> {
    Some(match p {
        Packet::Connect(mut c) => {
            c.protocol = ProtocolVersion::V311;
            c.properties = ConnectProperties::default();
            if let Some(w) = &mut c.will {
                w.properties = WillProperties::default();
            }
            if c.password.is_some() && c.username.is_none() {
                c.username = Some(String::new());
            }
            Packet::Connect(c)
        }
        Packet::ConnAck(c) => Packet::ConnAck(ConnAck {
            properties: ConnAckProperties::default(),
            ..c
        }),
        Packet::Publish(p) if p.topic.is_empty() => return None,
        Packet::Publish(p) => Packet::Publish(Publish {
            properties: PublishProperties::default(),
            ..p
        }),
        Packet::PubAck(r) => Packet::PubAck(PubResp {
            packet_id: r.packet_id,
            ..PubResp::default()
        }),
        Packet::PubRec(r) => Packet::PubRec(PubResp {
            packet_id: r.packet_id,
            ..PubResp::default()
        }),
        Packet::PubRel(r) => Packet::PubRel(PubResp {
            packet_id: r.packet_id,
            ..PubResp::default()
        }),
        Packet::PubComp(r) => Packet::PubComp(PubResp {
            packet_id: r.packet_id,
            ..PubResp::default()
        }),
        Packet::Subscribe(s) => Packet::Subscribe(Subscribe {
            packet_id: s.packet_id,
            filters: s
                .filters
                .into_iter()
                .map(|(f, o)| {
                    (
                        f,
                        SubscriptionOptions {
                            qos: o.qos,
                            ..SubscriptionOptions::default()
                        },
                    )
                })
                .collect(),
            properties: SubscribeProperties::default(),
        }),
        Packet::SubAck(s) => Packet::SubAck(SubAck {
            properties: AckProperties::default(),
            ..s
        }),
        Packet::Unsubscribe(u) => Packet::Unsubscribe(Unsubscribe {
            user_properties: Vec::new(),
            ..u
        }),
        Packet::UnsubAck(u) => Packet::UnsubAck(UnsubAck {
            packet_id: u.packet_id,
            ..UnsubAck::default()
        }),
        Packet::Disconnect(_) => Packet::Disconnect(Disconnect::default()),
        Packet::Auth(_) => return None,
        p @ (Packet::PingReq | Packet::PingResp) => p,
    })
}

// ---- helpers --------------------------------------------------------------------------------

fn encode_checked(p: &Packet, v: ProtocolVersion) -> BytesMut {
    let mut buf = BytesMut::from(&b"prefix"[..]);
    encode(p, v, &mut buf).unwrap();
    assert_eq!(buf.len() - 6, encoded_len(p, v), "encoded_len of {p:?}");
    let _ = buf.split_to(6);
    buf
}

fn decode_all(mut buf: BytesMut, state: Option<ProtocolVersion>) -> Packet {
    let p = decode(&mut buf, state, usize::MAX).unwrap().unwrap();
    assert!(buf.is_empty(), "{} bytes left", buf.len());
    p
}

/// Feeds `wire` in chunks of the given sizes; the packet must appear only at the end.
fn decode_chunked(wire: &[u8], state: Option<ProtocolVersion>, chunks: &[usize]) -> Packet {
    let mut buf = BytesMut::new();
    let mut rest = wire;
    let mut sizes = chunks.iter().cycle();
    while !rest.is_empty() {
        assert_eq!(decode(&mut buf, state, usize::MAX), Ok(None));
        let n = (*sizes.next().unwrap()).clamp(1, rest.len());
        buf.extend_from_slice(&rest[..n]);
        rest = &rest[n..];
    }
    decode_all(buf, state)
}

fn limits() -> TopicLimits {
    TopicLimits {
        max_length: usize::MAX,
        max_slashes: usize::MAX,
    }
}

/// An independent matcher: recursive over level slices.
fn naive(filter: &[&str], topic: &[&str], first: bool) -> bool {
    match (filter.split_first(), topic.split_first()) {
        (Some((&"#", _)), t) => !(first && t.is_some_and(|(l, _)| l.starts_with('$'))),
        (Some((&"+", f)), Some((l, t))) => !(first && l.starts_with('$')) && naive(f, t, false),
        (Some((fl, f)), Some((tl, t))) => fl == tl && naive(f, t, false),
        (None, None) => true,
        _ => false,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn v5_round_trip(p in packet_v5(), chunks in vec(1usize..64, 1..4)) {
        let v = ProtocolVersion::V5;
        let wire = encode_checked(&p, v);
        prop_assert_eq!(&decode_all(wire.clone(), Some(v)), &p);
        prop_assert_eq!(decode_chunked(&wire, Some(v), &chunks), p);
    }

    #[test]
    fn v311_round_trip(p in packet_v5(), chunks in vec(1usize..64, 1..4)) {
        for v in [ProtocolVersion::V311, ProtocolVersion::V31] {
            // Dropping v5-only fields on encode gives exactly the 3.1.1 view of the packet.
            let Some(p3) = to_v3(p.clone()) else {
                if matches!(p, Packet::Auth(_)) {
                    prop_assert_eq!(encode(&p, v, &mut BytesMut::new()), Err(EncodeError::NotInVersion("AUTH")));
                }
                continue;
            };
            let full = encode_checked(&p, v);
            prop_assert_eq!(&full, &encode_checked(&p3, v));
            prop_assert_eq!(&decode_all(full.clone(), Some(v)), &p3);
            prop_assert_eq!(decode_chunked(&full, Some(v), &chunks), p3);
        }
    }

    #[test]
    fn connect_round_trip(p in connect(), chunks in vec(1usize..64, 1..4)) {
        let wire = encode_checked(&p, ProtocolVersion::V5);
        prop_assert_eq!(&decode_all(wire.clone(), None), &p);
        prop_assert_eq!(&decode_chunked(&wire, None, &chunks), &p);
        for v in [ProtocolVersion::V311, ProtocolVersion::V31] {
            let Some(Packet::Connect(mut c3)) = to_v3(p.clone()) else { unreachable!() };
            c3.protocol = v;
            let p3 = Packet::Connect(c3);
            let wire = encode_checked(&p3, v);
            prop_assert_eq!(decode_all(wire, None), p3);
        }
    }

    #[test]
    fn decode_arbitrary_bytes_never_panics(data in vec(any::<u8>(), 0..300), max in 0usize..400) {
        for state in [None, Some(ProtocolVersion::V311), Some(ProtocolVersion::V5), Some(ProtocolVersion::V31)] {
            let mut buf = BytesMut::from(&data[..]);
            let mut version = state;
            while let Ok(Some(p)) = decode(&mut buf, version, max) {
                if let Packet::Connect(c) = &p {
                    version = Some(c.protocol);
                }
            }
        }
    }

    #[test]
    fn decode_mutated_packets_never_panics(p in packet_v5(), flips in vec((any::<prop::sample::Index>(), any::<u8>()), 1..4)) {
        let mut wire = encode_checked(&p, ProtocolVersion::V5).to_vec();
        for (i, b) in flips {
            let i = i.index(wire.len());
            wire[i] ^= b;
        }
        for state in [Some(ProtocolVersion::V311), Some(ProtocolVersion::V5)] {
            let mut buf = BytesMut::from(&wire[..]);
            while let Ok(Some(_)) = decode(&mut buf, state, usize::MAX) {}
        }
    }

    #[test]
    fn too_large_is_reported_from_the_header(p in packet_v5(), cut in 0usize..4) {
        let wire = encode_checked(&p, ProtocolVersion::V5);
        let size = wire.len();
        // Header only (plus possibly a few body bytes): refused when the limit is one short.
        let header = 1 + ferrocore_mqtt_header_len(&wire);
        let mut buf = BytesMut::from(&wire[..(header + cut).min(size)]);
        let e = decode(&mut buf, Some(ProtocolVersion::V5), size - 1);
        prop_assert_eq!(e, Err(DecodeError::TooLarge { size, max: size - 1 }));
        // Exactly at the limit it decodes.
        let mut buf = wire.clone();
        prop_assert!(decode(&mut buf, Some(ProtocolVersion::V5), size).unwrap().is_some());
    }

    #[test]
    fn filter_matches_itself_and_wildcards(levels in vec("[a-z$]{0,3}", 1..6), i in any::<prop::sample::Index>()) {
        let topic = levels.join("/");
        prop_assert!(matches(&topic, &topic));
        let dollar = topic.starts_with('$');
        prop_assert_eq!(matches("#", &topic), !dollar);
        // Any one level replaced by `+`.
        let k = i.index(levels.len());
        let mut f = levels.clone();
        f[k] = "+".into();
        prop_assert_eq!(matches(&f.join("/"), &topic), !(k == 0 && dollar));
        // Any prefix followed by `#` (including the parent level itself).
        let prefix = levels[..k].join("/");
        let hash = if k == 0 { "#".to_owned() } else { format!("{prefix}/#") };
        prop_assert_eq!(matches(&hash, &topic), !(k == 0 && dollar));
        if k > 0 {
            let parent = format!("{prefix}/#");
            prop_assert!(matches(&parent, &prefix));
        }
    }

    #[test]
    fn matcher_agrees_with_naive(filter in vec(prop_oneof!["[ab$]{0,2}", Just("+".to_owned())], 1..5),
                                 hash in any::<bool>(),
                                 topic in vec("[ab$]{0,2}", 1..6)) {
        let mut f = filter.clone();
        if hash {
            f.push("#".into());
        }
        let fs = f.join("/");
        let ts = topic.join("/");
        prop_assert!(validate_topic_filter(&fs, &limits()).is_ok() || fs.is_empty());
        let fl: Vec<&str> = fs.split('/').collect();
        let tl: Vec<&str> = ts.split('/').collect();
        prop_assert_eq!(matches(&fs, &ts), naive(&fl, &tl, true), "{} vs {}", fs, ts);
    }

    #[test]
    fn names_and_filters(s in "[a-z/+#$]{0,12}") {
        let name = validate_topic_name(&s, &limits());
        prop_assert_eq!(name.is_ok(), !s.is_empty() && !has_wildcards(&s));
        if name.is_ok() {
            prop_assert!(validate_topic_filter(&s, &limits()).is_ok());
        }
        if validate_topic_filter(&s, &limits()).is_ok() {
            for level in s.split('/') {
                prop_assert!(!has_wildcards(level) || level == "+" || level == "#");
            }
            prop_assert!(!s.contains("#/"));
        }
    }
}

/// Bytes of the remaining-length field of an encoded packet.
fn ferrocore_mqtt_header_len(wire: &[u8]) -> usize {
    wire[1..].iter().position(|b| b & 0x80 == 0).unwrap() + 1
}
