//! Device shadow documents: arbitrary bytes as a stored shadow followed by `/update` payloads,
//! separated by NUL bytes (which JSON text cannot contain unescaped). A first segment that reads
//! as a stored shadow is the starting point (stored data is not trusted either); the others are
//! parsed with AWS's limits and with tight ones and applied in turn. Nothing may panic; every
//! answer must be a JSON object; an accepted update must raise the version by one, keep the
//! merged state within the limit, keep metadata mirroring the state, give a delta made of
//! desired's values that is empty exactly when reported agrees, round-trip through the stored
//! form, and change nothing more when applied a second time.
//!
//! ```sh
//! mkdir -p corpus/shadow_update
//! cargo +nightly fuzz run shadow_update corpus/shadow_update seeds/shadow_update -- -max_total_time=600
//! ```
//!
//! Seeds: AWS's documented requests (report, desire, delete a property, clear desired, arrays,
//! optimistic locking, nested delta) as sequences, invalid requests (null in an array, `delta`
//! in state, 7 levels, long client token), and a stored shadow followed by updates.

#![no_main]

use ferrocore_shadow::document::invariants::{desired_met, within_desired};
use ferrocore_shadow::document::{
    Limits, Shadow, UpdateRequest, apply_update, delete_document, get_document, parse_update,
    request_client_token,
};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};

const NOW: u64 = 1_700_000_000;

fuzz_target!(|data: &[u8]| {
    let tight = Limits {
        max_state_bytes: 96,
        max_depth: 2,
        max_client_token_bytes: 4,
    };
    let aws = Limits::default();
    let mut segments = data.split(|&b| b == 0).peekable();
    let mut current = segments
        .peek()
        .and_then(|first| Shadow::from_bytes(first).ok());
    // A shadow read from the input may hold metadata that does not mirror its state; one built
    // here from nothing must mirror it after every update.
    let built_here = current.is_none();
    if !built_here {
        segments.next();
    }
    for (i, payload) in segments.enumerate() {
        let _ = request_client_token(payload);
        let _ = parse_update(payload, &tight);
        let Ok(request) = parse_update(payload, &aws) else {
            continue;
        };
        let now = NOW + i as u64;
        let version_before = current.as_ref().map_or(5, Shadow::version);
        let Ok(outcome) = apply_update(current.as_ref(), 5, &request, now, &aws) else {
            continue;
        };
        let shadow = outcome.shadow;
        assert_eq!(shadow.version(), version_before + 1);
        let state_bytes: usize = [shadow.desired(), shadow.reported()]
            .into_iter()
            .flatten()
            .map(|section| serde_json::to_vec(section).expect("serializes").len())
            .sum();
        assert!(state_bytes <= aws.max_state_bytes);

        let accepted = object(&outcome.accepted);
        assert_eq!(accepted["version"], Value::from(shadow.version()));
        assert_eq!(
            accepted.get("clientToken").and_then(Value::as_str),
            request.client_token.as_deref()
        );
        object(&outcome.documents);
        if let Some(delta) = &outcome.delta {
            assert!(
                object(delta)["state"]
                    .as_object()
                    .is_some_and(|d| !d.is_empty())
            );
        }
        object(&delete_document(&shadow, Some("t"), now));

        let stored = object(&shadow.to_bytes());
        assert_eq!(Shadow::from_bytes(&shadow.to_bytes()).as_ref(), Ok(&shadow));
        if built_here {
            for name in ["desired", "reported"] {
                let (state, metadata) = (&stored["state"][name], &stored["metadata"][name]);
                assert!(
                    (state.is_null() && metadata.is_null()) || mirrors(state, metadata),
                    "{name}: {state} vs {metadata}"
                );
            }
        }

        let answer = object(&get_document(&shadow, None, now));
        let desired = shadow.desired().cloned().unwrap_or_default();
        let reported = shadow.reported().cloned().unwrap_or_default();
        let delta = answer["state"]
            .get("delta")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        assert!(within_desired(&delta, &desired));
        assert_eq!(delta.is_empty(), desired_met(&desired, &reported));

        if shadow.version() < u64::MAX {
            let repeated = UpdateRequest {
                version: None,
                ..request.clone()
            };
            let again = apply_update(Some(&shadow), 0, &repeated, now, &aws)
                .expect("an update that fit once fits again");
            assert_eq!(again.shadow.desired(), shadow.desired());
            assert_eq!(again.shadow.reported(), shadow.reported());
        }

        current = Some(shadow);
    }
});

fn object(bytes: &[u8]) -> Map<String, Value> {
    match serde_json::from_slice(bytes) {
        Ok(Value::Object(map)) => map,
        other => panic!("not a JSON object: {other:?}"),
    }
}

/// `metadata` has the shape of `state`, with `{"timestamp": n}` for each scalar.
fn mirrors(state: &Value, metadata: &Value) -> bool {
    match (state, metadata) {
        (Value::Object(s), Value::Object(m)) => {
            s.len() == m.len()
                && s.iter()
                    .all(|(k, v)| m.get(k).is_some_and(|w| mirrors(v, w)))
        }
        (Value::Array(s), Value::Array(m)) => {
            s.len() == m.len() && s.iter().zip(m).all(|(v, w)| mirrors(v, w))
        }
        (Value::Array(_) | Value::Object(_), _) => false,
        (_, Value::Object(m)) => m.len() == 1 && m.get("timestamp").is_some_and(Value::is_u64),
        _ => false,
    }
}
