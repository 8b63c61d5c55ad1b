#![allow(clippy::unwrap_used)]

use super::*;

mod properties;

const T0: u64 = 1_700_000_000;
const T1: u64 = 1_700_000_060;
const T2: u64 = 1_700_000_120;

fn limits() -> Limits {
    Limits::default()
}

fn request(payload: Value) -> UpdateRequest {
    parse_update(&serde_json::to_vec(&payload).unwrap(), &limits()).unwrap()
}

fn update(current: Option<&Shadow>, payload: Value, now: u64) -> UpdateOutcome {
    apply_update(current, 0, &request(payload), now, &limits()).unwrap()
}

/// A shadow built by the given updates, the i-th at `T0 + i`.
fn shadow_from(updates: &[Value]) -> Shadow {
    let mut shadow: Option<Shadow> = None;
    for (i, payload) in updates.iter().enumerate() {
        shadow = Some(update(shadow.as_ref(), payload.clone(), T0 + i as u64).shadow);
    }
    shadow.unwrap()
}

fn parsed(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap()
}

fn refusal(payload: &[u8]) -> RequestError {
    parse_update(payload, &limits()).unwrap_err()
}

fn refusal_of(payload: Value) -> RequestError {
    refusal(&serde_json::to_vec(&payload).unwrap())
}

fn assert_refused(payload: Value, code: u16, message: &str) {
    let refused = refusal_of(payload);
    assert_eq!(
        (refused.error.code, refused.error.message.as_str()),
        (code, message)
    );
}

fn stored(shadow: &Shadow) -> Value {
    parsed(&shadow.to_bytes())
}

fn get(shadow: &Shadow) -> Value {
    parsed(&get_document(shadow, None, T2))
}

/// Nests `leaf` under `levels` objects: 1 gives `{"k1": leaf}`.
fn nested(levels: usize, leaf: Value) -> Value {
    (1..=levels)
        .rev()
        .fold(leaf, |inner, level| json!({ format!("k{level}"): inner }))
}

// ---- parsing: the request and AWS's 400 / 415 messages ----

#[test]
fn a_payload_that_is_not_utf8_is_415() {
    let refused = refusal(b"{\"state\":{\"reported\":{\"name\":\"\xff\"}}}");
    assert_eq!(refused.error, ShadowError::unsupported_encoding());
    assert_eq!(refused.error.code, 415);
    assert_eq!(
        refused.error.message,
        "Unsupported documented encoding; supported encoding is UTF-8"
    );
}

#[test]
fn a_payload_that_is_not_a_json_object_is_invalid_json() {
    for payload in [
        &b""[..],
        b"{",
        b"state",
        b"[1,2]",
        b"\"text\"",
        b"null",
        b"{} {}",
    ] {
        let refused = refusal(payload);
        assert_eq!(
            refused.error,
            ShadowError::new(400, "Invalid JSON"),
            "{payload:?}"
        );
        assert_eq!(refused.client_token, None);
    }
}

#[test]
fn state_is_required_and_must_be_an_object() {
    assert_refused(
        json!({"clientToken": "a"}),
        400,
        "Missing required node: state",
    );
    for state in [json!(null), json!([]), json!("on"), json!(3)] {
        assert_refused(
            json!({ "state": state }),
            400,
            "State node must be an object",
        );
    }
}

#[test]
fn state_may_hold_only_desired_and_reported() {
    assert_refused(
        json!({"state": {"reported": {"a": 1}, "delta": {"a": 2}}}),
        400,
        "State contains an invalid node: 'delta'",
    );
    assert_refused(
        json!({"state": {"colour": "red"}}),
        400,
        "State contains an invalid node: 'colour'",
    );
}

#[test]
fn desired_and_reported_must_be_objects_or_null() {
    for value in [json!("red"), json!(1), json!(true), json!(["red"])] {
        assert_refused(
            json!({"state": {"desired": value.clone()}}),
            400,
            "Desired node must be an object",
        );
        assert_refused(
            json!({"state": {"reported": value}}),
            400,
            "Reported node must be an object",
        );
    }
    let parsed = request(json!({"state": {"desired": null, "reported": {"a": 1}}}));
    assert_eq!(parsed.desired, SectionUpdate::Remove);
    assert_eq!(
        parsed.reported,
        SectionUpdate::Merge(json!({"a": 1}).as_object().unwrap().clone())
    );
}

#[test]
fn an_empty_state_is_a_valid_request() {
    let parsed = request(json!({"state": {}}));
    assert_eq!(
        (parsed.desired, parsed.reported),
        (SectionUpdate::Keep, SectionUpdate::Keep)
    );
}

#[test]
fn client_token_is_a_string_of_at_most_64_bytes() {
    let longest = "t".repeat(64);
    let parsed = request(json!({"state": {}, "clientToken": longest}));
    assert_eq!(parsed.client_token.as_deref(), Some(longest.as_str()));
    // 22 three-byte characters: 66 bytes though 22 characters.
    for token in [
        json!("t".repeat(65)),
        json!("€".repeat(22)),
        json!(7),
        json!({"id": "a"}),
    ] {
        let refused = refusal_of(json!({"state": {}, "clientToken": token}));
        assert_eq!(refused.error, ShadowError::new(400, "Invalid clientToken"));
        assert_eq!(refused.client_token, None);
    }
    assert_eq!(
        request(json!({"state": {}, "clientToken": null})).client_token,
        None
    );
}

#[test]
fn client_token_limit_is_configurable() {
    let strict = Limits {
        max_client_token_bytes: 4,
        ..Limits::default()
    };
    assert!(parse_update(br#"{"state":{},"clientToken":"abcd"}"#, &strict).is_ok());
    let refused = parse_update(br#"{"state":{},"clientToken":"abcde"}"#, &strict).unwrap_err();
    assert_eq!(refused.error.message, "Invalid clientToken");
}

#[test]
fn later_errors_carry_the_client_token() {
    let refused = refusal_of(json!({"clientToken": "req-7", "state": "on"}));
    assert_eq!(refused.client_token.as_deref(), Some("req-7"));
    let refused = refusal_of(json!({"clientToken": "req-8", "state": {}, "version": "3"}));
    assert_eq!(refused.client_token.as_deref(), Some("req-8"));
    assert_eq!(refused.error, ShadowError::new(400, "Invalid version"));
}

#[test]
fn version_is_a_non_negative_integer() {
    assert_eq!(
        request(json!({"state": {}, "version": 12})).version,
        Some(12)
    );
    assert_eq!(request(json!({"state": {}, "version": null})).version, None);
    for version in [json!(-1), json!(1.5), json!("1"), json!([1])] {
        assert_refused(
            json!({"state": {}, "version": version}),
            400,
            "Invalid version",
        );
    }
}

#[test]
fn other_top_level_members_are_ignored() {
    // AWS's SDKs echo `timestamp` and `metadata` back in requests.
    let parsed = request(json!({
        "state": {"reported": {"a": 1}},
        "timestamp": 0,
        "metadata": {"reported": {"a": {"timestamp": 5}}},
        "note": "x"
    }));
    assert_eq!(
        parsed.reported,
        SectionUpdate::Merge(json!({"a": 1}).as_object().unwrap().clone())
    );
}

#[test]
fn six_levels_inside_a_section_pass_and_seven_do_not() {
    // `k1` … `k5` are levels 2 to 6 (the section is level 1); `k6` holds a value.
    let deepest = nested(6, json!(1));
    let accepted = request(json!({"state": {"desired": deepest.clone(), "reported": deepest}}));
    assert!(matches!(accepted.desired, SectionUpdate::Merge(_)));

    let message = "JSON contains too many levels of nesting; maximum is 6";
    assert_refused(
        json!({"state": {"reported": nested(7, json!(1))}}),
        400,
        message,
    );
    assert_refused(
        json!({"state": {"desired": nested(6, json!({}))}}),
        400,
        message,
    );
    // Arrays are levels too.
    assert_refused(
        json!({"state": {"desired": nested(6, json!([1]))}}),
        400,
        message,
    );
    assert!(
        parse_update(
            &serde_json::to_vec(&json!({"state": {"desired": nested(5, json!([1]))}})).unwrap(),
            &limits()
        )
        .is_ok()
    );
}

#[test]
fn nesting_limit_is_configurable_and_named_in_the_message() {
    let shallow = Limits {
        max_depth: 2,
        ..Limits::default()
    };
    let payload =
        |value: Value| serde_json::to_vec(&json!({"state": {"reported": value}})).unwrap();
    assert!(parse_update(&payload(nested(2, json!(1))), &shallow).is_ok());
    let refused = parse_update(&payload(nested(3, json!(1))), &shallow).unwrap_err();
    assert_eq!(
        refused.error,
        ShadowError::new(
            400,
            "JSON contains too many levels of nesting; maximum is 2"
        )
    );
}

#[test]
fn arrays_may_not_contain_null() {
    // AWS's example: a colour list with a null in it.
    let message = "Invalid JSON: an array may not contain null";
    assert_refused(
        json!({"state": {"desired": {"colors": [null, "RED", "GREEN"]}}}),
        400,
        message,
    );
    assert_refused(
        json!({"state": {"reported": {"a": [{"b": [1, null]}]}}}),
        400,
        message,
    );
    // Null as an object member still means "delete".
    assert!(matches!(
        request(json!({"state": {"reported": {"a": [{"b": null}]}}})).reported,
        SectionUpdate::Merge(_)
    ));
}

#[test]
fn request_client_token_reads_only_a_short_string_token() {
    assert_eq!(request_client_token(b""), None);
    assert_eq!(request_client_token(b"not json"), None);
    assert_eq!(request_client_token(b"[\"clientToken\"]"), None);
    assert_eq!(request_client_token(br#"{"clientToken":5}"#), None);
    assert_eq!(
        request_client_token(br#"{"clientToken":"get-1","state":"ignored"}"#).as_deref(),
        Some("get-1")
    );
    let long = format!(r#"{{"clientToken":"{}"}}"#, "x".repeat(65));
    assert_eq!(request_client_token(long.as_bytes()), None);
}

// ---- merge, metadata and version ----

#[test]
fn an_update_creates_the_shadow_at_absent_version_plus_one() {
    let created = update(None, json!({"state": {"reported": {"color": "red"}}}), T0);
    assert_eq!(
        stored(&created.shadow),
        json!({
            "state": {"reported": {"color": "red"}},
            "metadata": {"reported": {"color": {"timestamp": T0}}},
            "version": 1,
            "timestamp": T0
        })
    );
    // Re-created after a delete at version 9: numbering continues.
    let recreated = apply_update(None, 9, &request(json!({"state": {}})), T1, &limits()).unwrap();
    assert_eq!(recreated.shadow.version(), 10);
}

#[test]
fn the_lightbulb_walkthrough() {
    // AWS's walkthrough, in our values: the bulb reports, an app desires, the bulb reports the
    // change and clears desired.
    let first = update(None, json!({"state": {"reported": {"color": "red"}}}), T0);
    assert_eq!(
        parsed(&first.accepted),
        json!({
            "state": {"reported": {"color": "red"}},
            "metadata": {"reported": {"color": {"timestamp": T0}}},
            "version": 1,
            "timestamp": T0
        })
    );
    assert_eq!(first.delta, None);
    assert_eq!(
        parsed(&first.documents),
        json!({
            "previous": null,
            "current": {
                "state": {"reported": {"color": "red"}},
                "metadata": {"reported": {"color": {"timestamp": T0}}},
                "version": 1
            },
            "timestamp": T0
        })
    );

    let second = update(
        Some(&first.shadow),
        json!({"state": {"desired": {"color": "green"}}}),
        T1,
    );
    assert_eq!(
        parsed(&second.accepted),
        json!({
            "state": {"desired": {"color": "green"}},
            "metadata": {"desired": {"color": {"timestamp": T1}}},
            "version": 2,
            "timestamp": T1
        })
    );
    assert_eq!(
        parsed(&second.delta.unwrap()),
        json!({
            "state": {"color": "green"},
            "metadata": {"color": {"timestamp": T1}},
            "version": 2,
            "timestamp": T1
        })
    );
    assert_eq!(
        parsed(&second.documents),
        json!({
            "previous": {
                "state": {"reported": {"color": "red"}},
                "metadata": {"reported": {"color": {"timestamp": T0}}},
                "version": 1
            },
            "current": {
                "state": {"desired": {"color": "green"}, "reported": {"color": "red"}},
                "metadata": {
                    "desired": {"color": {"timestamp": T1}},
                    "reported": {"color": {"timestamp": T0}}
                },
                "version": 2
            },
            "timestamp": T1
        })
    );

    let third = update(
        Some(&second.shadow),
        json!({"state": {"reported": {"color": "green"}, "desired": null}}),
        T2,
    );
    assert_eq!(
        parsed(&third.accepted),
        json!({
            "state": {"reported": {"color": "green"}, "desired": null},
            "metadata": {
                "reported": {"color": {"timestamp": T2}},
                "desired": {"timestamp": T2}
            },
            "version": 3,
            "timestamp": T2
        })
    );
    assert_eq!(third.delta, None);
    assert_eq!(
        parsed(&get_document(&third.shadow, None, T2 + 5)),
        json!({
            "state": {"reported": {"color": "green"}},
            "metadata": {"reported": {"color": {"timestamp": T2}}},
            "version": 3,
            "timestamp": T2 + 5
        })
    );
}

#[test]
fn only_the_fields_given_change_and_objects_merge_recursively() {
    // AWS's "Updating a shadow" example, in our values.
    let shadow = shadow_from(&[
        json!({"state": {"reported": {"color": {"r": 200, "g": 200, "b": 0}}}}),
        json!({"state": {"desired": {"color": {"r": 12}, "engine": "ON"}}}),
        json!({"state": {"reported": {"color": {"g": 10}}}}),
    ]);
    assert_eq!(
        stored(&shadow),
        json!({
            "state": {
                "desired": {"color": {"r": 12}, "engine": "ON"},
                "reported": {"color": {"r": 200, "g": 10, "b": 0}}
            },
            "metadata": {
                "desired": {
                    "color": {"r": {"timestamp": T0 + 1}},
                    "engine": {"timestamp": T0 + 1}
                },
                "reported": {
                    "color": {
                        "r": {"timestamp": T0},
                        "g": {"timestamp": T0 + 2},
                        "b": {"timestamp": T0}
                    }
                }
            },
            "version": 3,
            "timestamp": T0 + 2
        })
    );
}

#[test]
fn null_deletes_a_key_and_its_metadata() {
    // AWS's "Deleting a property" example: `engine` goes.
    let shadow = shadow_from(&[
        json!({"state": {"desired": {"engine": "ON", "color": {"r": 1, "g": 2}}}}),
        json!({"state": {"desired": {"engine": null, "color": {"g": null}, "absent": null}}}),
    ]);
    assert_eq!(
        stored(&shadow)["state"],
        json!({"desired": {"color": {"r": 1}}})
    );
    assert_eq!(
        stored(&shadow)["metadata"],
        json!({"desired": {"color": {"r": {"timestamp": T0}}}})
    );
}

#[test]
fn the_accepted_answer_shows_only_the_request_with_nulls() {
    let shadow = shadow_from(&[json!({"state": {"desired": {"engine": "ON", "speed": 3}}})]);
    let outcome = update(
        Some(&shadow),
        json!({"state": {"desired": {"engine": null, "fan": [1, 2]}}, "clientToken": "c-1"}),
        T1,
    );
    assert_eq!(
        parsed(&outcome.accepted),
        json!({
            "state": {"desired": {"engine": null, "fan": [1, 2]}},
            "metadata": {"desired": {
                "engine": {"timestamp": T1},
                "fan": [{"timestamp": T1}, {"timestamp": T1}]
            }},
            "version": 2,
            "timestamp": T1,
            "clientToken": "c-1"
        })
    );
}

#[test]
fn a_section_set_to_null_goes_with_its_metadata() {
    let shadow = shadow_from(&[
        json!({"state": {"desired": {"a": 1}, "reported": {"a": 2}}}),
        json!({"state": {"desired": null}}),
    ]);
    assert_eq!(
        stored(&shadow),
        json!({
            "state": {"reported": {"a": 2}},
            "metadata": {"reported": {"a": {"timestamp": T0}}},
            "version": 2,
            "timestamp": T0 + 1
        })
    );
}

#[test]
fn an_emptied_section_or_object_is_removed() {
    let shadow = shadow_from(&[
        json!({"state": {"desired": {"a": 1}, "reported": {"lamp": {"on": true}, "b": 2}}}),
        json!({"state": {"desired": {"a": null}, "reported": {"lamp": {"on": null}, "c": {}}}}),
    ]);
    assert_eq!(stored(&shadow)["state"], json!({"reported": {"b": 2}}));
    assert_eq!(
        stored(&shadow)["metadata"],
        json!({"reported": {"b": {"timestamp": T0}}})
    );
}

#[test]
fn an_empty_shadow_is_valid() {
    let shadow = shadow_from(&[
        json!({"state": {"reported": {"a": 1}}}),
        json!({"state": {"reported": null}}),
    ]);
    assert_eq!(shadow.desired(), None);
    assert_eq!(shadow.reported(), None);
    assert_eq!(
        get(&shadow),
        json!({"state": {}, "metadata": {}, "version": 2, "timestamp": T2})
    );
    let next = update(Some(&shadow), json!({"state": {}}), T1);
    assert_eq!(next.shadow.version(), 3);
}

#[test]
fn arrays_are_replaced_whole_with_metadata_per_element() {
    // AWS's array example: three colours, then one.
    let shadow = shadow_from(&[
        json!({"state": {"desired": {"colors": ["RED", "GREEN", "BLUE"]}}}),
        json!({"state": {"desired": {"colors": ["RED"]}}}),
    ]);
    assert_eq!(
        stored(&shadow)["state"],
        json!({"desired": {"colors": ["RED"]}})
    );
    assert_eq!(
        stored(&shadow)["metadata"],
        json!({"desired": {"colors": [{"timestamp": T0 + 1}]}})
    );

    let outcome = update(
        None,
        json!({"state": {"reported": {"zones": [{"id": 1, "on": true}, [2, 3], []]}}}),
        T1,
    );
    assert_eq!(
        stored(&outcome.shadow)["metadata"],
        json!({"reported": {"zones": [
            {"id": {"timestamp": T1}, "on": {"timestamp": T1}},
            [{"timestamp": T1}, {"timestamp": T1}],
            []
        ]}})
    );
}

#[test]
fn a_value_may_change_between_scalar_object_and_array() {
    let shadow = shadow_from(&[
        json!({"state": {"reported": {"a": 1, "b": {"x": 1}, "c": [1]}}}),
        json!({"state": {"reported": {"a": {"y": 2}, "b": 3, "c": {"z": 4}}}}),
    ]);
    let t = T0 + 1;
    assert_eq!(
        stored(&shadow)["metadata"],
        json!({"reported": {
            "a": {"y": {"timestamp": t}},
            "b": {"timestamp": t},
            "c": {"z": {"timestamp": t}}
        }})
    );
}

#[test]
fn an_update_that_changes_nothing_still_bumps_the_version() {
    let first = update(None, json!({"state": {"reported": {"a": 1}}}), T0);
    let again = update(
        Some(&first.shadow),
        json!({"state": {"reported": {"a": 1}}}),
        T1,
    );
    assert_eq!(again.shadow.version(), 2);
    assert_eq!(again.shadow.reported(), first.shadow.reported());
    // The value was written again, so its timestamp moves.
    assert_eq!(
        stored(&again.shadow)["metadata"]["reported"]["a"]["timestamp"],
        json!(T1)
    );
}

#[test]
fn a_version_that_differs_from_the_current_one_is_a_conflict() {
    // AWS's optimistic-locking example, in our values: version 10; 9 refused, 10 accepted.
    let mut shadow = shadow_from(&[json!({"state": {"desired": {"colors": ["RED", "GREEN"]}}})]);
    for i in 2..=10 {
        shadow = update(Some(&shadow), json!({"state": {}}), T0 + i).shadow;
    }
    assert_eq!(shadow.version(), 10);
    let stale = request(json!({"state": {"desired": {"colors": ["BLUE"]}}, "version": 9}));
    let refused = apply_update(Some(&shadow), 0, &stale, T1, &limits()).unwrap_err();
    assert_eq!(refused, ShadowError::new(409, "Version conflict"));
    assert_eq!(
        parsed(&refused.to_json(Some("lock-1"), T1)),
        json!({"code": 409, "message": "Version conflict", "timestamp": T1, "clientToken": "lock-1"})
    );

    let current = request(json!({"state": {"desired": {"colors": ["BLUE"]}}, "version": 10}));
    let accepted = apply_update(Some(&shadow), 0, &current, T1, &limits()).unwrap();
    assert_eq!(accepted.shadow.version(), 11);
    assert_eq!(
        stored(&accepted.shadow)["state"],
        json!({"desired": {"colors": ["BLUE"]}})
    );
}

#[test]
fn without_a_shadow_the_version_is_compared_with_absent_version() {
    let with_version = |v: u64| request(json!({"state": {}, "version": v}));
    assert!(apply_update(None, 0, &with_version(0), T0, &limits()).is_ok());
    assert_eq!(
        apply_update(None, 0, &with_version(1), T0, &limits())
            .unwrap_err()
            .code,
        409
    );
    let recreated = apply_update(None, 7, &with_version(7), T0, &limits()).unwrap();
    assert_eq!(recreated.shadow.version(), 8);
}

#[test]
fn the_merged_state_is_limited_to_8192_bytes_without_metadata() {
    // `{"a":"…"}` is 8 bytes plus the string; `{"b":"…"}` likewise.
    let fill = |bytes: usize| "x".repeat(bytes - 8);
    let full = update(None, json!({"state": {"desired": {"a": fill(4096)}}}), T0);
    let at_limit = update(
        Some(&full.shadow),
        json!({"state": {"reported": {"b": fill(4096)}}}),
        T1,
    );
    assert_eq!(at_limit.shadow.version(), 2);

    // The request alone is small; merged with the stored state it is one byte over.
    let over = request(json!({"state": {"reported": {"b": fill(4097)}}}));
    let refused = apply_update(Some(&full.shadow), 0, &over, T1, &limits()).unwrap_err();
    assert_eq!(
        refused,
        ShadowError::new(413, "The payload exceeds the maximum size allowed")
    );

    // Freeing space in the same update makes room.
    let swap = request(json!({"state": {"desired": null, "reported": {"b": fill(8000)}}}));
    assert!(apply_update(Some(&full.shadow), 0, &swap, T1, &limits()).is_ok());
}

#[test]
fn the_state_limit_is_configurable() {
    let small = Limits {
        max_state_bytes: 16,
        ..Limits::default()
    };
    let fits = request(json!({"state": {"reported": {"abc": 12345}}})); // 13 bytes
    assert!(apply_update(None, 0, &fits, T0, &small).is_ok());
    let too_big = request(json!({"state": {"reported": {"abc": 12345}, "desired": {"d": 1}}}));
    assert_eq!(
        apply_update(None, 0, &too_big, T0, &small)
            .unwrap_err()
            .code,
        413
    );
}

// ---- delta ----

#[test]
fn the_delta_holds_desired_keys_missing_or_different_in_reported() {
    // AWS's delta example, in our values: `engine` is reported only, so absent from delta.
    let shadow = shadow_from(&[
        json!({"state": {"reported": {"color": "GREEN", "engine": "ON"}}}),
        json!({"state": {"desired": {"color": "RED", "mode": "STOP"}}}),
    ]);
    let t = T0 + 1;
    assert_eq!(
        get(&shadow),
        json!({
            "state": {
                "desired": {"color": "RED", "mode": "STOP"},
                "reported": {"color": "GREEN", "engine": "ON"},
                "delta": {"color": "RED", "mode": "STOP"}
            },
            "metadata": {
                "desired": {"color": {"timestamp": t}, "mode": {"timestamp": t}},
                "reported": {"color": {"timestamp": T0}, "engine": {"timestamp": T0}},
                "delta": {"color": {"timestamp": t}, "mode": {"timestamp": t}}
            },
            "version": 2,
            "timestamp": T2
        })
    );
}

#[test]
fn a_nested_delta_keeps_only_differing_leaves_under_their_path() {
    // AWS's nested example: only `g` differs.
    let shadow = shadow_from(&[
        json!({"state": {"reported": {"lights": {"color": {"r": 255, "g": 0, "b": 255}}}}}),
        json!({"state": {"desired": {"lights": {"color": {"r": 255, "g": 255, "b": 255}}}}}),
    ]);
    assert_eq!(
        get(&shadow)["state"]["delta"],
        json!({"lights": {"color": {"g": 255}}})
    );
    assert_eq!(
        get(&shadow)["metadata"]["delta"],
        json!({"lights": {"color": {"g": {"timestamp": T0 + 1}}}})
    );
}

#[test]
fn arrays_in_the_delta_are_compared_and_copied_whole() {
    let shadow = shadow_from(&[
        json!({"state": {"reported": {"seq": ["RED", "GREEN"], "same": [1, 2]}}}),
        json!({"state": {"desired": {"seq": ["RED", "BLUE"], "same": [1, 2]}}}),
    ]);
    assert_eq!(
        get(&shadow)["state"]["delta"],
        json!({"seq": ["RED", "BLUE"]})
    );
    assert_eq!(
        get(&shadow)["metadata"]["delta"],
        json!({"seq": [{"timestamp": T0 + 1}, {"timestamp": T0 + 1}]})
    );
}

#[test]
fn a_desired_object_replacing_a_reported_scalar_is_in_the_delta_whole() {
    let shadow = shadow_from(&[
        json!({"state": {"reported": {"mode": "auto"}}}),
        json!({"state": {"desired": {"mode": {"fan": 2, "heat": 1}}}}),
    ]);
    assert_eq!(
        get(&shadow)["state"]["delta"],
        json!({"mode": {"fan": 2, "heat": 1}})
    );
}

#[test]
fn numbers_are_compared_by_value() {
    let shadow = shadow_from(&[
        json!({"state": {"reported": {"level": 2, "ratio": 0.5}}}),
        json!({"state": {"desired": {"level": 2.0, "ratio": 0.5}}}),
    ]);
    assert_eq!(get(&shadow)["state"].get("delta"), None);
}

#[test]
fn the_delta_reflects_all_differences_not_only_the_request() {
    let shadow = shadow_from(&[
        json!({"state": {"desired": {"a": 1, "b": 2}, "reported": {"a": 0, "b": 0}}}),
    ]);
    let outcome = update(
        Some(&shadow),
        json!({"state": {"desired": {"c": 3}}, "clientToken": "d"}),
        T1,
    );
    assert_eq!(
        parsed(&outcome.delta.unwrap()),
        json!({
            "state": {"a": 1, "b": 2, "c": 3},
            "metadata": {
                "a": {"timestamp": T0},
                "b": {"timestamp": T0},
                "c": {"timestamp": T1}
            },
            "version": 2,
            "timestamp": T1,
            "clientToken": "d"
        })
    );
}

#[test]
fn the_delta_is_published_only_for_updates_to_desired() {
    let shadow = shadow_from(&[json!({"state": {"desired": {"a": 1, "b": 1}}})]);
    // A report that leaves a difference: no delta message (the get answer still shows it).
    let report = update(Some(&shadow), json!({"state": {"reported": {"a": 1}}}), T1);
    assert_eq!(report.delta, None);
    assert_eq!(get(&report.shadow)["state"]["delta"], json!({"b": 1}));
    // A desired update that leaves no difference: no delta message either.
    let settled = update(
        Some(&report.shadow),
        json!({"state": {"desired": {"b": null}}}),
        T2,
    );
    assert_eq!(settled.delta, None);
    // A desired update that leaves one: published.
    let again = update(
        Some(&settled.shadow),
        json!({"state": {"desired": {"b": 5}}}),
        T2,
    );
    assert_eq!(parsed(&again.delta.unwrap())["state"], json!({"b": 5}));
}

// ---- other answers and errors ----

#[test]
fn get_and_delete_answers_echo_the_client_token() {
    let shadow = shadow_from(&[json!({"state": {"reported": {"a": 1}}})]);
    assert_eq!(
        parsed(&get_document(&shadow, Some("g-1"), T2))["clientToken"],
        json!("g-1")
    );
    // AWS's delete answer, in our values.
    assert_eq!(
        parsed(&delete_document(&shadow, None, T2)),
        json!({"version": 1, "timestamp": T2})
    );
    assert_eq!(
        parsed(&delete_document(&shadow, Some("del-1"), T2)),
        json!({"version": 1, "timestamp": T2, "clientToken": "del-1"})
    );
}

#[test]
fn error_answers_and_constructors() {
    assert_eq!(
        parsed(&ShadowError::internal().to_json(None, T0)),
        json!({"code": 500, "message": "Internal service failure", "timestamp": T0})
    );
    assert_eq!(
        ShadowError::too_many_requests(),
        ShadowError::new(429, "Too Many Requests")
    );
    assert_eq!(
        ShadowError::not_found("lamp-1", None).message,
        "No shadow exists with name: 'lamp-1'"
    );
    assert_eq!(
        ShadowError::not_found("lamp-1", Some("config")),
        ShadowError::new(404, "No shadow exists with name: 'lamp-1~config'")
    );
    assert_eq!(
        ShadowError::payload_too_large().to_string(),
        "413 The payload exceeds the maximum size allowed"
    );
}

#[test]
fn the_stored_form_round_trips_and_garbage_is_internal() {
    let shadow = shadow_from(&[
        json!({"state": {"desired": {"a": [1, {"b": "x"}]}, "reported": {"c": {"d": false}}}}),
    ]);
    assert_eq!(Shadow::from_bytes(&shadow.to_bytes()).unwrap(), shadow);
    assert_eq!(shadow.timestamp(), T0);
    for garbage in [
        &b""[..],
        b"{}",
        b"[]",
        b"{\"state\":{},\"metadata\":{},\"version\":-1,\"timestamp\":0}",
    ] {
        assert_eq!(
            Shadow::from_bytes(garbage).unwrap_err(),
            ShadowError::internal()
        );
    }
}

#[test]
fn a_stored_shadow_with_inconsistent_metadata_survives_updates() {
    // Metadata that does not mirror the state (a hand-edited store): updates must not panic
    // and must leave the updated keys consistent.
    let odd = Shadow::from_bytes(
        br#"{"state":{"reported":{"a":{"b":1},"c":2,"f":{"g":1}}},
            "metadata":{"reported":{"a":{"timestamp":1},"c":[],"f":7}},
            "version":3,"timestamp":1}"#,
    )
    .unwrap();
    let outcome = update(
        Some(&odd),
        json!({"state": {"reported": {"a": {"e": 5}, "c": 4, "f": {"h": 2}}}}),
        T1,
    );
    let after = stored(&outcome.shadow);
    assert_eq!(
        after["state"]["reported"],
        json!({"a": {"b": 1, "e": 5}, "c": 4, "f": {"g": 1, "h": 2}})
    );
    assert_eq!(
        after["metadata"]["reported"]["a"]["e"],
        json!({"timestamp": T1})
    );
    assert_eq!(after["metadata"]["reported"]["c"], json!({"timestamp": T1}));
    // Metadata that is not even an object restarts; the state it described stays.
    assert_eq!(
        after["metadata"]["reported"]["f"],
        json!({"h": {"timestamp": T1}})
    );
}
