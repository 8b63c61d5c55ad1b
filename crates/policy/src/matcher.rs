//! Matching of pre-parsed policy strings against request text, without allocating. A
//! variable that cannot be substituted makes the match fail.

use crate::request::Request;
use crate::template::Piece;

/// Whether `text` matches the wildcard pattern `pieces` (`*`: any run of characters, `?`:
/// one character, variables: their value, literally).
///
/// The classic greedy algorithm: on a mismatch, go back to the last `*` and let it swallow
/// one more character. Remembering only the last star is enough because every other piece
/// matches where it starts in one way only, ending no earlier when it starts later (a fixed
/// length of text, or an MQTT level up to the next `/`), so the earliest match of what
/// follows a star leaves the most text for the rest.
pub(crate) fn glob(pieces: &[Piece], text: &str, req: &Request) -> bool {
    glob_after(pieces, 0, text, req)
}

/// [`glob`], given that the first `skip` bytes of `text` equal the first `skip` bytes of
/// `pieces`' leading literal (which then has at least `skip` bytes).
pub(crate) fn glob_after(pieces: &[Piece], skip: usize, text: &str, req: &Request) -> bool {
    let mut p = 0;
    let mut t = 0;
    if skip > 0 {
        let (Some(Piece::Lit(first)), Some(rest)) = (pieces.first(), text.get(skip..)) else {
            return false;
        };
        let Some(lit_rest) = first.get(skip..) else {
            return false;
        };
        if !starts_with(rest, lit_rest) {
            return false;
        }
        p = 1;
        t = first.len();
    }
    // (piece after the last star, text position that star's match ends at)
    let mut star: Option<(usize, usize)> = None;
    loop {
        if let Some(piece) = pieces.get(p) {
            let rest = &text[t..];
            match piece {
                Piece::Star => {
                    star = Some((p + 1, t));
                    p += 1;
                    continue;
                }
                Piece::One => {
                    if let Some(c) = rest.chars().next() {
                        t += c.len_utf8();
                        p += 1;
                        continue;
                    }
                }
                Piece::Lit(s) => {
                    if starts_with(rest, s) {
                        t += s.len();
                        p += 1;
                        continue;
                    }
                }
                Piece::Var(k) => match req.variable(k) {
                    None => return false,
                    Some(v) => {
                        if rest.starts_with(&*v) {
                            t += v.len();
                            p += 1;
                            continue;
                        }
                    }
                },
                Piece::Level { first } => {
                    let level = rest.split('/').next().unwrap_or_default();
                    if !(*first && level.starts_with('$')) {
                        t += level.len();
                        p += 1;
                        continue;
                    }
                }
                Piece::Levels { first } => {
                    let covered = if *first {
                        !rest.starts_with('$')
                    } else {
                        rest.is_empty() || rest.starts_with('/')
                    };
                    if covered {
                        t = text.len();
                        p += 1;
                        continue;
                    }
                }
            }
        } else if t == text.len() {
            return true;
        }
        // Mismatch (or pattern used up with text left): backtrack to the last star.
        let Some((after_star, end)) = star else {
            return false;
        };
        let Some(c) = text[end..].chars().next() else {
            return false;
        };
        let end = end + c.len_utf8();
        star = Some((after_star, end));
        p = after_star;
        t = end;
    }
}

/// `text.starts_with(prefix)`, rejecting on the first byte without a call into `memcmp`
/// (most comparisons fail there, and most literals are short).
#[inline]
fn starts_with(text: &str, prefix: &str) -> bool {
    let (t, p) = (text.as_bytes(), prefix.as_bytes());
    match (t.first(), p.first()) {
        (_, None) => true,
        (Some(a), Some(b)) if a == b => t.len() >= p.len() && t[1..p.len()] == p[1..],
        _ => false,
    }
}

/// Whether `text` equals the concatenation of `pieces` (no wildcards).
pub(crate) fn equals(pieces: &[Piece], text: &str, req: &Request) -> bool {
    let mut rest = text;
    for piece in pieces {
        let ok = match piece {
            Piece::Lit(s) => strip(&mut rest, s),
            Piece::Var(k) => match req.variable(k) {
                Some(v) => strip(&mut rest, &v),
                None => return false,
            },
            Piece::Star => strip(&mut rest, "*"),
            Piece::One => strip(&mut rest, "?"),
            // Only parsed where wildcards apply, never for equality.
            Piece::Level { .. } | Piece::Levels { .. } => false,
        };
        if !ok {
            return false;
        }
    }
    rest.is_empty()
}

fn strip(rest: &mut &str, prefix: &str) -> bool {
    match rest.strip_prefix(prefix) {
        Some(r) => {
            *rest = r;
            true
        }
        None => false,
    }
}

/// [`equals`], comparing characters by their lowercase forms.
pub(crate) fn equals_ignore_case(pieces: &[Piece], text: &str, req: &Request) -> bool {
    let mut chars = text.chars().flat_map(char::to_lowercase);
    for piece in pieces {
        let value;
        let s: &str = match piece {
            Piece::Lit(s) => s,
            Piece::Var(k) => match req.variable(k) {
                Some(v) => {
                    value = v;
                    &value
                }
                None => return false,
            },
            Piece::Star => "*",
            Piece::One => "?",
            Piece::Level { .. } | Piece::Levels { .. } => return false,
        };
        for c in s.chars().flat_map(char::to_lowercase) {
            if chars.next() != Some(c) {
                return false;
            }
        }
    }
    chars.next().is_none()
}

/// An `Arn*` condition pattern: split at its first five colons (never inside a variable's
/// value) into up to six components, each matched against the same component of the value
/// (so `*` does not cross a colon). The value is split into as many components, the last
/// taking the rest: `arn:aws:iot:*:*:topic/*` has six, `*` one (and matches anything).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ArnPattern(Box<[Box<[Piece]>]>);

impl ArnPattern {
    pub(crate) fn new(pieces: &[Piece]) -> ArnPattern {
        let parts = crate::template::split_colons(pieces, 5);
        ArnPattern(parts.into_iter().map(Vec::into_boxed_slice).collect())
    }

    pub(crate) fn components(&self) -> &[Box<[Piece]>] {
        &self.0
    }

    pub(crate) fn matches(&self, text: &str, req: &Request) -> bool {
        let n = self.0.len();
        let mut parts = self.0.iter();
        let mut values = text.splitn(n, ':');
        loop {
            match (parts.next(), values.next()) {
                (None, None) => return true,
                (Some(p), Some(v)) => {
                    if !glob(p, v, req) {
                        return false;
                    }
                }
                _ => return false,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::parse;

    fn m(pattern: &str, text: &str) -> bool {
        let req = Request::new().with_client_id("c*1");
        #[allow(clippy::unwrap_used)]
        let p = parse(pattern, true, true).unwrap();
        glob(&p, text, &req)
    }

    #[test]
    fn wildcards() {
        assert!(m("*", ""));
        assert!(m("*", "anything/at:all"));
        assert!(m("a*", "a"));
        assert!(m("a*c", "abbbc"));
        assert!(m("a*c", "ac"));
        assert!(!m("a*c", "acb"));
        assert!(m("a*b*c", "axxbyyc"));
        assert!(m("a*b*c", "abcbc"));
        assert!(!m("a*b*c", "acb"));
        assert!(m("a?c", "abc"));
        assert!(m("a?c", "aéc"));
        assert!(!m("a?c", "ac"));
        assert!(!m("a?c", "abbc"));
        assert!(m("*?", "x"));
        assert!(!m("*?", ""));
        assert!(m("topic/a/*", "topic/a/b/c/d"));
        assert!(m("topic/a/*", "topic/a/#"));
        assert!(!m("topic/a/+", "topic/a/b"));
        assert!(m("topic/a/+", "topic/a/+"));
        assert!(m("a${*}b", "a*b"));
        assert!(!m("a${*}b", "axb"));
        assert!(m("a${?}", "a?"));
        assert!(!m("a${?}", "ab"));
    }

    #[test]
    fn variable_values_match_literally() {
        assert!(m("t/${iot:ClientId}", "t/c*1"));
        assert!(!m("t/${iot:ClientId}", "t/cx1"));
        assert!(m("t/${iot:ClientId}/*", "t/c*1/x"));
        assert!(m("*${iot:ClientId}", "xxc*1"));
        // Unresolvable: no match, even against a star.
        assert!(!m("t/${iot:Connection.Thing.ThingName}*", "t/x"));
    }

    #[test]
    fn equality() {
        let req = Request::new().with_client_id("Dev");
        #[allow(clippy::unwrap_used)]
        let p = parse("pre-${iot:ClientId}", true, false).unwrap();
        assert!(equals(&p, "pre-Dev", &req));
        assert!(!equals(&p, "pre-dev", &req));
        assert!(!equals(&p, "pre-Dev2", &req));
        assert!(equals_ignore_case(&p, "PRE-dev", &req));
        assert!(!equals_ignore_case(&p, "PRE-de", &req));
        assert!(!equals_ignore_case(&p, "PRE-devv", &req));
    }

    #[test]
    fn arn_components() {
        let req = Request::new();
        #[allow(clippy::unwrap_used)]
        let a = |p: &str| ArnPattern::new(&parse(p, true, true).unwrap());
        let p = a("arn:aws:someservice:*:111122223333:finance/*");
        assert!(p.matches(
            "arn:aws:someservice:us-east-2:111122223333:finance/doc.txt",
            &req
        ));
        // '*' stays inside its component (IAM's own example).
        assert!(!p.matches(
            "arn:aws:someservice:us-east-2:999999999999:store/abc:111122223333:finance/document.txt",
            &req
        ));
        let p = a("arn:aws:iot:*:*:topic/a:*");
        assert!(p.matches("arn:aws:iot:r:1:topic/a:b:c", &req));
        assert!(!p.matches("arn:aws:iot:r:1", &req));
        assert!(a("*").matches("anything", &req));
    }
}
