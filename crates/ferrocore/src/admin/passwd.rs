//! `ferrocore passwd FILE USER`: add or update a user of a password file (the `password`
//! authorizer's, Mosquitto's format) with an argon2id hash, as `mosquitto_passwd` does;
//! `--delete` removes the user. Local: edits the file, talks to no server (a running server
//! reads the file again when it changes).
//!
//! The password is read from standard input: prompted twice without echo on a terminal,
//! else the first line (so `printf '%s\n' "$PW" | ferrocore passwd ...` works in scripts).
//! It is never shown or logged. The file is replaced atomically, mode 0600; its other lines
//! are kept as they are.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use ferrocore_authorizers::password::{hash_argon2id, parse_password_file};

use super::Failure;
use super::device::write_file;

#[derive(clap::Args)]
pub struct PasswdArgs {
    /// The password file (created, mode 0600, if missing).
    file: PathBuf,
    /// The username (no `:`, no leading or trailing spaces).
    user: String,
    /// Remove the user instead.
    #[arg(long, short = 'D')]
    delete: bool,
}

/// Runs the command.
pub fn run(args: PasswdArgs) -> Result<(), Failure> {
    check_username(&args.user)?;
    let existing = match std::fs::read_to_string(&args.file) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !args.delete => String::new(),
        Err(e) => return Err(format!("cannot read {}: {e}", args.file.display()).into()),
    };
    let users = parse_password_file(&existing).map_err(|e| {
        format!(
            "{} {e}; fix it by hand first (the server keeps its previous version meanwhile)",
            args.file.display()
        )
    })?;
    let line = if args.delete {
        if !users.contains_key(&args.user) {
            return Err(format!("no user `{}` in {}", args.user, args.file.display()).into());
        }
        None
    } else {
        let password = read_password()?;
        let hash = hash_argon2id(password.as_bytes()).map_err(|e| e.to_string())?;
        Some(format!("{}:{hash}", args.user))
    };
    let text = replace_user(&existing, &args.user, line.as_deref());
    write_file(&args.file, text.as_bytes(), 0o600, true)?;
    let done = if args.delete { "removed" } else { "set" };
    eprintln!("{} {done} in {}", args.user, args.file.display());
    Ok(())
}

fn check_username(user: &str) -> Result<(), Failure> {
    if user.is_empty() || user.contains([':', '\n', '\r']) || user.trim() != user {
        return Err(Failure::Message(
            "the username must be non-empty, without `:` or line breaks, and without leading or \
             trailing spaces"
                .into(),
        ));
    }
    Ok(())
}

/// `text` with the line of `user` replaced by `line` (removed if `None`), or `line` added at
/// the end; every other line kept.
fn replace_user(text: &str, user: &str, line: Option<&str>) -> String {
    let mut out = String::with_capacity(text.len() + 128);
    let mut done = false;
    for old in text.lines() {
        let is_user =
            !old.starts_with('#') && old.split_once(':').is_some_and(|(u, _)| u.trim() == user);
        if is_user {
            if let Some(new) = line.filter(|_| !done) {
                out.push_str(new);
                out.push('\n');
            }
            done = true;
        } else {
            out.push_str(old);
            out.push('\n');
        }
    }
    if let Some(new) = line.filter(|_| !done) {
        out.push_str(new);
        out.push('\n');
    }
    out
}

/// The password: twice without echo from a terminal, else the first line of stdin.
fn read_password() -> Result<String, Failure> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        let mut line = String::new();
        stdin
            .lock()
            .read_line(&mut line)
            .map_err(|e| format!("cannot read the password from standard input: {e}"))?;
        return Ok(line.trim_end_matches(['\n', '\r']).to_owned());
    }
    let first = prompt("Password: ")?;
    let second = prompt("Reenter password: ")?;
    if first != second {
        return Err(Failure::Message("the passwords do not match".into()));
    }
    Ok(first)
}

/// One line from the terminal with echo off (restored even when reading fails).
fn prompt(text: &str) -> Result<String, Failure> {
    let stty = |arg: &str| {
        Command::new("stty")
            .arg(arg)
            .stdin(Stdio::inherit())
            .status()
            .is_ok_and(|s| s.success())
    };
    eprint!("{text}");
    let _ = std::io::stderr().flush();
    if !stty("-echo") {
        return Err(Failure::Message(
            "cannot turn off the terminal's echo (stty); pipe the password in instead".into(),
        ));
    }
    let mut line = String::new();
    let read = std::io::stdin().lock().read_line(&mut line);
    stty("echo");
    eprintln!();
    read.map_err(|e| format!("cannot read the password: {e}"))?;
    Ok(line.trim_end_matches(['\n', '\r']).to_owned())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn replaces_adds_and_removes_one_user_keeping_the_rest() {
        let text = "# users\nalice:$7$a\nbob:$6$b\n";
        assert_eq!(
            replace_user(text, "alice", Some("alice:$argon2id$x")),
            "# users\nalice:$argon2id$x\nbob:$6$b\n"
        );
        assert_eq!(
            replace_user(text, "carol", Some("carol:$argon2id$y")),
            "# users\nalice:$7$a\nbob:$6$b\ncarol:$argon2id$y\n"
        );
        assert_eq!(replace_user(text, "bob", None), "# users\nalice:$7$a\n");
        assert_eq!(replace_user("", "a", Some("a:h")), "a:h\n");
    }

    #[test]
    fn usernames_are_checked() {
        for bad in ["", "a:b", " a", "a\nb"] {
            assert!(check_username(bad).is_err(), "{bad:?}");
        }
        assert!(check_username("dave@example.com").is_ok());
    }
}
