//! Mosquitto ACL files, and the IoT policy statements equivalent to one for a given user and
//! client.
//!
//! The file syntax and the decision are Mosquitto 2.0's (`security_default.c`):
//!
//! - `user <name>` starts the section of that user; `topic [read|write|readwrite|deny]
//!   <filter>` adds to the current section (no access word: `readwrite`); lines before the
//!   first `user` form the section of clients *without* a username, which this authorizer
//!   never admits. `pattern [access] <filter>` applies to every client wherever it stands,
//!   with `%c` replaced by the client id and `%u` by the username. Lines starting with `#`
//!   are comments; words are separated by spaces; the filter is the rest of the line.
//! - To publish (write) or receive (read) on a topic: a matching `deny` of the user's
//!   section refuses; else a matching entry of the section with that access allows; else, if
//!   there are `pattern` lines and the username or client id contains `+` or `#`, refused;
//!   else a matching `deny` pattern refuses; else a matching pattern with that access allows;
//!   else refused. Matching is MQTT's (`mosquitto_topic_matches_sub`).
//! - SUBSCRIBE is never refused by an ACL file (Mosquitto 1.5–2.0: "FIXME - implement ACL
//!   subscription strings"); what a subscription delivers is decided per message by `read`.
//!
//! The statements ([`Acl::rules`]) say the same with IAM's rule (a Deny wins): the user's
//! denies as Deny, every allowing entry as Allow, and the pattern denies as Deny — except
//! where the user's own section allows: a pattern deny entirely inside a filter the user may
//! use with that access is left out, as Mosquitto never reaches it there. A pattern deny that
//! only partly overlaps such a filter cannot be cut to the difference (no filter expresses
//! it): it stays whole, so the policy is narrower than Mosquitto there and
//! [`Rules::narrowed`] names the lines.

use std::collections::HashMap;

/// Who may do what on a filter: Mosquitto's access words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Access {
    pub read: bool,
    pub write: bool,
}

impl Access {
    const READ: Access = Access {
        read: true,
        write: false,
    };
    const WRITE: Access = Access {
        read: false,
        write: true,
    };
    const READ_WRITE: Access = Access {
        read: true,
        write: true,
    };
}

/// One `topic` or `pattern` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// `None`: `deny`.
    pub access: Option<Access>,
    pub filter: String,
    /// 1-based line number in the file.
    pub line: usize,
}

/// A parsed ACL file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Acl {
    /// The `user <name>` sections.
    pub users: HashMap<String, Vec<Entry>>,
    /// Entries before the first `user` line: for clients without a username only.
    pub anonymous: Vec<Entry>,
    /// The `pattern` lines.
    pub patterns: Vec<Entry>,
}

/// A line of a file that could not be read: its number and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct LineError {
    pub line: usize,
    pub reason: String,
}

/// The most levels in a filter (Mosquitto's `TOPIC_HIERARCHY_LIMIT`, 200 separators).
const MAX_LEVELS: usize = 201;
/// The longest filter.
const MAX_FILTER_BYTES: usize = 65_535;

impl Acl {
    /// Parses an ACL file; any line Mosquitto would refuse is an error.
    pub fn parse(text: &str) -> Result<Acl, LineError> {
        let mut acl = Acl::default();
        let mut user: Option<String> = None;
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            let err = |reason: String| LineError { line, reason };
            let trimmed = raw.trim_end();
            if trimmed.starts_with('#') {
                continue;
            }
            // Mosquitto splits words at spaces only (a tab is part of a word).
            let content = trimmed.trim_start_matches(' ');
            let (keyword, rest) = content.split_once(' ').unwrap_or((content, ""));
            let rest = rest.trim_start_matches(' ');
            match keyword {
                "" => {}
                "user" => {
                    let name = rest.trim();
                    if name.is_empty() {
                        return Err(err("`user` without a username".into()));
                    }
                    acl.users.entry(name.to_owned()).or_default();
                    user = Some(name.to_owned());
                }
                "topic" | "pattern" => {
                    let (first, after) = rest.split_once(' ').unwrap_or((rest, ""));
                    let after = after.trim();
                    if first.is_empty() {
                        return Err(err(format!("`{keyword}` without a topic")));
                    }
                    let (access, filter) = if after.is_empty() {
                        (Some(Access::READ_WRITE), first)
                    } else {
                        let access = match first {
                            "read" => Some(Access::READ),
                            "write" => Some(Access::WRITE),
                            "readwrite" => Some(Access::READ_WRITE),
                            "deny" => None,
                            other => {
                                return Err(err(format!(
                                    "access `{other}` is not read, write, readwrite or deny"
                                )));
                            }
                        };
                        (access, after)
                    };
                    if !is_valid_filter(filter) {
                        return Err(err(format!(
                            "`{filter}` is not a valid topic filter (`+` and `#` must take a \
                             whole level, `#` only the last)"
                        )));
                    }
                    let entry = Entry {
                        access,
                        filter: filter.to_owned(),
                        line,
                    };
                    if keyword == "pattern" {
                        acl.patterns.push(entry);
                    } else if let Some(name) = &user {
                        acl.users.entry(name.clone()).or_default().push(entry);
                    } else {
                        acl.anonymous.push(entry);
                    }
                }
                other => {
                    return Err(err(format!(
                        "`{other}` is not `user`, `topic` or `pattern`"
                    )));
                }
            }
        }
        Ok(acl)
    }

    /// The statements equivalent to this ACL for `username` connected as `client_id`.
    pub fn rules(&self, username: &str, client_id: &str) -> Rules {
        let own = self
            .users
            .get(username)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let mut rules = Rules::default();
        for entry in own {
            rules.push(entry.access, entry.filter.clone());
        }
        let dangerous = |s: &str| s.contains(['+', '#']);
        if self.patterns.is_empty()
            || dangerous(username)
            || dangerous(client_id)
            || client_id.is_empty()
        {
            return rules;
        }
        for pattern in &self.patterns {
            let filter = substitute(&pattern.filter, username, client_id);
            let Some(access) = pattern.access else {
                // Where the user's own section allows, Mosquitto never gets to this deny.
                let mut denied = Access {
                    read: true,
                    write: true,
                };
                for (wanted, denied) in [
                    (Access::READ, &mut denied.read),
                    (Access::WRITE, &mut denied.write),
                ] {
                    let allowing = own.iter().filter(|e| {
                        e.access
                            .is_some_and(|a| (a.read && wanted.read) || (a.write && wanted.write))
                    });
                    let mut overlap = false;
                    for allowed in allowing {
                        if covers(&allowed.filter, &filter) {
                            *denied = false;
                            break;
                        }
                        overlap |= intersects(&allowed.filter, &filter);
                    }
                    if *denied && overlap {
                        rules.narrowed.push(pattern.line);
                    }
                }
                if denied.read || denied.write {
                    rules.denies.push((denied, filter));
                }
                continue;
            };
            rules.allows.push((access, filter));
        }
        rules.narrowed.dedup();
        rules
    }
}

/// What an ACL grants one user on one connection, as policy statements will say it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rules {
    /// Deny these accesses on these filters.
    pub denies: Vec<(Access, String)>,
    /// Allow these accesses on these filters.
    pub allows: Vec<(Access, String)>,
    /// Lines of `pattern ... deny` kept whole although the user's own section allows part of
    /// what they cover: there the policy refuses what Mosquitto would allow.
    pub narrowed: Vec<usize>,
}

impl Rules {
    fn push(&mut self, access: Option<Access>, filter: String) {
        match access {
            Some(access) => self.allows.push((access, filter)),
            None => self.denies.push((Access::READ_WRITE, filter)),
        }
    }
}

/// Mosquitto's substitution: `%c` the client id, `%u` the username, left to right.
fn substitute(pattern: &str, username: &str, client_id: &str) -> String {
    let mut out = String::with_capacity(pattern.len());
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, chars.peek()) {
            ('%', Some('c')) => {
                chars.next();
                out.push_str(client_id);
            }
            ('%', Some('u')) => {
                chars.next();
                out.push_str(username);
            }
            _ => out.push(c),
        }
    }
    out
}

/// Mosquitto's `mosquitto_sub_topic_check` (broker build): wildcards take whole levels, `#`
/// is last, at most 200 separators and 65535 bytes.
pub fn is_valid_filter(filter: &str) -> bool {
    let levels: Vec<&str> = filter.split('/').collect();
    let last = levels.len() - 1;
    !filter.is_empty()
        && filter.len() <= MAX_FILTER_BYTES
        && levels.len() <= MAX_LEVELS
        && levels.iter().enumerate().all(|(i, level)| match *level {
            "+" => true,
            "#" => i == last,
            other => !other.contains(['+', '#']),
        })
}

fn is_wildcard(level: &str) -> bool {
    level == "+" || level == "#"
}

/// Whether a wildcard first level of one filter meets a `$` first level of the other: no
/// topic matches both ([MQTT-4.7.2-1]).
fn dollar_apart(a: &str, b: &str) -> bool {
    let first = |f: &str| f.split('/').next().unwrap_or_default().to_owned();
    let (a, b) = (first(a), first(b));
    (is_wildcard(&a) && b.starts_with('$')) || (is_wildcard(&b) && a.starts_with('$'))
}

/// Whether some topic matches both filters.
pub fn intersects(a: &str, b: &str) -> bool {
    fn go(a: &[&str], b: &[&str]) -> bool {
        match (a.split_first(), b.split_first()) {
            (None, None) => true,
            (Some((&"#", _)), _) | (_, Some((&"#", _))) => true,
            (Some((x, a)), Some((y, b))) if *x == "+" || *y == "+" || x == y => go(a, b),
            _ => false,
        }
    }
    !dollar_apart(a, b) && go(&levels(a), &levels(b))
}

/// Whether every topic that matches `inner` matches `outer`.
pub fn covers(outer: &str, inner: &str) -> bool {
    fn go(o: &[&str], i: &[&str]) -> bool {
        match (o.split_first(), i.split_first()) {
            (Some((&"#", _)), _) => true,
            (None, None) => true,
            (Some((x, o)), Some((y, i))) if *y != "#" && (*x == "+" || x == y) => go(o, i),
            _ => false,
        }
    }
    !dollar_apart(outer, inner) && go(&levels(outer), &levels(inner))
}

fn levels(filter: &str) -> Vec<&str> {
    filter.split('/').collect()
}
