//! A bounds-checked cursor over the bytes of one packet.

use bytes::Bytes;

use super::DecodeError;

/// Reads MQTT data types from `frame[pos..end]`. Every read is checked; running past `end` is a
/// malformed packet. Binary data is returned as slices of `frame` (no copy).
pub(super) struct Reader<'a> {
    frame: &'a Bytes,
    pos: usize,
    end: usize,
}

const SHORT: DecodeError = DecodeError::Malformed("packet shorter than its contents require");

impl<'a> Reader<'a> {
    pub(super) fn new(frame: &'a Bytes, pos: usize) -> Self {
        Reader {
            frame,
            pos,
            end: frame.len(),
        }
    }

    #[inline]
    pub(super) fn remaining(&self) -> usize {
        self.end.saturating_sub(self.pos)
    }

    #[inline]
    pub(super) fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    #[inline]
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let stop = self.pos.checked_add(n).ok_or(SHORT)?;
        if stop > self.end {
            return Err(SHORT);
        }
        let s = self.frame.get(self.pos..stop).ok_or(SHORT)?;
        self.pos = stop;
        Ok(s)
    }

    #[inline]
    pub(super) fn u8(&mut self) -> Result<u8, DecodeError> {
        match self.take(1)? {
            [b] => Ok(*b),
            _ => Err(SHORT),
        }
    }

    #[inline]
    pub(super) fn u16(&mut self) -> Result<u16, DecodeError> {
        match self.take(2)? {
            [a, b] => Ok(u16::from_be_bytes([*a, *b])),
            _ => Err(SHORT),
        }
    }

    #[inline]
    pub(super) fn u32(&mut self) -> Result<u32, DecodeError> {
        match self.take(4)? {
            [a, b, c, d] => Ok(u32::from_be_bytes([*a, *b, *c, *d])),
            _ => Err(SHORT),
        }
    }

    /// A variable byte integer of at most four bytes.
    pub(super) fn vbi(&mut self) -> Result<u32, DecodeError> {
        let mut value: u32 = 0;
        for i in 0..4 {
            let b = self.u8()?;
            value |= u32::from(b & 0x7F) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(DecodeError::Malformed(
            "variable byte integer longer than 4 bytes",
        ))
    }

    /// A UTF-8 encoded string, checked for validity and for U+0000.
    #[inline]
    pub(super) fn str(&mut self) -> Result<&'a str, DecodeError> {
        let len = usize::from(self.u16()?);
        let raw = self.take(len)?;
        utf8(raw)
    }

    #[inline]
    pub(super) fn string(&mut self) -> Result<String, DecodeError> {
        self.str().map(str::to_owned)
    }

    /// Two-byte length-prefixed raw bytes, possibly not UTF-8 (protocol name).
    #[inline]
    pub(super) fn raw_prefixed(&mut self) -> Result<&'a [u8], DecodeError> {
        let len = usize::from(self.u16()?);
        self.take(len)
    }

    /// Binary data (two-byte length prefix) sliced from the frame without copying.
    #[inline]
    pub(super) fn binary(&mut self) -> Result<Bytes, DecodeError> {
        let len = usize::from(self.u16()?);
        self.bytes(len)
    }

    /// The next `n` bytes sliced from the frame without copying.
    #[inline]
    pub(super) fn bytes(&mut self, n: usize) -> Result<Bytes, DecodeError> {
        let start = self.pos;
        self.take(n)?;
        // `take` checked start..start+n against the frame.
        Ok(self.frame.slice(start..self.pos))
    }

    /// Everything up to `end`, sliced without copying.
    #[inline]
    pub(super) fn rest(&mut self) -> Bytes {
        let n = self.remaining();
        self.bytes(n).unwrap_or_default()
    }

    /// All remaining bytes as a borrowed slice.
    #[inline]
    pub(super) fn rest_slice(&mut self) -> &'a [u8] {
        let n = self.remaining();
        self.take(n).unwrap_or_default()
    }

    /// Splits off the next `n` bytes as a reader of their own and skips them here.
    pub(super) fn sub(&mut self, n: usize) -> Result<Reader<'a>, DecodeError> {
        let start = self.pos;
        self.take(n)?;
        Ok(Reader {
            frame: self.frame,
            pos: start,
            end: self.pos,
        })
    }

    /// Fails unless every byte has been read.
    #[inline]
    pub(super) fn finish(&self, what: &'static str) -> Result<(), DecodeError> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::Malformed(what))
        }
    }
}

/// Validates an MQTT UTF-8 string: well-formed UTF-8 without U+0000.
#[inline]
pub(super) fn utf8(raw: &[u8]) -> Result<&str, DecodeError> {
    let s = std::str::from_utf8(raw)
        .map_err(|_| DecodeError::Malformed("string is not valid UTF-8"))?;
    if raw.contains(&0) {
        return Err(DecodeError::Malformed("string contains U+0000"));
    }
    Ok(s)
}
