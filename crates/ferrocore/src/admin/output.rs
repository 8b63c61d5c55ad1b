//! Human-readable output: aligned tables, `name: value` blocks, AWS timestamps.

use serde_json::Value;

/// Columns padded to their widest cell, two spaces apart; the last column is not padded.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let mut out = String::new();
    let headers: Vec<String> = headers.iter().map(|h| (*h).to_owned()).collect();
    for row in std::iter::once(&headers).chain(rows) {
        let last = row.len().saturating_sub(1);
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            line.push_str(cell);
            if i < last {
                let pad = widths.get(i).copied().unwrap_or(0) - cell.chars().count();
                line.push_str(&" ".repeat(pad + 2));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// `name:  value` lines with the values aligned; `None` values are skipped.
pub fn fields(items: &[(&str, Option<String>)]) -> String {
    let width = items
        .iter()
        .filter(|(_, v)| v.is_some())
        .map(|(k, _)| k.len())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for (name, value) in items {
        if let Some(v) = value {
            out.push_str(&format!(
                "{name}:{}{v}\n",
                " ".repeat(width - name.len() + 2)
            ));
        }
    }
    out
}

/// An AWS REST-JSON timestamp (epoch seconds, maybe fractional; or an ISO string) as
/// `YYYY-MM-DD HH:MM:SSZ`.
pub fn timestamp(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::Number(n) => {
            let secs = n.as_f64()?.floor();
            if !(0.0..=253_402_300_799.0).contains(&secs) {
                return Some(n.to_string());
            }
            Some(utc(secs as i64))
        }
        Value::String(s) => Some(s.clone()),
        _ => None,
    }
}

/// Unix seconds as a UTC date and time (Howard Hinnant's civil-from-days).
fn utc(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// `k=v, k=v` of a thing's attributes, or `-`.
pub fn attributes(map: &std::collections::BTreeMap<String, String>) -> String {
    if map.is_empty() {
        return "-".to_owned();
    }
    map.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tables_align() {
        let t = table(
            &["NAME", "STATUS"],
            &[
                vec!["a".into(), "ACTIVE".into()],
                vec!["longer-name".into(), "REVOKED".into()],
            ],
        );
        assert_eq!(
            t,
            "NAME         STATUS\na            ACTIVE\nlonger-name  REVOKED\n"
        );
        assert_eq!(
            fields(&[
                ("a", Some("1".into())),
                ("bbb", Some("2".into())),
                ("c", None)
            ]),
            "a:    1\nbbb:  2\n"
        );
    }

    #[test]
    fn timestamps() {
        assert_eq!(
            timestamp(Some(&json!(1_715_949_296.5))).as_deref(),
            Some("2024-05-17 12:34:56Z")
        );
        assert_eq!(
            timestamp(Some(&json!(0))).as_deref(),
            Some("1970-01-01 00:00:00Z")
        );
        assert_eq!(
            timestamp(Some(&json!(951_782_400))).as_deref(),
            Some("2000-02-29 00:00:00Z")
        );
        assert_eq!(
            timestamp(Some(&json!("2024-01-01T00:00:00Z"))).as_deref(),
            Some("2024-01-01T00:00:00Z")
        );
        assert_eq!(timestamp(None), None);
    }
}
