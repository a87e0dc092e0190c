//! How a config key's text becomes a value, and the value text again.
//!
//! Each marker type here is a [`Kind`]: `parse` reads a key's value (the
//! error says what is wrong, for `file:line: key 'name': ...`), `show`
//! writes a value back as a config file would spell it (for `/status` and
//! the docs table's defaults). An `options!` row names its kind:
//! `["idle_timeout_ms", OptionalMillis]`.

use std::fmt::Display;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use crate::net::auth::AuthToken;

/// Reads a config value of type `T` and writes it back.
pub(crate) trait Kind<T> {
    /// The value a config file's text means, or what is wrong with it.
    fn parse(value: &str) -> Result<T, String>;
    /// `value` as a config file would spell it.
    fn show(value: &T) -> String;
}

/// Any number.
#[derive(Debug)]
pub(crate) enum Number {}
/// A number greater than 0.
#[derive(Debug)]
pub(crate) enum Positive {}
/// A number, absent until set.
#[derive(Debug)]
pub(crate) enum OptionalNumber {}
/// Milliseconds.
#[derive(Debug)]
pub(crate) enum Millis {}
/// Milliseconds, where 0 means "off".
#[derive(Debug)]
pub(crate) enum OptionalMillis {}
/// Seconds, where 0 means "off".
#[derive(Debug)]
pub(crate) enum OptionalSecs {}
/// `true`/`false` (also `1`/`0`, `yes`/`no`, `on`/`off`).
#[derive(Debug)]
pub(crate) enum Bool {}
/// `auto` (`None`) or a boolean.
#[derive(Debug)]
pub(crate) enum OnOffAuto {}
/// Non-empty text.
#[derive(Debug)]
pub(crate) enum Text {}
/// Non-empty text, absent until set.
#[derive(Debug)]
pub(crate) enum OptionalText {}
/// A value with its own `FromStr` and `Display` (policies, modes).
#[derive(Debug)]
pub(crate) enum Parsed {}
/// A directory or file path (not checked).
#[derive(Debug)]
pub(crate) enum Dir {}
/// A file that exists and can be read; its content is checked where it
/// is used (certificates when the TLS settings are built).
#[derive(Debug)]
pub(crate) enum ReadableFile {}
/// A log level: trace, debug, info, warn or error.
#[derive(Debug)]
pub(crate) enum Level {}
/// An absolute ZooKeeper path like `/mprpc`.
#[derive(Debug)]
pub(crate) enum ZkPath {}
/// A `user:password` digest (a secret: never shown).
#[derive(Debug)]
pub(crate) enum Digest {}
/// Comma-separated auth tokens (secrets: never shown).
#[derive(Debug)]
pub(crate) enum Tokens {}
/// The first of comma-separated auth tokens (what a consumer sends).
#[derive(Debug)]
pub(crate) enum FirstToken {}
/// One auth token (a secret: never shown).
#[derive(Debug)]
pub(crate) enum Token {}

/// What `show` writes for a secret that is set.
const REDACTED: &str = "<redacted>";

fn number<T: FromStr>(value: &str) -> Result<T, String> {
    value
        .parse()
        .map_err(|_| format!("'{value}' is not a valid number here"))
}

fn non_empty(value: &str) -> Result<String, String> {
    if value.is_empty() {
        Err("value is empty".into())
    } else {
        Ok(value.to_owned())
    }
}

fn boolean(value: &str) -> Result<bool, String> {
    match value.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(format!("'{value}' is not a boolean (true/false)")),
    }
}

fn secret<T>(value: &Option<T>) -> String {
    value
        .as_ref()
        .map_or(String::new(), |_| REDACTED.to_owned())
}

impl<T: FromStr + Display> Kind<T> for Number {
    fn parse(value: &str) -> Result<T, String> {
        number(value)
    }
    fn show(value: &T) -> String {
        value.to_string()
    }
}

impl<T: FromStr + Display + PartialEq + From<u8>> Kind<T> for Positive {
    fn parse(value: &str) -> Result<T, String> {
        let n: T = number(value)?;
        if n == T::from(0) {
            return Err("must be greater than 0".into());
        }
        Ok(n)
    }
    fn show(value: &T) -> String {
        value.to_string()
    }
}

impl<T: FromStr + Display> Kind<Option<T>> for OptionalNumber {
    fn parse(value: &str) -> Result<Option<T>, String> {
        number(value).map(Some)
    }
    fn show(value: &Option<T>) -> String {
        value.as_ref().map_or(String::new(), T::to_string)
    }
}

impl Kind<Duration> for Millis {
    fn parse(value: &str) -> Result<Duration, String> {
        number(value).map(Duration::from_millis)
    }
    fn show(value: &Duration) -> String {
        value.as_millis().to_string()
    }
}

impl Kind<Option<Duration>> for OptionalMillis {
    fn parse(value: &str) -> Result<Option<Duration>, String> {
        Millis::parse(value).map(|d: Duration| (!d.is_zero()).then_some(d))
    }
    fn show(value: &Option<Duration>) -> String {
        value.map_or(0, |d| d.as_millis()).to_string()
    }
}

impl Kind<Option<Duration>> for OptionalSecs {
    fn parse(value: &str) -> Result<Option<Duration>, String> {
        number::<u64>(value).map(|s| (s > 0).then(|| Duration::from_secs(s)))
    }
    fn show(value: &Option<Duration>) -> String {
        value.map_or(0, |d| d.as_secs()).to_string()
    }
}

impl Kind<bool> for Bool {
    fn parse(value: &str) -> Result<bool, String> {
        boolean(value)
    }
    fn show(value: &bool) -> String {
        value.to_string()
    }
}

impl Kind<Option<bool>> for OnOffAuto {
    fn parse(value: &str) -> Result<Option<bool>, String> {
        if value.eq_ignore_ascii_case("auto") {
            return Ok(None);
        }
        boolean(value)
            .map(Some)
            .map_err(|_| format!("'{value}' is not one of on, off, auto"))
    }
    fn show(value: &Option<bool>) -> String {
        match value {
            None => "auto",
            Some(true) => "on",
            Some(false) => "off",
        }
        .into()
    }
}

impl Kind<String> for Text {
    fn parse(value: &str) -> Result<String, String> {
        non_empty(value)
    }
    fn show(value: &String) -> String {
        value.clone()
    }
}

impl Kind<Option<String>> for OptionalText {
    fn parse(value: &str) -> Result<Option<String>, String> {
        non_empty(value).map(Some)
    }
    fn show(value: &Option<String>) -> String {
        value.clone().unwrap_or_default()
    }
}

impl<T: FromStr<Err = String> + Display> Kind<T> for Parsed {
    fn parse(value: &str) -> Result<T, String> {
        value.parse()
    }
    fn show(value: &T) -> String {
        value.to_string()
    }
}

impl Kind<PathBuf> for Dir {
    fn parse(value: &str) -> Result<PathBuf, String> {
        non_empty(value).map(PathBuf::from)
    }
    fn show(value: &PathBuf) -> String {
        value.display().to_string()
    }
}

impl Kind<Option<PathBuf>> for ReadableFile {
    fn parse(value: &str) -> Result<Option<PathBuf>, String> {
        let path = PathBuf::from(non_empty(value)?);
        std::fs::File::open(&path).map_err(|e| format!("cannot read '{value}': {e}"))?;
        Ok(Some(path))
    }
    fn show(value: &Option<PathBuf>) -> String {
        value
            .as_ref()
            .map_or(String::new(), |p| p.display().to_string())
    }
}

impl Kind<String> for Level {
    fn parse(value: &str) -> Result<String, String> {
        let level = value.to_ascii_lowercase();
        match level.as_str() {
            "trace" | "debug" | "info" | "warn" | "error" => Ok(level),
            _ => Err(format!(
                "'{value}' is not one of trace, debug, info, warn, error"
            )),
        }
    }
    fn show(value: &String) -> String {
        value.clone()
    }
}

impl Kind<String> for ZkPath {
    fn parse(value: &str) -> Result<String, String> {
        if !value.starts_with('/') || (value.len() > 1 && value.ends_with('/')) {
            return Err(format!("'{value}' must be an absolute path like /mprpc"));
        }
        Ok(value.to_owned())
    }
    fn show(value: &String) -> String {
        value.clone()
    }
}

impl Kind<Option<String>> for Digest {
    fn parse(value: &str) -> Result<Option<String>, String> {
        match value.split_once(':') {
            Some((user, pass)) if !user.is_empty() && !pass.is_empty() => {
                Ok(Some(value.to_owned()))
            }
            _ => Err("expected user:password".into()),
        }
    }
    fn show(value: &Option<String>) -> String {
        secret(value)
    }
}

impl Kind<Vec<AuthToken>> for Tokens {
    fn parse(value: &str) -> Result<Vec<AuthToken>, String> {
        AuthToken::list(value)
    }
    fn show(value: &Vec<AuthToken>) -> String {
        secret(&value.first())
    }
}

impl Kind<Option<AuthToken>> for FirstToken {
    fn parse(value: &str) -> Result<Option<AuthToken>, String> {
        Tokens::parse(value).map(|tokens: Vec<AuthToken>| tokens.into_iter().next())
    }
    fn show(value: &Option<AuthToken>) -> String {
        secret(value)
    }
}

impl Kind<Option<AuthToken>> for Token {
    fn parse(value: &str) -> Result<Option<AuthToken>, String> {
        AuthToken::new(value).map(Some)
    }
    fn show(value: &Option<AuthToken>) -> String {
        secret(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `show` writes what `parse` reads back to the same value.
    #[test]
    fn shown_values_parse_back() {
        let d: Option<Duration> = OptionalMillis::parse("250").unwrap();
        assert_eq!(OptionalMillis::show(&d), "250");
        assert_eq!(OptionalMillis::parse("0"), Ok(None));
        assert_eq!(OptionalMillis::show(&None), "0");
        assert_eq!(<OnOffAuto as Kind<_>>::parse("auto"), Ok(None));
        assert_eq!(OnOffAuto::show(&Some(false)), "off");
        let n: usize = Positive::parse("7").unwrap();
        assert_eq!(Positive::show(&n), "7");
        assert_eq!(
            <Positive as Kind<usize>>::parse("0"),
            Err("must be greater than 0".into())
        );
    }

    #[test]
    fn secrets_are_never_shown() {
        let tokens: Vec<AuthToken> = Tokens::parse("alpha,beta").unwrap();
        assert_eq!(Tokens::show(&tokens), REDACTED);
        assert_eq!(Digest::show(&Some("u:p".into())), REDACTED);
        assert_eq!(Tokens::show(&Vec::new()), "");
    }
}
