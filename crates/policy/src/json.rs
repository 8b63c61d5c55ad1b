//! A JSON tree that keeps object members in document order and refuses duplicate member names
//! (`{"Effect":"Allow","Effect":"Deny"}` would otherwise silently mean whichever one a parser
//! keeps). Syntax errors keep serde_json's line and column.

use std::collections::HashSet;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::error::{ErrorKind, PolicyError};

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Json {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl Json {
    pub(crate) fn parse(text: &str) -> Result<Json, PolicyError> {
        serde_json::from_str(text).map_err(|e| {
            let message = e.to_string();
            // serde_json appends " at line L column C"; the position has its own fields.
            let message = match message.rfind(" at line ") {
                Some(i) => message[..i].to_string(),
                None => message,
            };
            PolicyError::new(
                "",
                ErrorKind::Json {
                    line: e.line(),
                    column: e.column(),
                    message,
                },
            )
        })
    }
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(JsonVisitor)
    }
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }

    fn visit_bool<E>(self, v: bool) -> Result<Json, E> {
        Ok(Json::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Json, E> {
        Ok(Json::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Json, E> {
        Ok(Json::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Json, E> {
        serde_json::Number::from_f64(v)
            .map(Json::Number)
            .ok_or_else(|| E::custom("number out of range"))
    }

    fn visit_str<E>(self, v: &str) -> Result<Json, E> {
        Ok(Json::String(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<Json, E> {
        Ok(Json::String(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Json>()? {
            items.push(item);
        }
        Ok(Json::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        let mut members: Vec<(String, Json)> = Vec::new();
        // Small objects: a linear scan; large ones (only without the length limit): a set.
        let mut seen: Option<HashSet<String>> = None;
        while let Some(key) = map.next_key::<String>()? {
            let duplicate = match &mut seen {
                Some(set) => !set.insert(key.clone()),
                None if members.len() < 32 => members.iter().any(|(k, _)| *k == key),
                None => {
                    let mut set: HashSet<String> = members.iter().map(|(k, _)| k.clone()).collect();
                    let duplicate = !set.insert(key.clone());
                    seen = Some(set);
                    duplicate
                }
            };
            if duplicate {
                return Err(de::Error::custom(format!(
                    "member \"{key}\" appears twice in one object"
                )));
            }
            let value = map.next_value::<Json>()?;
            members.push((key, value));
        }
        Ok(Json::Object(members))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn keeps_member_order_and_types() {
        let j = Json::parse(r#"{"b":1,"a":[true,null,"x",1.5]}"#).unwrap();
        let Json::Object(m) = j else { panic!() };
        assert_eq!(m[0].0, "b");
        assert_eq!(m[1].0, "a");
        assert_eq!(
            m[1].1,
            Json::Array(vec![
                Json::Bool(true),
                Json::Null,
                Json::String("x".into()),
                Json::Number(serde_json::Number::from_f64(1.5).unwrap())
            ])
        );
    }

    #[test]
    fn duplicate_member_is_an_error_with_position() {
        let e = Json::parse("{\"Effect\":\"Allow\",\n\"Effect\":\"Deny\"}").unwrap_err();
        match e.kind {
            ErrorKind::Json { line, message, .. } => {
                assert_eq!(line, 2);
                assert!(message.contains("\"Effect\" appears twice"), "{message}");
            }
            k => panic!("{k:?}"),
        }
    }

    #[test]
    fn syntax_error_has_line_and_column() {
        let e = Json::parse("{\n  \"Version\": \"2012-10-17\",,\n}").unwrap_err();
        match e.kind {
            ErrorKind::Json { line, column, .. } => {
                assert_eq!(line, 2);
                assert!(column > 20);
            }
            k => panic!("{k:?}"),
        }
        assert!(
            e.to_string()
                .starts_with("Policy document is Malformed: not valid JSON")
        );
        assert!(Json::parse("{} x").is_err());
        assert!(Json::parse("").is_err());
    }

    #[test]
    fn duplicates_found_in_large_objects_too() {
        let mut text = String::from("{");
        for i in 0..100 {
            text.push_str(&format!("\"k{i}\":{i},"));
        }
        assert!(Json::parse(&format!("{text}\"end\":0}}")).is_ok());
        let e = Json::parse(&format!("{text}\"k7\":0}}")).unwrap_err();
        assert!(e.to_string().contains("\"k7\" appears twice"), "{e}");
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let deep = "[".repeat(100_000);
        assert!(Json::parse(&deep).is_err());
    }
}
