//! Properties of the merge, the delta and the answers, over generated shadows and updates.

use proptest::prelude::*;
use serde_json::{Map, Value, json};

use crate::document::invariants::{desired_met, within_desired};
use crate::document::{
    Limits, Shadow, ShadowError, apply_update, delete_document, get_document, parse_update,
    request_client_token,
};

const NOW: u64 = 1_800_000_000;

fn limits() -> Limits {
    // Generated documents stay far below AWS's limits; the properties are about the merge.
    Limits::default()
}

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<bool>().prop_map(Value::from),
        (-2i64..3).prop_map(Value::from),
        prop::sample::select(vec![0.5f64, 2.0]).prop_map(Value::from),
        "[xy]{0,2}".prop_map(Value::from),
    ]
}

fn key() -> impl Strategy<Value = String> {
    // Few keys, so that updates collide with what is stored.
    prop::sample::select(vec!["a", "b", "c"]).prop_map(str::to_string)
}

/// A value of an update: objects may hold `null` (delete), arrays may not.
fn patch_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![4 => scalar(), 1 => Just(Value::Null)];
    leaf.prop_recursive(3, 24, 3, |inner| {
        prop_oneof![
            prop::collection::vec(
                inner
                    .clone()
                    .prop_map(|v| if v.is_null() { Value::from(0) } else { v }),
                0..3
            )
            .prop_map(Value::Array),
            prop::collection::btree_map(key(), inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn patch_object() -> impl Strategy<Value = Value> {
    prop::collection::btree_map(key(), patch_value(), 0..4)
        .prop_map(|m| Value::Object(m.into_iter().collect()))
}

/// A section of an update: absent, `null`, or an object.
fn section() -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        1 => Just(None),
        1 => Just(Some(Value::Null)),
        4 => patch_object().prop_map(Some),
    ]
}

fn update_payload() -> impl Strategy<Value = Vec<u8>> {
    (section(), section(), prop::option::of("[a-z0-9-]{0,8}")).prop_map(
        |(desired, reported, token)| {
            let mut state = Map::new();
            if let Some(desired) = desired {
                state.insert("desired".into(), desired);
            }
            if let Some(reported) = reported {
                state.insert("reported".into(), reported);
            }
            let mut payload = json!({ "state": state });
            if let Some(token) = token {
                payload["clientToken"] = token.into();
            }
            serde_json::to_vec(&payload).unwrap()
        },
    )
}

/// A shadow built by a few updates (`None`: never created).
fn shadow() -> impl Strategy<Value = Option<Shadow>> {
    prop::collection::vec(update_payload(), 0..4).prop_map(|updates| {
        let mut shadow = None;
        for (i, payload) in updates.iter().enumerate() {
            let request = parse_update(payload, &limits()).unwrap();
            let outcome = apply_update(
                shadow.as_ref(),
                0,
                &request,
                NOW - 100 + i as u64,
                &limits(),
            )
            .unwrap();
            shadow = Some(outcome.shadow);
        }
        shadow
    })
}

fn stored(shadow: &Shadow) -> Value {
    serde_json::from_slice(&shadow.to_bytes()).unwrap()
}

fn json_object(bytes: &[u8]) -> Map<String, Value> {
    match serde_json::from_slice(bytes) {
        Ok(Value::Object(map)) => map,
        other => panic!("not a JSON object: {other:?}"),
    }
}

/// `metadata` has the shape of `state`, with `{"timestamp": n}` for each scalar; objects in the
/// state outside arrays are never empty.
fn mirrors(state: &Value, metadata: &Value, in_array: bool) -> bool {
    match (state, metadata) {
        (Value::Object(s), Value::Object(m)) => {
            (in_array || !s.is_empty())
                && s.len() == m.len()
                && s.iter()
                    .all(|(k, v)| m.get(k).is_some_and(|w| mirrors(v, w, in_array)))
        }
        (Value::Array(s), Value::Array(m)) => {
            s.len() == m.len() && s.iter().zip(m).all(|(v, w)| mirrors(v, w, true))
        }
        (Value::Array(_) | Value::Object(_), _) => false,
        (_, Value::Object(m)) => m.len() == 1 && m.get("timestamp").is_some_and(Value::is_u64),
        _ => false,
    }
}

fn section_of(stored: &Value, part: &str, name: &str) -> Map<String, Value> {
    stored[part][name].as_object().cloned().unwrap_or_default()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn applying_an_update_twice_equals_applying_it_once(current in shadow(), payload in update_payload()) {
        let request = parse_update(&payload, &limits()).unwrap();
        let once = apply_update(current.as_ref(), 0, &request, NOW, &limits()).unwrap();
        let twice = apply_update(Some(&once.shadow), 0, &request, NOW, &limits()).unwrap();
        let (once_stored, twice_stored) = (stored(&once.shadow), stored(&twice.shadow));
        prop_assert_eq!(&once_stored["state"], &twice_stored["state"]);
        prop_assert_eq!(&once_stored["metadata"], &twice_stored["metadata"]);
        prop_assert_eq!(twice.shadow.version(), once.shadow.version() + 1);
    }

    #[test]
    fn metadata_mirrors_the_state(current in shadow()) {
        let Some(shadow) = current else { return Ok(()) };
        let stored = stored(&shadow);
        for name in ["desired", "reported"] {
            let state = &stored["state"][name];
            prop_assert_eq!(state.is_null(), stored["metadata"][name].is_null());
            if !state.is_null() {
                prop_assert!(mirrors(state, &stored["metadata"][name], false), "{stored}");
            }
        }
    }

    #[test]
    fn the_delta_is_within_desired_and_empty_iff_reported_agrees(current in shadow()) {
        let Some(shadow) = current else { return Ok(()) };
        let answer = json_object(&get_document(&shadow, None, NOW));
        let stored = stored(&shadow);
        let desired = section_of(&stored, "state", "desired");
        let reported = section_of(&stored, "state", "reported");
        let delta = answer["state"].get("delta").and_then(Value::as_object).cloned();
        prop_assert!(delta.as_ref().is_none_or(|d| !d.is_empty()), "an empty delta is omitted");
        let delta = delta.unwrap_or_default();
        prop_assert!(within_desired(&delta, &desired), "delta {delta:?} desired {desired:?}");
        prop_assert_eq!(delta.is_empty(), desired_met(&desired, &reported));
        let delta_metadata = answer["metadata"].get("delta").and_then(Value::as_object).cloned().unwrap_or_default();
        prop_assert!(mirrors(&Value::Object(delta.clone()), &Value::Object(delta_metadata), delta.is_empty()));
    }

    #[test]
    fn every_answer_is_a_json_object(current in shadow(), payload in update_payload(), token in prop::option::of("[a-z]{0,4}")) {
        let token = token.as_deref();
        let request = parse_update(&payload, &limits()).unwrap();
        let outcome = apply_update(current.as_ref(), 3, &request, NOW, &limits()).unwrap();
        json_object(&outcome.accepted);
        json_object(&outcome.documents);
        if let Some(delta) = &outcome.delta {
            json_object(delta);
        }
        json_object(&get_document(&outcome.shadow, token, NOW));
        json_object(&delete_document(&outcome.shadow, token, NOW));
        json_object(&ShadowError::not_found("t", token).to_json(token, NOW));
        prop_assert_eq!(Shadow::from_bytes(&outcome.shadow.to_bytes()).unwrap(), outcome.shadow);
    }

    #[test]
    fn parsing_arbitrary_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = parse_update(&bytes, &limits());
        let _ = request_client_token(&bytes);
        let _ = Shadow::from_bytes(&bytes);
    }

    #[test]
    fn parsing_json_like_text_never_panics(text in r#"[{}\[\]":,0-9a-z \\nul-]{0,80}"#) {
        let _ = parse_update(text.as_bytes(), &limits());
        let wrapped = format!(r#"{{"state":{{"desired":{text}}},"clientToken":{text}}}"#);
        if let Ok(request) = parse_update(wrapped.as_bytes(), &limits()) {
            let outcome = apply_update(None, 0, &request, NOW, &limits());
            prop_assert!(outcome.is_ok());
        }
    }
}
