//! PROXY protocol (HAProxy) v2 binary header and v1 text header, as sent first on a
//! connection by load balancers so that the client's address survives them.
//!
//! [`parse`] is pure: given the bytes read so far it says how many bytes it needs in total, or
//! what the header says and how long it was. [`read_header`] drives it over a stream without
//! reading past the header, so the rest of the stream (a TLS ClientHello, MQTT CONNECT) is left
//! untouched.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use tokio::io::{AsyncRead, AsyncReadExt};

/// The 12-byte signature opening a v2 header.
pub const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
/// Longest v1 header, CRLF included.
pub const V1_MAX_LEN: usize = 107;
/// Longest v2 address block (plus TLVs) accepted; the protocol allows 65535.
pub const V2_MAX_PAYLOAD: usize = 4096;
/// Bytes that may be read before knowing which version is used: the shortest v1 header is
/// `PROXY UNKNOWN\r\n` (15 bytes); a v2 header is at least 16.
const FIRST_READ: usize = 15;

/// What a complete header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxyHeader {
    /// The original client's address; `None` for a v2 LOCAL command (the proxy's own health
    /// check), UNKNOWN / unspecified or non-IP (e.g. UNIX socket) families.
    pub source: Option<SocketAddr>,
    /// The address the client connected to.
    pub destination: Option<SocketAddr>,
}

/// The result of [`parse`] on the bytes available so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parsed {
    /// The header is not complete; it is at least this many bytes long in total.
    NeedMore(usize),
    /// A complete header of `len` bytes.
    Done { header: ProxyHeader, len: usize },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProxyError {
    #[error("connection did not start with a PROXY protocol header")]
    NotProxy,
    #[error("unsupported PROXY protocol version {0}")]
    Version(u8),
    #[error("unknown PROXY protocol v2 command {0}")]
    Command(u8),
    #[error("PROXY protocol v2 address block of {0} bytes is larger than allowed")]
    TooLong(usize),
    #[error("PROXY protocol v2 address block too short for its family")]
    Truncated,
    #[error("malformed PROXY protocol v1 header")]
    V1Malformed,
    #[error("I/O error reading the PROXY protocol header: {0}")]
    Io(String),
    #[error("connection closed before the PROXY protocol header was complete")]
    Eof,
}

/// Parses the start of a connection. Never reads beyond `buf` and never panics.
pub fn parse(buf: &[u8]) -> Result<Parsed, ProxyError> {
    let probe = buf.len().min(V2_SIGNATURE.len());
    if buf[..probe] == V2_SIGNATURE[..probe] {
        if buf.len() < 16 {
            return Ok(Parsed::NeedMore(16));
        }
        return parse_v2(buf);
    }
    let probe = buf.len().min(6);
    if buf[..probe] == b"PROXY "[..probe] {
        if buf.len() < FIRST_READ {
            return Ok(Parsed::NeedMore(FIRST_READ));
        }
        return parse_v1(buf);
    }
    Err(ProxyError::NotProxy)
}

fn parse_v2(buf: &[u8]) -> Result<Parsed, ProxyError> {
    let ver_cmd = buf[12];
    let version = ver_cmd >> 4;
    if version != 2 {
        return Err(ProxyError::Version(version));
    }
    let command = ver_cmd & 0x0f;
    if command > 1 {
        return Err(ProxyError::Command(command));
    }
    let fam = buf[13];
    let len = usize::from(u16::from_be_bytes([buf[14], buf[15]]));
    if len > V2_MAX_PAYLOAD {
        return Err(ProxyError::TooLong(len));
    }
    let total = 16 + len;
    if buf.len() < total {
        return Ok(Parsed::NeedMore(total));
    }
    let body = &buf[16..total];
    if command == 0 {
        // LOCAL: the proxy speaking for itself; addresses (if any) are to be ignored.
        return Ok(Parsed::Done {
            header: ProxyHeader {
                source: None,
                destination: None,
            },
            len: total,
        });
    }
    let header = match fam >> 4 {
        // AF_INET
        1 => {
            let a = body.get(..12).ok_or(ProxyError::Truncated)?;
            let src = Ipv4Addr::new(a[0], a[1], a[2], a[3]);
            let dst = Ipv4Addr::new(a[4], a[5], a[6], a[7]);
            let sp = u16::from_be_bytes([a[8], a[9]]);
            let dp = u16::from_be_bytes([a[10], a[11]]);
            ProxyHeader {
                source: Some(SocketAddr::new(IpAddr::V4(src), sp)),
                destination: Some(SocketAddr::new(IpAddr::V4(dst), dp)),
            }
        }
        // AF_INET6
        2 => {
            let a = body.get(..36).ok_or(ProxyError::Truncated)?;
            let mut s = [0u8; 16];
            let mut d = [0u8; 16];
            s.copy_from_slice(&a[..16]);
            d.copy_from_slice(&a[16..32]);
            let sp = u16::from_be_bytes([a[32], a[33]]);
            let dp = u16::from_be_bytes([a[34], a[35]]);
            ProxyHeader {
                source: Some(SocketAddr::new(IpAddr::V6(Ipv6Addr::from(s)), sp)),
                destination: Some(SocketAddr::new(IpAddr::V6(Ipv6Addr::from(d)), dp)),
            }
        }
        // AF_UNSPEC, AF_UNIX, or anything else: keep the socket's addresses.
        _ => ProxyHeader {
            source: None,
            destination: None,
        },
    };
    Ok(Parsed::Done { header, len: total })
}

fn parse_v1(buf: &[u8]) -> Result<Parsed, ProxyError> {
    let window = &buf[..buf.len().min(V1_MAX_LEN)];
    let Some(end) = window.windows(2).position(|w| w == b"\r\n") else {
        if buf.len() >= V1_MAX_LEN {
            return Err(ProxyError::V1Malformed);
        }
        return Ok(Parsed::NeedMore(buf.len() + 1));
    };
    let line = std::str::from_utf8(&buf[..end]).map_err(|_| ProxyError::V1Malformed)?;
    let mut parts = line.split(' ');
    if parts.next() != Some("PROXY") {
        return Err(ProxyError::V1Malformed);
    }
    let len = end + 2;
    let proto = parts.next().ok_or(ProxyError::V1Malformed)?;
    if proto == "UNKNOWN" {
        return Ok(Parsed::Done {
            header: ProxyHeader {
                source: None,
                destination: None,
            },
            len,
        });
    }
    let fields: Vec<&str> = parts.collect();
    let [src, dst, sp, dp] = fields.as_slice() else {
        return Err(ProxyError::V1Malformed);
    };
    let ip = |s: &str| -> Result<IpAddr, ProxyError> {
        match proto {
            "TCP4" => s
                .parse::<Ipv4Addr>()
                .map(IpAddr::V4)
                .map_err(|_| ProxyError::V1Malformed),
            "TCP6" => s
                .parse::<Ipv6Addr>()
                .map(IpAddr::V6)
                .map_err(|_| ProxyError::V1Malformed),
            _ => Err(ProxyError::V1Malformed),
        }
    };
    let port = |s: &str| -> Result<u16, ProxyError> {
        if s.is_empty() || s.len() > 5 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ProxyError::V1Malformed);
        }
        s.parse::<u16>().map_err(|_| ProxyError::V1Malformed)
    };
    let header = ProxyHeader {
        source: Some(SocketAddr::new(ip(src)?, port(sp)?)),
        destination: Some(SocketAddr::new(ip(dst)?, port(dp)?)),
    };
    Ok(Parsed::Done { header, len })
}

/// Reads exactly one PROXY header (v1 or v2) from `stream`, nothing more.
pub async fn read_header<S: AsyncRead + Unpin>(stream: &mut S) -> Result<ProxyHeader, ProxyError> {
    let mut buf = vec![0u8; FIRST_READ];
    let mut have = 0usize;
    let mut want = FIRST_READ;
    loop {
        while have < want {
            match stream.read(&mut buf[have..want]).await {
                Ok(0) => return Err(ProxyError::Eof),
                Ok(n) => have += n,
                Err(e) => return Err(ProxyError::Io(e.to_string())),
            }
        }
        match parse(&buf[..have])? {
            Parsed::Done { header, .. } => return Ok(header),
            Parsed::NeedMore(n) => {
                want = n;
                if buf.len() < want {
                    buf.resize(want, 0);
                }
            }
        }
    }
}

/// Encodes a v2 PROXY header (for tests and tools).
pub fn encode_v2(source: SocketAddr, destination: SocketAddr, tlvs: &[u8]) -> Vec<u8> {
    let mut out = V2_SIGNATURE.to_vec();
    out.push(0x21); // version 2, PROXY
    let mut body = Vec::new();
    match (source, destination) {
        (SocketAddr::V4(s), SocketAddr::V4(d)) => {
            out.push(0x11);
            body.extend_from_slice(&s.ip().octets());
            body.extend_from_slice(&d.ip().octets());
            body.extend_from_slice(&s.port().to_be_bytes());
            body.extend_from_slice(&d.port().to_be_bytes());
        }
        (s, d) => {
            let v6 = |a: SocketAddr| match a.ip() {
                IpAddr::V4(v4) => v4.to_ipv6_mapped(),
                IpAddr::V6(v6) => v6,
            };
            out.push(0x21);
            body.extend_from_slice(&v6(s).octets());
            body.extend_from_slice(&v6(d).octets());
            body.extend_from_slice(&s.port().to_be_bytes());
            body.extend_from_slice(&d.port().to_be_bytes());
        }
    }
    body.extend_from_slice(tlvs);
    let len = u16::try_from(body.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sa(s: &str) -> SocketAddr {
        s.parse()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    #[test]
    fn v2_ipv4() {
        let h = encode_v2(sa("203.0.113.7:51000"), sa("10.0.0.1:8883"), &[]);
        assert_eq!(h.len(), 28);
        let p = parse(&h);
        assert_eq!(
            p,
            Ok(Parsed::Done {
                header: ProxyHeader {
                    source: Some(sa("203.0.113.7:51000")),
                    destination: Some(sa("10.0.0.1:8883"))
                },
                len: 28
            })
        );
        // Extra bytes after the header are not part of it.
        let mut more = h.clone();
        more.extend_from_slice(b"\x10\x20MQTT");
        assert!(matches!(parse(&more), Ok(Parsed::Done { len: 28, .. })));
    }

    #[test]
    fn v2_ipv6_with_tlvs() {
        let tlv = [0x04, 0x00, 0x03, b'a', b'b', b'c'];
        let h = encode_v2(sa("[2001:db8::1]:4000"), sa("[2001:db8::2]:443"), &tlv);
        assert_eq!(h.len(), 16 + 36 + 6);
        match parse(&h) {
            Ok(Parsed::Done { header, len }) => {
                assert_eq!(len, h.len());
                assert_eq!(header.source, Some(sa("[2001:db8::1]:4000")));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn v2_incremental() {
        let h = encode_v2(sa("1.2.3.4:5"), sa("6.7.8.9:10"), &[]);
        assert_eq!(parse(&h[..0]), Ok(Parsed::NeedMore(16)));
        assert_eq!(parse(&h[..5]), Ok(Parsed::NeedMore(16)));
        assert_eq!(parse(&h[..15]), Ok(Parsed::NeedMore(16)));
        assert_eq!(parse(&h[..16]), Ok(Parsed::NeedMore(28)));
        assert_eq!(parse(&h[..27]), Ok(Parsed::NeedMore(28)));
    }

    #[test]
    fn v2_local_and_unspec() {
        let mut h = V2_SIGNATURE.to_vec();
        h.extend_from_slice(&[0x20, 0x00, 0x00, 0x00]);
        assert_eq!(
            parse(&h),
            Ok(Parsed::Done {
                header: ProxyHeader {
                    source: None,
                    destination: None
                },
                len: 16
            })
        );
        let mut h = V2_SIGNATURE.to_vec();
        h.extend_from_slice(&[0x21, 0x00, 0x00, 0x00]);
        assert_eq!(
            parse(&h),
            Ok(Parsed::Done {
                header: ProxyHeader {
                    source: None,
                    destination: None
                },
                len: 16
            })
        );
    }

    #[test]
    fn v2_errors() {
        let mut h = V2_SIGNATURE.to_vec();
        h.extend_from_slice(&[0x11, 0x11, 0x00, 0x0c]);
        assert_eq!(parse(&h), Err(ProxyError::Version(1)));
        let mut h = V2_SIGNATURE.to_vec();
        h.extend_from_slice(&[0x2f, 0x11, 0x00, 0x0c]);
        assert_eq!(parse(&h), Err(ProxyError::Command(15)));
        let mut h = V2_SIGNATURE.to_vec();
        h.extend_from_slice(&[0x21, 0x11, 0xff, 0xff]);
        assert_eq!(parse(&h), Err(ProxyError::TooLong(65535)));
        let mut h = V2_SIGNATURE.to_vec();
        h.extend_from_slice(&[0x21, 0x11, 0x00, 0x04, 1, 2, 3, 4]);
        assert_eq!(parse(&h), Err(ProxyError::Truncated));
        assert_eq!(parse(b"\x10\x0c\x00\x04MQTT"), Err(ProxyError::NotProxy));
        assert_eq!(parse(b"\x16\x03\x01"), Err(ProxyError::NotProxy));
    }

    #[test]
    fn v1() {
        let h = b"PROXY TCP4 192.0.2.1 198.51.100.1 56324 443\r\nrest";
        assert_eq!(
            parse(h),
            Ok(Parsed::Done {
                header: ProxyHeader {
                    source: Some(sa("192.0.2.1:56324")),
                    destination: Some(sa("198.51.100.1:443"))
                },
                len: h.len() - 4
            })
        );
        let h6 = b"PROXY TCP6 2001:db8::1 2001:db8::2 1 2\r\n";
        assert!(matches!(parse(h6), Ok(Parsed::Done { .. })));
        assert!(matches!(
            parse(b"PROXY UNKNOWN\r\n"),
            Ok(Parsed::Done {
                len: 15,
                header: ProxyHeader { source: None, .. }
            })
        ));
        assert_eq!(parse(b"PROXY TCP4 1.2"), Ok(Parsed::NeedMore(15)));
        assert_eq!(parse(b"PROXY TCP4 1.2.3"), Ok(Parsed::NeedMore(17)));
        assert_eq!(
            parse(b"PROXY TCP4 1.2.3.4 5.6.7.8 99999 1\r\n"),
            Err(ProxyError::V1Malformed)
        );
        assert_eq!(
            parse(b"PROXY TCP4 ::1 ::1 1 1\r\n"),
            Err(ProxyError::V1Malformed)
        );
        assert_eq!(
            parse(b"PROXY UDP4 1.2.3.4 5.6.7.8 1 1\r\n"),
            Err(ProxyError::V1Malformed)
        );
        assert_eq!(
            parse(&[b'P', b'R', b'O', b'X', b'Y', b' ', b'x'].repeat(20)),
            Err(ProxyError::V1Malformed)
        );
    }

    #[tokio::test]
    async fn reader_stops_at_header() {
        for header in [
            encode_v2(sa("1.2.3.4:5"), sa("6.7.8.9:10"), &[1, 0, 1, 7]),
            b"PROXY TCP4 1.2.3.4 6.7.8.9 5 10\r\n".to_vec(),
        ] {
            let mut data = header.clone();
            data.extend_from_slice(b"after");
            let mut r = &data[..];
            let h = read_header(&mut r).await;
            assert_eq!(h.map(|h| h.source), Ok(Some(sa("1.2.3.4:5"))));
            assert_eq!(r, b"after");
        }
        let mut r = &b"PROXY UNKNOWN\r\nX"[..];
        assert_eq!(read_header(&mut r).await.map(|h| h.source), Ok(None));
        assert_eq!(r, b"X");
        let mut r = &b"GET / HTTP/1.1\r\n\r\n"[..];
        assert_eq!(read_header(&mut r).await, Err(ProxyError::NotProxy));
        let mut r = &V2_SIGNATURE[..];
        assert_eq!(read_header(&mut r).await, Err(ProxyError::Eof));
    }

    proptest! {
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = parse(&bytes);
        }

        #[test]
        fn parse_never_panics_after_signature(tail in proptest::collection::vec(any::<u8>(), 0..300)) {
            let mut b = V2_SIGNATURE.to_vec();
            b.extend_from_slice(&tail);
            if let Ok(Parsed::Done { len, .. }) = parse(&b) {
                prop_assert!(len <= b.len());
            }
            let mut v1 = b"PROXY ".to_vec();
            v1.extend_from_slice(&tail);
            if let Ok(Parsed::Done { len, .. }) = parse(&v1) {
                prop_assert!(len <= v1.len());
            }
        }

        #[test]
        fn need_more_is_monotonic(tail in proptest::collection::vec(any::<u8>(), 0..100), cut in 0usize..120) {
            let mut b = V2_SIGNATURE.to_vec();
            b.extend_from_slice(&tail);
            let cut = cut.min(b.len());
            if let Ok(Parsed::NeedMore(n)) = parse(&b[..cut]) {
                prop_assert!(n > cut);
            }
        }

        #[test]
        fn v2_round_trip(a in any::<[u8; 4]>(), b in any::<[u8; 16]>(), sp in any::<u16>(), dp in any::<u16>(), tlvs in proptest::collection::vec(any::<u8>(), 0..64)) {
            let src = SocketAddr::new(IpAddr::V4(Ipv4Addr::from(a)), sp);
            let dst = SocketAddr::new(IpAddr::V4(Ipv4Addr::from(a)), dp);
            let h = encode_v2(src, dst, &tlvs);
            prop_assert_eq!(parse(&h), Ok(Parsed::Done { header: ProxyHeader { source: Some(src), destination: Some(dst) }, len: h.len() }));
            let src6 = SocketAddr::new(IpAddr::V6(Ipv6Addr::from(b)), sp);
            let h6 = encode_v2(src6, src6, &tlvs);
            prop_assert_eq!(parse(&h6), Ok(Parsed::Done { header: ProxyHeader { source: Some(src6), destination: Some(src6) }, len: h6.len() }));
        }
    }
}
