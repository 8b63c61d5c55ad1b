#![allow(clippy::unwrap_used)]

use super::*;

pub(crate) fn ctx() -> Ctx {
    Ctx {
        now_ms: 1_700_000_000_000,
        arns: Arns {
            region: "us-east-1".into(),
            account_id: "123456789012".into(),
        },
    }
}

/// Runs an operation and applies its changes, as [`Registry::write`] does after the commit.
pub(crate) fn run<T>(
    state: &mut RegistryState,
    op: impl FnOnce(&RegistryState, &Ctx) -> Result<(T, Vec<Change>), RegistryError>,
) -> Result<T, RegistryError> {
    let (answer, changes) = op(state, &ctx())?;
    // Every change must be storable.
    for change in &changes {
        change.write_op().unwrap();
    }
    state.apply(&changes);
    Ok(answer)
}

#[test]
fn create_thing_is_idempotent_and_refuses_a_different_one() {
    let mut s = RegistryState::default();
    let req = |attrs: &[(&str, &str)]| CreateThingRequest {
        thing_name: "lamp".into(),
        attribute_payload: Some(AttributePayload {
            attributes: attrs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            merge: false,
        }),
        ..Default::default()
    };
    let first = run(&mut s, |s, c| create_thing(s, c, req(&[("room", "1")]))).unwrap();
    assert_eq!(
        first.thing_arn,
        "arn:aws:iot:us-east-1:123456789012:thing/lamp"
    );
    let again = run(&mut s, |s, c| create_thing(s, c, req(&[("room", "1")]))).unwrap();
    assert_eq!(first, again);
    let err = run(&mut s, |s, c| create_thing(s, c, req(&[("room", "2")]))).unwrap_err();
    assert_eq!(err.aws_error_code(), "ResourceAlreadyExistsException");
    let d = describe_thing(&s, &ctx(), "lamp").unwrap();
    assert_eq!(d.version, 1);
    assert_eq!(d.thing_id, first.thing_id);
}

#[test]
fn names_and_attributes_are_validated() {
    let mut s = RegistryState::default();
    for bad in ["", "a b", "x/y", &"n".repeat(129)] {
        let req = CreateThingRequest {
            thing_name: bad.to_owned(),
            ..Default::default()
        };
        let err = run(&mut s, |s, c| create_thing(s, c, req)).unwrap_err();
        assert_eq!(err.http_status(), 400, "{bad:?}");
    }
    let too_many = (0..4).map(|i| (format!("a{i}"), "v".to_owned())).collect();
    let req = CreateThingRequest {
        thing_name: "t".into(),
        attribute_payload: Some(AttributePayload {
            attributes: too_many,
            merge: false,
        }),
        ..Default::default()
    };
    assert!(run(&mut s, |s, c| create_thing(s, c, req)).is_err());
}

#[test]
fn records_reload_to_the_same_state() {
    let mut s = RegistryState::default();
    let mut all = Vec::new();
    for name in ["a", "b:c", "d_e-f"] {
        let req = CreateThingRequest {
            thing_name: name.into(),
            ..Default::default()
        };
        let (_, changes) = create_thing(&s, &ctx(), req).unwrap();
        s.apply(&changes);
        all.extend(changes);
    }
    all.push(Change::GroupMembership {
        group: "g".into(),
        thing: "a".into(),
        member: true,
    });
    all.push(Change::ThingPrincipal {
        thing: "a".into(),
        principal: "arn:aws:iot:us-east-1:123456789012:cert/00".into(),
        new: Some(ThingPrincipal {
            thing: "a".into(),
            principal: "arn:aws:iot:us-east-1:123456789012:cert/00".into(),
            exclusive: true,
        }),
    });
    all.push(Change::RegistrationCode {
        new: Some("abc".into()),
    });
    s.apply(&all[3..]);
    let records: Vec<RegistryRecord> = all
        .iter()
        .map(|c| match c.write_op().unwrap() {
            WriteOp::PutRegistry(r) => r,
            other => panic!("{other:?}"),
        })
        .collect();
    let reloaded = RegistryState::from_records(&records).unwrap();
    assert_eq!(reloaded.things, s.things);
    assert_eq!(reloaded.group_things, s.group_things);
    assert_eq!(reloaded.thing_groups_of, s.thing_groups_of);
    assert_eq!(reloaded.thing_principals, s.thing_principals);
    assert_eq!(reloaded.principal_things, s.principal_things);
    assert_eq!(reloaded.registration_code, s.registration_code);
}

#[test]
fn pages_follow_tokens() {
    let map: BTreeMap<String, u32> = (0..5).map(|i| (format!("k{i}"), i)).collect();
    let (first, token) = page(after_token(&map, None).unwrap(), 2);
    assert_eq!(first, vec![&0, &1]);
    let (second, token) = page(after_token(&map, token.as_deref()).unwrap(), 2);
    assert_eq!(second, vec![&2, &3]);
    let (third, token) = page(after_token(&map, token.as_deref()).unwrap(), 2);
    assert_eq!(third, vec![&4]);
    assert!(token.is_none());
    assert!(after_token(&map, Some("zz")).is_err());
    assert!(after_token(&map, Some("f")).is_err());
}
