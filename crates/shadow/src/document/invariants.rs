//! What every delta must satisfy, for the property tests and the fuzz target (feature
//! `testing`): stated apart from how the delta is computed.

use serde_json::{Map, Value};

use super::json_equal;

/// Every leaf of `desired` is in `reported` with the same value: the delta must be empty.
pub fn desired_met(desired: &Map<String, Value>, reported: &Map<String, Value>) -> bool {
    desired.iter().all(|(k, d)| match (d, reported.get(k)) {
        (Value::Object(d), Some(Value::Object(r))) => desired_met(d, r),
        (_, Some(r)) => json_equal(d, r),
        (_, None) => false,
    })
}

/// Every path of `delta` is a path of `desired`, ending on the same value.
pub fn within_desired(delta: &Map<String, Value>, desired: &Map<String, Value>) -> bool {
    delta.iter().all(|(k, v)| match (v, desired.get(k)) {
        (Value::Object(v), Some(Value::Object(d))) => within_desired(v, d),
        (_, Some(d)) => v == d,
        (_, None) => false,
    })
}
