//! The CSV of `ferrocore thing bulk-create`.
//!
//! ```text
//! thingName,attributes
//! sensor-001,room=kitchen;floor=1
//! sensor-002
//! # comments and blank lines are ignored
//! sensor-003,"room=hall,west;floor=2"
//! ```
//!
//! The first line that is not blank or a comment is the header: `thingName` or
//! `thingName,attributes`. Each row is a thing name (AWS's rules: 1–128 of `a-zA-Z0-9:_-`)
//! and optionally its attributes, `name=value` pairs separated by `;`. A field that contains a
//! comma is quoted with `"` (a `"` inside is written `""`). A UTF-8 byte-order mark is
//! skipped. Every bad row is reported with its line number, not only the first.

use std::collections::{BTreeMap, HashMap};

/// One device to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// 1-based line number in the file.
    pub line: usize,
    pub thing_name: String,
    pub attributes: BTreeMap<String, String>,
}

/// Errors are reported at most this many at a time.
const MAX_ERRORS: usize = 20;

/// Parses the whole file; on failure, one message per bad line (`line N: ...`).
pub fn parse(text: &str) -> Result<Vec<Row>, Vec<String>> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    let mut header_seen = false;
    let mut first_line: HashMap<String, usize> = HashMap::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let fields = match split_fields(trimmed) {
            Ok(f) => f,
            Err(e) => {
                errors.push(format!("line {line}: {e}"));
                continue;
            }
        };
        if !header_seen {
            header_seen = true;
            let names: Vec<String> = fields
                .iter()
                .map(|f| f.trim().to_ascii_lowercase())
                .collect();
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            if names != ["thingname"] && names != ["thingname", "attributes"] {
                errors.push(format!(
                    "line {line}: expected the header `thingName,attributes` (or `thingName`), \
                     found `{trimmed}`"
                ));
                break;
            }
            continue;
        }
        match parse_row(line, &fields) {
            Ok(row) => {
                if let Some(earlier) = first_line.get(&row.thing_name) {
                    errors.push(format!(
                        "line {line}: thing \"{}\" is already on line {earlier}",
                        row.thing_name
                    ));
                } else {
                    first_line.insert(row.thing_name.clone(), line);
                    rows.push(row);
                }
            }
            Err(e) => errors.push(format!("line {line}: {e}")),
        }
    }
    if !header_seen && errors.is_empty() {
        errors.push(
            "the file is empty; expected the header `thingName,attributes` and one row per thing"
                .into(),
        );
    } else if header_seen && rows.is_empty() && errors.is_empty() {
        errors.push("the file has a header but no rows".into());
    }
    if errors.is_empty() {
        Ok(rows)
    } else {
        if errors.len() > MAX_ERRORS {
            let more = errors.len() - MAX_ERRORS;
            errors.truncate(MAX_ERRORS);
            errors.push(format!("... and {more} more"));
        }
        Err(errors)
    }
}

fn parse_row(line: usize, fields: &[String]) -> Result<Row, String> {
    if fields.len() > 2 {
        return Err(format!(
            "{} fields; expected thingName[,attributes] (separate attributes with `;`, and quote \
             a field that contains a comma)",
            fields.len()
        ));
    }
    let thing_name = fields[0].trim().to_owned();
    check_thing_name(&thing_name)?;
    let attributes = match fields.get(1) {
        Some(a) => parse_attributes(a)?,
        None => BTreeMap::new(),
    };
    Ok(Row {
        line,
        thing_name,
        attributes,
    })
}

/// `name=value;name=value` (empty parts ignored), checked against AWS's patterns.
pub fn parse_attributes(text: &str) -> Result<BTreeMap<String, String>, String> {
    let mut attributes = BTreeMap::new();
    for part in text.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, value) = parse_attribute(part)?;
        if attributes.insert(name.clone(), value).is_some() {
            return Err(format!("attribute \"{name}\" is given twice"));
        }
    }
    Ok(attributes)
}

/// One `name=value`.
pub fn parse_attribute(part: &str) -> Result<(String, String), String> {
    let Some((name, value)) = part.split_once('=') else {
        return Err(format!("attribute \"{part}\" is not name=value"));
    };
    let (name, value) = (name.trim(), value.trim());
    if name.is_empty() || name.len() > 128 {
        return Err(format!(
            "attribute name \"{name}\" must be 1 to 128 characters"
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "_.,@/:#-".contains(*c)))
    {
        return Err(format!(
            "attribute name \"{name}\" contains '{c}' (allowed: letters, digits and _.,@/:#-)"
        ));
    }
    if value.len() > 800 {
        return Err(format!(
            "the value of attribute \"{name}\" is longer than 800 characters"
        ));
    }
    if let Some(c) = value
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "_.,@/:#=[]-".contains(*c)))
    {
        return Err(format!(
            "the value of attribute \"{name}\" contains '{c}' (allowed: letters, digits and _.,@/:#=[]-)"
        ));
    }
    Ok((name.to_owned(), value.to_owned()))
}

/// AWS's thing name rule: 1–128 characters of `a-zA-Z0-9:_-`.
pub fn check_thing_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("the thing name is empty".into());
    }
    if name.len() > 128 {
        return Err(format!(
            "thing name \"{name}\" is longer than 128 characters"
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || ":_-".contains(*c)))
    {
        return Err(format!(
            "thing name \"{name}\" contains '{c}' (allowed: letters, digits and :_-)"
        ));
    }
    Ok(())
}

/// Splits one CSV line into fields (RFC 4180 quoting within the line).
fn split_fields(line: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    let mut was_quoted = false;
    while let Some(c) = chars.next() {
        if quoted {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    chars.next();
                    field.push('"');
                } else {
                    quoted = false;
                }
            } else {
                field.push(c);
            }
        } else if c == ',' {
            fields.push(std::mem::take(&mut field));
            was_quoted = false;
        } else if c == '"' {
            if was_quoted || !field.trim().is_empty() {
                return Err("a quote in the middle of a field (quote whole fields, and write \"\" for a quote inside)".into());
            }
            field.clear();
            quoted = true;
            was_quoted = true;
        } else if was_quoted && !c.is_whitespace() {
            return Err("text after a quoted field's closing quote".into());
        } else {
            field.push(c);
        }
    }
    if quoted {
        return Err("a quoted field is not closed".into());
    }
    fields.push(field);
    Ok(fields)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn attrs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn parses_the_documented_format() {
        let text = "\u{feff}# devices\r\nthingName,attributes\r\n\
                    sensor-001,room=kitchen;floor=1\r\n\
                    sensor-002\r\n\
                    \r\n\
                    # skipped\r\n\
                    sensor-003,\"room=hall,west;floor=2\"\r\n\
                    sensor:004,;\r\n";
        let rows = parse(text).unwrap();
        assert_eq!(rows.len(), 4);
        assert_eq!(rows[0].line, 3);
        assert_eq!(rows[0].thing_name, "sensor-001");
        assert_eq!(
            rows[0].attributes,
            attrs(&[("room", "kitchen"), ("floor", "1")])
        );
        assert_eq!(rows[1].attributes, BTreeMap::new());
        assert_eq!(rows[2].line, 7);
        assert_eq!(
            rows[2].attributes,
            attrs(&[("room", "hall,west"), ("floor", "2")])
        );
        assert_eq!(rows[3].thing_name, "sensor:004");
        // Header without the attributes column.
        assert_eq!(parse("ThingName\na\nb\n").unwrap().len(), 2);
    }

    #[test]
    fn bad_rows_are_reported_with_line_numbers() {
        let text = "thingName,attributes\n\
                    good-1,a=1\n\
                    bad name,a=1\n\
                    good-2,a\n\
                    good-3,a=1,b=2\n\
                    good-1\n\
                    good-4,a=1;a=2\n\
                    good-5,\"a=1\n\
                    good-6,b=x y\n\
                    good-7,x=\"y\"\n\
                    ,a=1\n";
        let errors = parse(text).unwrap_err();
        let joined = errors.join("\n");
        assert!(
            errors[0].starts_with("line 3: thing name \"bad name\" contains ' '"),
            "{joined}"
        );
        assert!(
            errors[1].starts_with("line 4: attribute \"a\" is not name=value"),
            "{joined}"
        );
        assert!(errors[2].starts_with("line 5: 3 fields"), "{joined}");
        assert!(
            errors[3].starts_with("line 6: thing \"good-1\" is already on line 2"),
            "{joined}"
        );
        assert!(
            errors[4].starts_with("line 7: attribute \"a\" is given twice"),
            "{joined}"
        );
        assert!(
            errors[5].starts_with("line 8: a quoted field is not closed"),
            "{joined}"
        );
        assert!(
            errors[6].starts_with("line 9: the value of attribute \"b\" contains ' '"),
            "{joined}"
        );
        assert!(
            errors[7].starts_with("line 10: a quote in the middle"),
            "{joined}"
        );
        assert!(
            errors[8].starts_with("line 11: the thing name is empty"),
            "{joined}"
        );
        assert_eq!(errors.len(), 9, "{joined}");
    }

    #[test]
    fn header_and_empty_files() {
        let e = parse("sensor-1,a=1\n").unwrap_err();
        assert!(e[0].starts_with("line 1: expected the header"), "{e:?}");
        let e = parse("").unwrap_err();
        assert!(e[0].contains("empty"), "{e:?}");
        let e = parse("# only a comment\nthingName\n").unwrap_err();
        assert!(e[0].contains("no rows"), "{e:?}");
    }

    #[test]
    fn limits_follow_aws() {
        check_thing_name(&"a".repeat(128)).unwrap();
        assert!(check_thing_name(&"a".repeat(129)).is_err());
        assert!(parse_attribute(&format!("{}=1", "k".repeat(129))).is_err());
        assert!(parse_attribute(&format!("k={}", "v".repeat(801))).is_err());
        assert_eq!(
            parse_attribute("serial=[A-1]/x@y#z").unwrap(),
            ("serial".to_owned(), "[A-1]/x@y#z".to_owned())
        );
        assert_eq!(parse_attribute("empty=").unwrap().1, "");
    }

    #[test]
    fn many_errors_are_capped() {
        let mut text = "thingName\n".to_owned();
        for _ in 0..30 {
            text.push_str("bad!\n");
        }
        let e = parse(&text).unwrap_err();
        assert_eq!(e.len(), MAX_ERRORS + 1);
        assert_eq!(e.last().unwrap(), "... and 10 more");
    }
}
