//! [`Rules`] as IoT policy documents of at most AWS's size, topic filters written with the
//! `${ferrocore:+}` / `${ferrocore:#}` extension so that they match exactly as MQTT does.

use ferrocore_identity::registry::Arns;
use serde_json::{Value, json};

use super::acl::{Access, Rules};

/// AWS's limit on a policy document's characters (not counting whitespace).
const MAX_DOCUMENT_CHARS: usize = 2048;

const PUBLISH: [&str; 2] = ["iot:Publish", "iot:RetainPublish"];
const RECEIVE: [&str; 1] = ["iot:Receive"];
const PUBLISH_RECEIVE: [&str; 3] = ["iot:Publish", "iot:RetainPublish", "iot:Receive"];

/// A filter rule that does not fit in one document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a topic filter of the ACL is too long for a {MAX_DOCUMENT_CHARS}-character policy")]
pub struct TooLong;

/// The policy documents granting `rules` to a client connected as `client_id`: connecting as
/// itself, subscribing to any filter (Mosquitto refuses no subscription; what is delivered
/// is decided by `iot:Receive`), and the rules' topics.
pub fn documents(rules: &Rules, arns: &Arns, client_id: &str) -> Result<Vec<String>, TooLong> {
    let mut statements: Vec<(&str, &[&str], String)> = vec![
        (
            "Allow",
            &["iot:Connect"],
            arns.arn(&format!("client/{}", literal(client_id))),
        ),
        ("Allow", &["iot:Subscribe"], arns.arn("topicfilter/*")),
    ];
    let topics = |effect: &'static str, list: &[(Access, String)]| {
        list.iter()
            .map(move |(access, filter)| {
                let actions: &[&str] = match (access.read, access.write) {
                    (true, true) => &PUBLISH_RECEIVE,
                    (true, false) => &RECEIVE,
                    _ => &PUBLISH,
                };
                (
                    effect,
                    actions,
                    arns.arn(&format!("topic/{}", resource(filter))),
                )
            })
            .collect::<Vec<_>>()
    };
    statements.extend(topics("Deny", &rules.denies));
    statements.extend(topics("Allow", &rules.allows));
    pack(statements)
}

/// Puts the statements into as few documents as fit, merging the resources of neighbours
/// with the same effect and actions.
fn pack(statements: Vec<(&str, &[&str], String)>) -> Result<Vec<String>, TooLong> {
    let mut documents: Vec<Vec<Value>> = vec![Vec::new()];
    for (effect, actions, resource) in statements {
        let Some(current) = documents.last_mut() else {
            return Err(TooLong);
        };
        let merged = current.last_mut().is_some_and(|last| {
            let same = last["Effect"] == effect && last["Action"] == json!(actions);
            if same && let Some(list) = last["Resource"].as_array_mut() {
                list.push(json!(resource));
            }
            same
        });
        if !merged {
            current.push(statement(effect, actions, &resource));
        }
        if document(current).len() <= MAX_DOCUMENT_CHARS {
            continue;
        }
        // Too big: take it back out and start a new document with it.
        if merged {
            if let Some(list) = current
                .last_mut()
                .and_then(|s| s["Resource"].as_array_mut())
            {
                list.pop();
            }
        } else {
            current.pop();
        }
        let fresh = vec![statement(effect, actions, &resource)];
        if document(&fresh).len() > MAX_DOCUMENT_CHARS {
            return Err(TooLong);
        }
        documents.push(fresh);
    }
    Ok(documents.iter().map(|d| document(d)).collect())
}

fn statement(effect: &str, actions: &[&str], resource: &str) -> Value {
    json!({"Effect": effect, "Action": actions, "Resource": [resource]})
}

fn document(statements: &[Value]) -> String {
    json!({"Version": "2012-10-17", "Statement": statements}).to_string()
}

/// A topic filter as a policy resource: `+` and `#` levels as the extension's wildcards,
/// everything else literal.
pub fn resource(filter: &str) -> String {
    filter
        .split('/')
        .map(|level| match level {
            "+" => "${ferrocore:+}".to_owned(),
            "#" => "${ferrocore:#}".to_owned(),
            other => literal(other),
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Text that a policy matches literally: its `$`, `*` and `?` escaped.
fn literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '$' => out.push_str("${$}"),
            '*' => out.push_str("${*}"),
            '?' => out.push_str("${?}"),
            c => out.push(c),
        }
    }
    out
}
