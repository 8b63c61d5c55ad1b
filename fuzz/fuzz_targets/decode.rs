//! Arbitrary bytes into `decode` for every connection state. Each packet that decodes must
//! re-encode (with `encoded_len` exact), decode again to an equal packet, and must not be
//! produced from any strict prefix of its bytes.

#![no_main]

use bytes::BytesMut;
use ferrocore_mqtt::{Packet, ProtocolVersion, decode, encode, encoded_len};
use libfuzzer_sys::fuzz_target;

const MAX: usize = 1 << 20;

fuzz_target!(|data: &[u8]| {
    let states = [None, Some(ProtocolVersion::V311), Some(ProtocolVersion::V5), Some(ProtocolVersion::V31)];
    for start in states {
        let mut version = start;
        let mut buf = BytesMut::from(data);
        loop {
            let before = buf.clone();
            match decode(&mut buf, version, MAX) {
                Ok(Some(packet)) => {
                    let used = before.len() - buf.len();
                    check(&packet, version, &before[..used]);
                    if let (None, Packet::Connect(c)) = (version, &packet) {
                        version = Some(c.protocol);
                    }
                }
                Ok(None) => {
                    assert_eq!(buf.len(), before.len(), "Ok(None) consumed input");
                    break;
                }
                Err(_) => break,
            }
        }
    }
});

fn check(packet: &Packet, state: Option<ProtocolVersion>, wire: &[u8]) {
    let version = match (state, packet) {
        (Some(v), _) => v,
        (None, Packet::Connect(c)) => c.protocol,
        (None, other) => panic!("decoded {other:?} before CONNECT"),
    };
    let mut out = BytesMut::new();
    encode(packet, version, &mut out).expect("a decoded packet re-encodes");
    assert_eq!(out.len(), encoded_len(packet, version), "encoded_len of {packet:?}");
    let mut again = out.clone();
    let back = decode(&mut again, state, MAX)
        .expect("re-encoded packet decodes")
        .expect("re-encoded packet is complete");
    assert!(again.is_empty(), "re-encoded packet left bytes over");
    assert_eq!(&back, packet);
    // No strict prefix of a decodable packet yields a packet.
    for n in [0, 1, wire.len() / 2, wire.len().saturating_sub(1)] {
        if n < wire.len() {
            let mut partial = BytesMut::from(&wire[..n]);
            assert_eq!(decode(&mut partial, state, MAX), Ok(None), "prefix of {n} bytes");
        }
    }
}
