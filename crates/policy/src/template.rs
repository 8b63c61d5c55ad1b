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
//! - *Ferrocore extension*, also only where wildcards apply and with `2012-10-17`: MQTT's
//!   topic-filter wildcards, level by level. `${ferrocore:+}` is one whole topic level (any
//!   run of characters without `/`, possibly empty); `${ferrocore:#}` ends the pattern and is
//!   the level it stands at and every level below it, none included (`a/${ferrocore:#}`
//!   covers `a`, `a/` and `a/b/c`, as the filter `a/#` does). Either must take a whole level:
//!   at the start of the text or after a literal `/`, and `${ferrocore:+}` before the end or
//!   a literal `/`. At the topic's first level (the start of the text, or right after the
//!   ARN's `:<type>/`, e.g. `:topic/`) neither matches a level that starts with `$`
//!   ([MQTT-4.7.2-1]: `+/x` and `#` do not match `$aws/...`).

use crate::var::Key;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Piece {
    Lit(Box<str>),
    Var(Key),
    /// `*`: any run of characters, possibly empty.
    Star,
    /// `?`: exactly one character.
    One,
    /// `${ferrocore:+}`: one MQTT topic level (up to the next `/` or the end). `first`: at the
    /// topic's first level, where a level starting with `$` does not match.
    Level {
        first: bool,
    },
    /// `${ferrocore:#}`, always the last piece. `first`: the whole topic, unless it starts
    /// with `$`. Otherwise the `/` before it belongs to it: the end of the text, or `/` and
    /// anything after it.
    Levels {
        first: bool,
    },
}

/// The extension's names for MQTT's single- and multi-level wildcards.
pub(crate) const MQTT_LEVEL: &str = "ferrocore:+";
pub(crate) const MQTT_LEVELS: &str = "ferrocore:#";

/// A rejected `${...}`: the text inside the braces, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BadVariable {
    pub variable: String,
    pub reason: &'static str,
}

/// Parses `s` into pieces, merging adjacent literal text and adjacent stars.
pub(crate) fn parse(s: &str, variables: bool, wildcards: bool) -> Result<Vec<Piece>, BadVariable> {
    let pieces = parse_pieces(s, variables, wildcards)?;
    check_mqtt_levels(&pieces)?;
    Ok(pieces)
}

fn parse_pieces(s: &str, variables: bool, wildcards: bool) -> Result<Vec<Piece>, BadVariable> {
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
                MQTT_LEVEL | MQTT_LEVELS if wildcards => {
                    let at_start = pieces.is_empty() && lit.is_empty();
                    if !at_start && !lit.ends_with('/') {
                        return Err(BadVariable {
                            variable: inner.to_string(),
                            reason: "an MQTT wildcard must take a whole topic level: put it \
                                     at the start or after a `/`",
                        });
                    }
                    let first = at_start || is_first_level(&lit);
                    if inner == MQTT_LEVELS && !first {
                        // The `/` before it is optional: `a/#` also covers `a`.
                        lit.pop();
                    }
                    flush(&mut lit, &mut pieces);
                    pieces.push(if inner == MQTT_LEVEL {
                        Piece::Level { first }
                    } else {
                        Piece::Levels { first }
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

/// Whether literal text ending in `/` leaves the next level at the topic's first: after its
/// last `:` (the ARN's resource component), one `/` and nothing after it (`:topic/`).
fn is_first_level(lit: &str) -> bool {
    lit.rfind(':')
        .is_some_and(|colon| lit[colon..].find('/') == Some(lit.len() - colon - 1))
}

/// `${ferrocore:#}` must be last, and `${ferrocore:+}` must end its level.
fn check_mqtt_levels(pieces: &[Piece]) -> Result<(), BadVariable> {
    for (i, piece) in pieces.iter().enumerate() {
        let next = pieces.get(i + 1);
        let (variable, reason) = match piece {
            Piece::Levels { .. } if next.is_some() => (
                MQTT_LEVELS,
                "`${ferrocore:#}` must end the pattern, as `#` ends a topic filter",
            ),
            Piece::Level { .. } => match next {
                None | Some(Piece::Levels { first: false }) => continue,
                Some(Piece::Lit(l)) if l.starts_with('/') => continue,
                Some(_) => (
                    MQTT_LEVEL,
                    "an MQTT wildcard must take a whole topic level: put the end or a `/` \
                     after it",
                ),
            },
            _ => continue,
        };
        return Err(BadVariable {
            variable: variable.into(),
            reason,
        });
    }
    Ok(())
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
    fn mqtt_wildcards_take_whole_levels() {
        let t = "arn:aws:iot:r:1:topic/";
        assert_eq!(
            parse(
                &format!("{t}${{ferrocore:+}}/a/${{ferrocore:+}}"),
                true,
                true
            )
            .unwrap(),
            vec![
                lit(t),
                Piece::Level { first: true },
                lit("/a/"),
                Piece::Level { first: false }
            ]
        );
        // The `/` before a `#` below the first level belongs to it.
        assert_eq!(
            parse(&format!("{t}a/${{ferrocore:#}}"), true, true).unwrap(),
            vec![lit(&format!("{t}a")), Piece::Levels { first: false }]
        );
        assert_eq!(
            parse(&format!("{t}${{ferrocore:+}}/${{ferrocore:#}}"), true, true).unwrap(),
            vec![
                lit(t),
                Piece::Level { first: true },
                Piece::Levels { first: false }
            ]
        );
        assert_eq!(
            parse("${ferrocore:#}", true, true).unwrap(),
            vec![Piece::Levels { first: true }]
        );
        // After a variable, a level is never the first.
        assert_eq!(
            parse(
                &format!("{t}${{iot:ClientId}}/${{ferrocore:+}}"),
                true,
                true
            )
            .unwrap(),
            vec![
                lit(t),
                Piece::Var(Key::ClientId),
                lit("/"),
                Piece::Level { first: false }
            ]
        );
        for bad in [
            "topic/a${ferrocore:+}",
            "topic/${ferrocore:+}a",
            "topic/${ferrocore:+}*",
            "topic/${ferrocore:#}/a",
            "topic/a${ferrocore:#}",
            "topic/${iot:ClientId}${ferrocore:+}",
        ] {
            assert!(parse(bad, true, true).is_err(), "{bad}");
        }
        // Without wildcards (equality), or in 2008-10-17: not the extension.
        assert_eq!(
            parse("${ferrocore:+}", true, false).unwrap(),
            vec![Piece::Var(Key::parse("ferrocore:+"))]
        );
        assert_eq!(
            parse("a/${ferrocore:+}", false, true).unwrap(),
            vec![lit("a/${ferrocore:+}")]
        );
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
