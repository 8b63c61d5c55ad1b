#![allow(clippy::unwrap_used)]

use std::time::Duration;

use ferrocore_policy::{Action, PolicySet, Request};
use proptest::prelude::*;

use super::acl::{covers, intersects, is_valid_filter};
use super::*;

/// Made by `mosquitto_passwd` 2.0.11: `-c -b` (its default, `$7$`), `-H sha512`,
/// `-H sha512-pbkdf2`, and an empty password.
const MOSQUITTO_PASSWD: &str = "\
alice:$7$101$Q9aK45bXsaD+U2G1$jVostBTrfMFADKcHVEhEWPwucJFrTRirW+yJ70CB9DCMSj6Ra85UxUmp2TqkAnIq02AcpCdTDyRDwgPbhPmO0A==
bob:$6$XuGzV1TbQjOT9LsT$2/5j0mGbXObp+5KlTulhIRNMmsBaGYiB8OgMdw2NvqPQBILlRcWQLWmfMUTe01QxoRvq5C3TXADJ4X2C9eRlDA==
carol:$7$101$QdPsFlHYWaih0+LK$HPFcXL68wLp8oST3zplSudrVVwdEKw4nJlvj/PmIVb5cer8N2Hx3hswrFrtcidMBV60sbjasz6jinP4OT2SrRw==
dave@example.com:$7$101$VzCKU/iUtjgztT4k$8JN/gHWf8bIOTmmI7p5aZcK9IE1NA2kDhDOSSh0brr5S9y6qkyo2Nbv+v+xw9cEDEYgY/kmHZkGWUWDBN4kTKA==
";

#[test]
fn mosquitto_passwd_hashes_verify() {
    let users = parse_password_file(MOSQUITTO_PASSWD).unwrap();
    for (user, right, wrong) in [
        ("alice", "secret pw", "secret pw "),
        ("bob", "hunter2", "hunter3"),
        ("carol", "ünïcode", "unicode"),
        ("dave@example.com", "", "x"),
    ] {
        let hash = &users[user];
        assert!(hash.verify(right.as_bytes()), "{user}");
        assert!(!hash.verify(wrong.as_bytes()), "{user}");
    }
    assert!(matches!(users["bob"], PasswordHash::Sha512 { .. }));
    // Mosquitto compares C strings: a NUL never matches.
    assert!(!users["bob"].verify(b"hunter2\0"));
    assert!(!users["alice"].verify(b"secret pw\0x"));
}

#[test]
fn argon2id_round_trip_and_bounds() {
    let phc = hash_argon2id(b"pw").unwrap();
    assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
    let hash = PasswordHash::parse(&phc).unwrap();
    assert!(hash.verify(b"pw"));
    assert!(!hash.verify(b"pw2"));
    // Mosquitto's newest default parameters are within bounds.
    let salt_hash = phc.rsplitn(3, '$').take(2).collect::<Vec<_>>();
    let mosquitto = format!(
        "$argon2id$v=19$m=47104,t=1,p=1${}${}",
        salt_hash[1], salt_hash[0]
    );
    assert!(PasswordHash::parse(&mosquitto).is_ok());
    for absurd in ["m=4194304,t=1,p=1", "m=19456,t=100,p=1", "m=19456,t=1,p=64"] {
        let text = format!("$argon2id$v=19${absurd}${}${}", salt_hash[1], salt_hash[0]);
        assert_eq!(
            PasswordHash::parse(&text).unwrap_err(),
            HashError::Argon2Costs,
            "{absurd}"
        );
    }
    assert!(PasswordHash::parse("$argon2i$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaA").is_err());
}

#[test]
fn malformed_hashes_are_refused_without_showing_them() {
    let salt = "Q9aK45bXsaD+U2G1";
    let hash =
        "jVostBTrfMFADKcHVEhEWPwucJFrTRirW+yJ70CB9DCMSj6Ra85UxUmp2TqkAnIq02AcpCdTDyRDwgPbhPmO0A==";
    for bad in [
        format!("$7$0${salt}${hash}"),
        format!("$7$1000001${salt}${hash}"),
        format!("$7$x${salt}${hash}"),
        format!("$7$101$!!${hash}"),
        format!("$7$101${salt}$c2hvcnQ="),
        format!("$6${salt}"),
        "$5$abc$def".to_owned(),
        "plaintext".to_owned(),
    ] {
        assert!(PasswordHash::parse(&bad).is_err(), "{bad}");
    }
    let text = format!("# users\n\nalice:$7$101${salt}${hash}\nbob:$7$101${salt}$c2hvcnQ=\n");
    let e = parse_password_file(&text).unwrap_err();
    assert_eq!(e.line, 4);
    assert!(!e.to_string().contains("c2hvcnQ"), "{e}");
    assert_eq!(parse_password_file("nocolon\n").unwrap_err().line, 1);
    assert_eq!(
        parse_password_file(&format!("a:$7$101${salt}${hash}\na:$7$101${salt}${hash}"))
            .unwrap_err()
            .line,
        2
    );
}

#[test]
fn acl_files_parse_as_mosquitto_reads_them() {
    let acl = Acl::parse(
        "# comment\n\
         topic read public/#\n\
         \n\
         user alice\n\
         topic readwrite alice/#\n\
         topic deny alice/secret\n\
         topic write   with spaces/x  \n\
         topic read\n\
         pattern write devices/%c/#\n\
         user bob smith\n\
         topic bob/+\n",
    )
    .unwrap();
    assert_eq!(acl.anonymous.len(), 1);
    let alice = &acl.users["alice"];
    assert_eq!(alice.len(), 4);
    assert_eq!(alice[1].access, None);
    assert_eq!(alice[2].filter, "with spaces/x");
    // `topic read` alone is readwrite on the topic `read`.
    assert_eq!(alice[3].filter, "read");
    assert_eq!(
        alice[3].access.map(|a| (a.read, a.write)),
        Some((true, true))
    );
    assert_eq!(acl.users["bob smith"][0].filter, "bob/+");
    assert_eq!(acl.patterns[0].line, 9);
    for (bad, line) in [
        ("user alice\ntopic maybe a/b\n", 2),
        ("topic read a/b#\n", 1),
        ("topic read a/#/b\n", 1),
        ("user\n", 1),
        ("topic\n", 1),
        ("  # indented comment\n", 1),
        ("\ttopic read a\n", 1),
        ("allow a\n", 1),
    ] {
        assert_eq!(Acl::parse(bad).unwrap_err().line, line, "{bad:?}");
    }
}

#[test]
fn filter_algebra() {
    assert!(is_valid_filter("a/+/#"));
    assert!(!is_valid_filter("a/b+"));
    assert!(!is_valid_filter(""));
    assert!(!is_valid_filter(&"a/".repeat(201)));
    assert!(covers("#", "a/+/b"));
    assert!(covers("a/#", "a"));
    assert!(covers("a/+", "a/b"));
    assert!(!covers("a/+", "a/#"));
    assert!(!covers("#", "$SYS/x"));
    assert!(!covers("+/x", "$a/x"));
    assert!(covers("$a/#", "$a/x/+"));
    assert!(intersects("a/+", "+/b"));
    assert!(intersects("a/#", "a"));
    assert!(!intersects("a/+", "a"));
    assert!(!intersects("#", "$SYS/#"));
    assert!(!intersects("a/b", "a/c"));
}

// ---- Mosquitto's decision, as a reference ---------------------------------------------------

/// MQTT matching as `mosquitto_topic_matches_sub` does it for valid filters and topics.
fn matches(filter: &str, topic: &str) -> bool {
    if topic.starts_with('$') != filter.starts_with('$') {
        return false;
    }
    fn go(f: &[&str], t: &[&str]) -> bool {
        match (f.split_first(), t.split_first()) {
            (Some((&"#", _)), _) | (None, None) => true,
            (Some((&"+", f)), Some((_, t))) => go(f, t),
            (Some((a, f)), Some((b, t))) if a == b => go(f, t),
            _ => false,
        }
    }
    go(
        &filter.split('/').collect::<Vec<_>>(),
        &topic.split('/').collect::<Vec<_>>(),
    )
}

/// `mosquitto_acl_check_default` for a client with a username.
fn mosquitto_allows(acl: &Acl, username: &str, client_id: &str, topic: &str, write: bool) -> bool {
    let wanted = |e: &Entry| {
        e.access
            .is_some_and(|a| if write { a.write } else { a.read })
    };
    let own = acl.users.get(username).cloned().unwrap_or_default();
    // Denies first (Mosquitto puts them at the front of each list).
    let (own_denies, own_allows): (Vec<_>, Vec<_>) = own.iter().partition(|e| e.access.is_none());
    for e in own_denies.into_iter().chain(own_allows) {
        if matches(&e.filter, topic) {
            if e.access.is_none() {
                return false;
            }
            if wanted(e) {
                return true;
            }
        }
    }
    if acl.patterns.is_empty() {
        return false;
    }
    if username.contains(['+', '#']) || client_id.contains(['+', '#']) {
        return false;
    }
    let (denies, allows): (Vec<_>, Vec<_>) = acl.patterns.iter().partition(|e| e.access.is_none());
    for e in denies.into_iter().chain(allows) {
        let filter = e.filter.replace("%c", client_id).replace("%u", username);
        if matches(&filter, topic) {
            if e.access.is_none() {
                return false;
            }
            if wanted(e) {
                return true;
            }
        }
    }
    false
}

fn arns() -> Arns {
    Arns {
        region: "us-east-1".into(),
        account_id: "123456789012".into(),
    }
}

fn policy_allows(rules: &Rules, client_id: &str, topic: &str, write: bool) -> bool {
    let docs = documents::documents(rules, &arns(), client_id).unwrap();
    let set = PolicySet::parse(docs.iter().map(|d| ("acl", d.as_str()))).unwrap();
    let arns = ferrocore_policy::Arns::new("us-east-1", "123456789012");
    let req = Request::new().with_client_id(client_id);
    let resource = arns.topic(topic);
    if write {
        let publish = set.evaluate(Action::Publish, &resource, &req).is_allowed();
        let retain = set
            .evaluate(Action::RetainPublish, &resource, &req)
            .is_allowed();
        assert_eq!(publish, retain);
        publish
    } else {
        set.evaluate(Action::Receive, &resource, &req).is_allowed()
    }
}

const EXAMPLE_ACL: &str = "\
topic read public/#
user alice
topic readwrite alice/#
topic deny alice/secret/#
topic read sensors/+/temp
user admin
topic readwrite #
pattern readwrite devices/%c/#
pattern write users/%u/out
pattern deny devices/%c/locked
pattern read $SYS/%u/#
";

#[test]
fn example_acl_decides_as_mosquitto() {
    let acl = Acl::parse(EXAMPLE_ACL).unwrap();
    let cases = [
        ("alice", "c1", "alice/x", true, true),
        ("alice", "c1", "alice/secret/x", true, false),
        ("alice", "c1", "alice/secret", false, false),
        ("alice", "c1", "sensors/s1/temp", false, true),
        ("alice", "c1", "sensors/s1/temp", true, false),
        ("alice", "c1", "sensors/s1/x/temp", false, false),
        ("alice", "c1", "public/x", false, false),
        ("alice", "c1", "devices/c1/a/b", true, true),
        ("alice", "c1", "devices/c1", false, true),
        ("alice", "c1", "devices/c2/a", true, false),
        ("alice", "c1", "devices/c1/locked", true, false),
        ("alice", "c1", "users/alice/out", true, true),
        ("alice", "c1", "users/alice/out", false, false),
        ("alice", "c1", "$SYS/alice/x", false, true),
        // admin's own `#` wins over the pattern deny (never reached) but not `$` topics.
        ("admin", "c1", "devices/c1/locked", true, true),
        ("admin", "c1", "$SYS/x", false, false),
        // Dangerous client ids lose the patterns, not the user's own lines.
        ("alice", "c+", "devices/c+/x", true, false),
        ("alice", "c#", "alice/x", true, true),
        // Escaped, literal: a client id with policy wildcards.
        ("alice", "c*", "devices/c*/x", true, true),
        ("alice", "c*", "devices/cX/x", true, false),
        ("alice", "c$1", "devices/c$1/x", true, true),
        ("bob", "c?", "devices/c?/x", true, true),
        ("bob", "c?", "devices/cc/x", true, false),
    ];
    for (user, client, topic, write, expected) in cases {
        let what = format!("{user} {client} {topic} write={write}");
        assert_eq!(
            mosquitto_allows(&acl, user, client, topic, write),
            expected,
            "reference: {what}"
        );
        let rules = acl.rules(user, client);
        assert!(rules.narrowed.is_empty(), "{what}");
        assert_eq!(
            policy_allows(&rules, client, topic, write),
            expected,
            "policy: {what}"
        );
    }
}

#[test]
fn partly_overlapping_pattern_denies_are_narrower_and_named() {
    let acl = Acl::parse("user alice\ntopic read a/+/x\npattern deny a/b/#\n").unwrap();
    let rules = acl.rules("alice", "c1");
    assert_eq!(rules.narrowed, [3]);
    assert!(mosquitto_allows(&acl, "alice", "c1", "a/b/x", false));
    assert!(!policy_allows(&rules, "c1", "a/b/x", false));
}

#[test]
fn documents_fit_aws_limits() {
    let mut text = "user alice\n".to_owned();
    for i in 0..60 {
        text.push_str(&format!("topic readwrite some/longer/topic/name/{i}/+/#\n"));
    }
    let acl = Acl::parse(&text).unwrap();
    let docs = documents::documents(&acl.rules("alice", "c1"), &arns(), "c1").unwrap();
    assert!(docs.len() > 1);
    for d in &docs {
        assert!(d.len() <= 2048);
        ferrocore_policy::parse(d).unwrap();
    }
    let long = format!("user alice\ntopic {}\n", "x".repeat(3000));
    let acl = Acl::parse(&long).unwrap();
    assert!(documents::documents(&acl.rules("alice", "c1"), &arns(), "c1").is_err());
}

fn level() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("a".to_owned()),
        Just("b".to_owned()),
        Just(String::new()),
        Just("$s".to_owned()),
        Just("alice".to_owned()),
        Just("c1".to_owned()),
        Just("c*".to_owned()),
    ]
}

fn acl_filter() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(
            prop_oneof![
                4 => level(),
                2 => Just("+".to_owned()),
                1 => Just("%u".to_owned()),
                1 => Just("%c".to_owned()),
            ],
            0..3,
        ),
        any::<bool>(),
    )
        .prop_map(|(mut levels, hash)| {
            if hash || levels.is_empty() {
                levels.push("#".to_owned());
            }
            levels.join("/")
        })
}

fn acl_line() -> impl Strategy<Value = String> {
    (
        prop_oneof![Just("topic"), Just("pattern")],
        prop_oneof![Just("read"), Just("write"), Just("readwrite"), Just("deny")],
        acl_filter(),
    )
        .prop_map(|(kind, access, filter)| format!("{kind} {access} {filter}"))
}

fn acl_text() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(acl_line(), 0..3),
        prop::collection::vec(acl_line(), 0..5),
        prop::collection::vec(acl_line(), 0..3),
    )
        .prop_map(|(anonymous, alice, bob)| {
            format!(
                "{}\nuser alice\n{}\nuser bob\n{}\n",
                anonymous.join("\n"),
                alice.join("\n"),
                bob.join("\n")
            )
        })
}

fn topic() -> impl Strategy<Value = String> {
    prop::collection::vec(level(), 1..4).prop_map(|l| l.join("/"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    /// The policies never allow what Mosquitto refuses, and allow all it allows unless the
    /// rules say they are narrower.
    #[test]
    fn policies_decide_as_mosquitto(
        text in acl_text(),
        username in prop_oneof![Just("alice"), Just("bob"), Just("carol"), Just("a+")],
        client_id in prop_oneof![Just("c1"), Just("c*"), Just("$s"), Just("c#"), Just("alice")],
        topics in prop::collection::vec(topic(), 1..8),
        write in any::<bool>(),
    ) {
        let acl = Acl::parse(&text).unwrap();
        let rules = acl.rules(username, client_id);
        for topic in &topics {
            let reference = mosquitto_allows(&acl, username, client_id, topic, write);
            let policy = policy_allows(&rules, client_id, topic, write);
            if reference != policy {
                prop_assert!(!policy && !rules.narrowed.is_empty(),
                    "{text}\n{username} {client_id} {topic} write={write}: mosquitto {reference}, policy {policy}");
            }
        }
    }

    #[test]
    fn covers_and_intersects_agree_with_topics(
        a in acl_filter(), b in acl_filter(), topics in prop::collection::vec(topic(), 1..10)
    ) {
        for t in &topics {
            if matches(&a, t) && matches(&b, t) {
                prop_assert!(intersects(&a, &b), "{a} {b} {t}");
            }
            if matches(&b, t) && covers(&a, &b) {
                prop_assert!(matches(&a, t), "{a} covers {b} but not {t}");
            }
        }
    }
}

// ---- the function ------------------------------------------------------------------------------

fn request(username: &str, password: &str, client_id: &str) -> Value {
    json!({"protocols": ["tls", "mqtt"], "signatureVerified": false,
           "protocolData": {"mqtt": {"username": username,
                                     "password": BASE64.encode(password),
                                     "clientId": client_id}}})
}

async fn call(f: &PasswordFunction, req: &Value) -> Value {
    serde_json::from_slice(&f.invoke(req).await.unwrap()).unwrap()
}

fn function(dir: &Path, named: &[&str]) -> PasswordFunction {
    let mut options = toml::Table::new();
    options.insert("password_file".into(), "passwd".into());
    options.insert("acl_file".into(), "acl".into());
    options.insert(
        "policies".into(),
        toml::Value::Array(named.iter().map(|n| (*n).into()).collect()),
    );
    let settings = Settings::from_options(&options, dir).unwrap();
    let lookup: NamedPolicies = Box::new(|name| {
        match name {
        "Extra" => Ok(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Publish","Resource":"arn:aws:iot:us-east-1:123456789012:topic/extra/${ferrocore:Context.username}"}]}"#.to_owned()),
        _ => Err("no such policy".to_owned()),
    }
    });
    PasswordFunction::new(settings, arns(), lookup, Duration::ZERO).unwrap()
}

#[tokio::test]
async fn answers_from_the_files_and_reloads_them() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("passwd"), MOSQUITTO_PASSWD).unwrap();
    std::fs::write(dir.path().join("acl"), EXAMPLE_ACL).unwrap();
    let f = function(dir.path(), &["Extra"]);

    let ok = call(
        &f,
        &request("alice?x-amz-customauthorizer-name=pw", "secret pw", "c1"),
    )
    .await;
    assert_eq!(ok["isAuthenticated"], true);
    assert_eq!(ok["principalId"], "alice");
    assert_eq!(ok["context"]["username"], "alice");
    assert_eq!(ok["refreshAfterInSeconds"], 60);
    let answer = ferrocore_identity::custom_auth::AuthorizerAnswer::from_json_with(
        ok.to_string().as_bytes(),
        ferrocore_identity::custom_auth::AnswerRules::BuiltIn,
    )
    .unwrap();
    let set = answer.policy_set();
    let arns = ferrocore_policy::Arns::new("us-east-1", "123456789012");
    let req = Request::new().with_client_id("c1");
    assert!(
        set.evaluate(Action::Connect, &arns.client("c1"), &req)
            .is_allowed()
    );
    assert!(
        !set.evaluate(Action::Connect, &arns.client("c2"), &req)
            .is_allowed()
    );
    assert!(
        set.evaluate(Action::Subscribe, &arns.topic_filter("#"), &req)
            .is_allowed()
    );
    assert!(
        set.evaluate(Action::Publish, &arns.topic("alice/x"), &req)
            .is_allowed()
    );
    assert!(
        !set.evaluate(Action::Publish, &arns.topic("bob/x"), &req)
            .is_allowed()
    );

    for (user, pw) in [("alice", "wrong"), ("nobody", "secret pw"), ("", "x")] {
        let no = call(&f, &request(user, pw, "c1")).await;
        assert_eq!(no["isAuthenticated"], false, "{user}");
        assert!(no.get("policyDocuments").is_none());
    }
    let weird = call(&f, &request("dave@example.com", "", "c1")).await;
    assert_eq!(weird["principalId"], "dave@example.com");

    // A new user and a changed ACL, without a restart.
    let argon = hash_argon2id(b"new pw").unwrap();
    std::fs::write(
        dir.path().join("passwd"),
        format!("{MOSQUITTO_PASSWD}erin/x:{argon}\n"),
    )
    .unwrap();
    std::fs::write(dir.path().join("acl"), "user erin/x\ntopic write e/#\n").unwrap();
    let erin = call(&f, &request("erin/x", "new pw", "c9")).await;
    assert_eq!(erin["isAuthenticated"], true);
    assert!(erin["principalId"].as_str().unwrap().starts_with('u'));
    assert_eq!(erin["context"]["username"], "erin/x");
    let docs = erin["policyDocuments"].to_string();
    assert!(docs.contains("topic/e/${ferrocore:#}"), "{docs}");

    // A broken file keeps the previous one in force.
    std::fs::write(dir.path().join("passwd"), "erin/x $7$nonsense\n").unwrap();
    std::fs::write(dir.path().join("acl"), "topic maybe x\n").unwrap();
    let still = call(&f, &request("erin/x", "new pw", "c9")).await;
    assert_eq!(still["isAuthenticated"], true);
    assert_eq!(still["policyDocuments"].to_string(), docs);
}

#[test]
fn options_are_checked() {
    let base = Path::new("/etc/ferrocore");
    let table = |s: &str| s.parse::<toml::Table>().unwrap();
    let s =
        Settings::from_options(&table("password_file = \"p\"\npolicies = [\"A\"]"), base).unwrap();
    assert_eq!(s.password_file, base.join("p"));
    assert_eq!(s.refresh_after, 60);
    for (bad, says) in [
        ("acl_file = \"a\"", "password_file is required"),
        ("password_file = \"p\"", "give acl_file"),
        (
            "password_file = \"p\"\nacl_file = \"a\"\nrefresh_after = 0",
            "refresh_after",
        ),
        (
            "password_file = \"p\"\nacl_file = \"a\"\ncolour = 1",
            "unknown option `colour`",
        ),
        (
            "password_file = \"p\"\npolicies = \"A\"",
            "policies must be a list",
        ),
    ] {
        let e = Settings::from_options(&table(bad), base).unwrap_err();
        assert!(e.contains(says), "{bad}: {e}");
    }
}

#[test]
fn principals() {
    assert_eq!(principal_id("alice"), "alice");
    assert_eq!(principal_id("auth0|abc"), "auth0|abc");
    for odd in ["a/b", "a b", "a+", "ünï", &"x".repeat(129)] {
        let p = principal_id(odd);
        assert_eq!(p.len(), 33, "{odd}");
        assert!(p.chars().all(|c| c.is_ascii_alphanumeric()));
    }
}

#[tokio::test]
async fn a_changed_password_is_checked_again_after_a_reload() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("passwd"), MOSQUITTO_PASSWD).unwrap();
    std::fs::write(dir.path().join("acl"), EXAMPLE_ACL).unwrap();
    let f = function(dir.path(), &[]);
    for _ in 0..2 {
        // The second answer comes from the remembered verification.
        let ok = call(&f, &request("alice", "secret pw", "c1")).await;
        assert_eq!(ok["isAuthenticated"], true);
    }
    let wrong = call(&f, &request("alice", "secret pw!", "c1")).await;
    assert_eq!(
        wrong["isAuthenticated"], false,
        "only the remembered password"
    );

    let argon = hash_argon2id(b"rotated").unwrap();
    std::fs::write(dir.path().join("passwd"), format!("alice:{argon}\n")).unwrap();
    let old = call(&f, &request("alice", "secret pw", "c1")).await;
    assert_eq!(
        old["isAuthenticated"], false,
        "the old password after the change"
    );
    let new = call(&f, &request("alice", "rotated", "c1")).await;
    assert_eq!(new["isAuthenticated"], true);
}

#[test]
fn the_generation_changes_when_a_file_is_read_again() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("passwd"), MOSQUITTO_PASSWD).unwrap();
    std::fs::write(dir.path().join("acl"), EXAMPLE_ACL).unwrap();
    let f = function(dir.path(), &[]);
    let first = f.generation();
    assert_eq!(f.generation(), first, "nothing changed");
    // A removed user: cached answers for it must not be used any more.
    std::fs::write(dir.path().join("passwd"), "").unwrap();
    let second = f.generation();
    assert_ne!(second, first);
    std::fs::write(dir.path().join("acl"), "user alice\ntopic read a/#\n").unwrap();
    assert_ne!(f.generation(), second);
}
