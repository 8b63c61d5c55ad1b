//! Policy strings pre-parsed into pieces: literal text, `${...}` variables, and the `*` / `?`
//! wildcards. Parsing happens once, at compile time; matching walks the pieces.
//!
//! Rules (IAM's, which AWS IoT follows):
//! - With Version `2012-10-17`, `${name}` is a policy variable; `${*}`, `${?}` and `${$}` stand
//!   for a literal `*`, `?` and `$`. With `2008-10-17` all of that is literal text.
//! - An unterminated `${` is literal text.
//! - Where wildcards apply (`Resource`, `*Like`, `Arn*`), `*` matches any run of characters
//!   (`/` and `:` included) and `?` exactly one character. MQTT's `+` and `#` are literal.
//! - The value a variable stands for is always matched literally: a `*` in a client id is a
//!   star, not a wildcard.

use crate::var::Key;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Piece {
    Lit(Box<str>),
    Var(Key),
    /// `*`: any run of characters, possibly empty.
    Star,
    /// `?`: exactly one character.
    One,
}

/// A rejected `${...}`: the text inside the braces, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BadVariable {
    pub variable: String,
    pub reason: &'static str,
}

/// Parses `s` into pieces, merging adjacent literal text and adjacent stars.
pub(crate) fn parse(s: &str, variables: bool, wildcards: bool) -> Result<Vec<Piece>, BadVariable> {
    let mut pieces = Vec::new();
    let mut lit = String::new();
    let flush = |lit: &mut String, pieces: &mut Vec<Piece>| {
        if !lit.is_empty() {
            pieces.push(Piece::Lit(std::mem::take(lit).into_boxed_str()));
        }
    };
    let mut rest = s;
    // Once no '}' follows, none follows any later "${" either: stop looking (linear time).
    let mut closable = true;
    while let Some(c) = rest.chars().next() {
        if variables && closable && rest.starts_with("${") {
            closable = rest[2..].contains('}');
        }
        if variables
            && closable
            && rest.starts_with("${")
            && let Some(end) = rest[2..].find('}')
        {
            let inner = &rest[2..2 + end];
            rest = &rest[2 + end + 1..];
            match inner {
                "*" => lit.push('*'),
                "?" => lit.push('?'),
                "$" => lit.push('$'),
                "" => {
                    return Err(BadVariable {
                        variable: String::new(),
                        reason: "the variable name is empty",
                    });
                }
                _ if inner.contains(", '") => {
                    return Err(BadVariable {
                        variable: inner.to_string(),
                        reason: "default values (\"${name, 'default'}\") are not supported in IoT policies",
                    });
                }
                _ => {
                    flush(&mut lit, &mut pieces);
                    pieces.push(Piece::Var(Key::parse(inner)));
                }
            }
            continue;
        }
        rest = &rest[c.len_utf8()..];
        match c {
            '*' if wildcards => {
                flush(&mut lit, &mut pieces);
                if pieces.last() != Some(&Piece::Star) {
                    pieces.push(Piece::Star);
                }
            }
            '?' if wildcards => {
                flush(&mut lit, &mut pieces);
                pieces.push(Piece::One);
            }
            _ => lit.push(c),
        }
    }
    flush(&mut lit, &mut pieces);
    Ok(pieces)
}

/// The variables among `pieces`.
pub(crate) fn variables(pieces: &[Piece]) -> impl Iterator<Item = &Key> {
    pieces.iter().filter_map(|p| match p {
        Piece::Var(k) => Some(k),
        _ => None,
    })
}

/// Splits `pieces` at its first `n` literal colons (never inside a variable's value), for
/// ARN matching component by component.
pub(crate) fn split_colons(pieces: &[Piece], n: usize) -> Vec<Vec<Piece>> {
    let mut parts: Vec<Vec<Piece>> = vec![Vec::new()];
    let mut splits = 0;
    for p in pieces {
        match p {
            Piece::Lit(s) if splits < n && s.contains(':') => {
                let mut text: &str = s;
                while splits < n {
                    let Some(i) = text.find(':') else { break };
                    if i > 0 {
                        parts
                            .last_mut()
                            .into_iter()
                            .for_each(|v| v.push(Piece::Lit(text[..i].into())));
                    }
                    parts.push(Vec::new());
                    splits += 1;
                    text = &text[i + 1..];
                }
                if !text.is_empty() {
                    parts
                        .last_mut()
                        .into_iter()
                        .for_each(|v| v.push(Piece::Lit(text.into())));
                }
            }
            other => parts
                .last_mut()
                .into_iter()
                .for_each(|v| v.push(other.clone())),
        }
    }
    parts
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn lit(s: &str) -> Piece {
        Piece::Lit(s.into())
    }

    #[test]
    fn variables_escapes_and_wildcards() {
        assert_eq!(
            parse("topic/${iot:ClientId}/*", true, true).unwrap(),
            vec![
                lit("topic/"),
                Piece::Var(Key::ClientId),
                lit("/"),
                Piece::Star
            ]
        );
        assert_eq!(
            parse("a${*}b${?}c${$}d?e**", true, true).unwrap(),
            vec![lit("a*b?c$d"), Piece::One, lit("e"), Piece::Star]
        );
        // Without wildcards, * and ? are literal.
        assert_eq!(parse("a*b?", true, false).unwrap(), vec![lit("a*b?")]);
        // 2008-10-17: everything literal except the wildcards.
        assert_eq!(
            parse("t/${iot:ClientId}${*}", false, true).unwrap(),
            vec![lit("t/${iot:ClientId}${"), Piece::Star, lit("}")]
        );
        // MQTT wildcards are plain characters.
        assert_eq!(parse("a/+/#", true, true).unwrap(), vec![lit("a/+/#")]);
        // Unterminated variable: literal.
        assert_eq!(parse("a${b", true, true).unwrap(), vec![lit("a${b")]);
    }

    #[test]
    fn many_unterminated_variables_parse_in_linear_time() {
        let s = "${".repeat(200_000);
        assert_eq!(parse(&s, true, true).unwrap(), vec![lit(&s)]);
    }

    #[test]
    fn rejects_empty_names_and_defaults() {
        assert_eq!(
            parse("${}", true, true).unwrap_err().reason,
            "the variable name is empty"
        );
        let e = parse("${iot:ClientId, 'x'}", true, true).unwrap_err();
        assert_eq!(e.variable, "iot:ClientId, 'x'");
        // Literal in 2008-10-17.
        assert!(parse("${}", false, true).is_ok());
    }

    #[test]
    fn colon_split_ignores_variable_values() {
        let p = parse("arn:aws:iot:*:${iot:ClientId}:topic/a:b", true, true).unwrap();
        let parts = split_colons(&p, 5);
        assert_eq!(parts.len(), 6);
        assert_eq!(parts[0], vec![lit("arn")]);
        assert_eq!(parts[3], vec![Piece::Star]);
        assert_eq!(parts[4], vec![Piece::Var(Key::ClientId)]);
        assert_eq!(parts[5], vec![lit("topic/a:b")]);
        let parts = split_colons(&parse("*", true, true).unwrap(), 5);
        assert_eq!(parts.len(), 1);
        let parts = split_colons(&parse("arn:::::", true, true).unwrap(), 5);
        assert_eq!(parts.len(), 6);
        assert!(parts[1..].iter().all(Vec::is_empty));
    }
}
