//! Sans-IO MQTT 3.1.1 and 5.0 codec: packet types, decoding with size limits checked before
//! buffering, encoding, and topic name / filter rules. No I/O, no async runtime.

mod codec;
mod packet;
pub mod reason;
pub mod topic;

pub use codec::{
    DecodeError, EncodeError, MAX_REMAINING_LENGTH, decode, encode, encoded_len, peek_connect_level,
};
pub use packet::*;
