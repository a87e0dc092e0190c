//! What the config says about concurrency limits: `concurrency_limiter`
//! (adaptive limits on or off) and `max_concurrency` (fixed limits, for
//! every method or per method). The server's `limit` module enforces them.

use std::fmt;
use std::str::FromStr;

/// `concurrency_limiter`: whether a method of a blocking service without a
/// fixed `max_concurrency` gets an adaptive limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ConcurrencyLimiter {
    /// No adaptive limit: only fixed `max_concurrency` limits apply.
    #[default]
    Off,
    /// An adaptive limit per method (brpc's auto concurrency limiter):
    /// about the method's lowest latency times its peak throughput, so the
    /// pool's queue stays short and the surplus is refused at once.
    Auto,
}

impl FromStr for ConcurrencyLimiter {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, String> {
        match value.to_ascii_lowercase().as_str() {
            "auto" => Ok(ConcurrencyLimiter::Auto),
            "off" | "none" => Ok(ConcurrencyLimiter::Off),
            _ => Err(format!("'{value}' is not one of auto, off")),
        }
    }
}

impl fmt::Display for ConcurrencyLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ConcurrencyLimiter::Off => "off",
            ConcurrencyLimiter::Auto => "auto",
        })
    }
}

/// `max_concurrency`: fixed limits on the calls of a method running or
/// queued at once. `100` limits every method; `EchoService.Echo:50,
/// *:100` limits one method to 50 and every other to 100; `0` (the
/// default) sets none. A method's own entry wins over `*`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MaxConcurrency {
    /// The limit of every method without its own entry.
    pub every_method: Option<u32>,
    /// `(service, method, limit)` entries.
    pub methods: Vec<(String, String, u32)>,
}

impl MaxConcurrency {
    /// The fixed limit of `service.method`, if any.
    pub fn for_method(&self, service: &str, method: &str) -> Option<u32> {
        self.methods
            .iter()
            .find(|(s, m, _)| s == service && m == method)
            .map(|(_, _, limit)| *limit)
            .or(self.every_method)
    }

    /// True when no fixed limit is set at all.
    pub fn is_empty(&self) -> bool {
        self.every_method.is_none() && self.methods.is_empty()
    }
}

impl FromStr for MaxConcurrency {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, String> {
        let mut spec = MaxConcurrency::default();
        if value.trim() == "0" {
            return Ok(spec);
        }
        for item in value.split(',').map(str::trim) {
            let (target, limit) = match item.rsplit_once(':') {
                Some((target, limit)) => (target.trim(), limit.trim()),
                None => ("*", item),
            };
            let limit = match limit.parse::<u32>() {
                Ok(0) => return Err(format!("'{item}': a limit must be greater than 0")),
                Ok(n) => n,
                Err(_) => return Err(format!("'{item}': '{limit}' is not a number")),
            };
            if target == "*" {
                spec.every_method = Some(limit);
                continue;
            }
            match target.split_once('.') {
                Some((s, m)) if !s.is_empty() && !m.is_empty() && !m.contains('.') => {
                    spec.methods.push((s.to_owned(), m.to_owned(), limit))
                }
                _ => {
                    return Err(format!(
                        "'{item}': expected N, Service.Method:N or *:N (comma-separated)"
                    ))
                }
            }
        }
        Ok(spec)
    }
}

impl fmt::Display for MaxConcurrency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut items: Vec<String> = self
            .methods
            .iter()
            .map(|(s, m, n)| format!("{s}.{m}:{n}"))
            .collect();
        items.extend(self.every_method.map(|n| format!("*:{n}")));
        if items.is_empty() {
            return f.write_str("0");
        }
        f.write_str(&items.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_parses() {
        let all: MaxConcurrency = "100".parse().unwrap();
        assert_eq!(all.for_method("A", "b"), Some(100));
        let none: MaxConcurrency = "0".parse().unwrap();
        assert!(none.is_empty());
        let mixed: MaxConcurrency = "EchoService.Echo:50, *:200 ,User.Login : 7"
            .parse()
            .unwrap();
        assert_eq!(mixed.for_method("EchoService", "Echo"), Some(50));
        assert_eq!(mixed.for_method("User", "Login"), Some(7));
        assert_eq!(mixed.for_method("User", "Register"), Some(200));
        assert_eq!(
            mixed.to_string(),
            "EchoService.Echo:50, User.Login:7, *:200"
        );
        let one: MaxConcurrency = "EchoService.Echo:5".parse().unwrap();
        assert_eq!(one.for_method("EchoService", "Other"), None);
    }

    #[test]
    fn bad_forms_say_what_is_wrong() {
        for (bad, why) in [
            ("Echo:5", "expected N, Service.Method:N"),
            ("A.b.c:5", "expected N"),
            ("A.b:0", "greater than 0"),
            ("A.b:many", "not a number"),
            ("ten", "not a number"),
            ("", "not a number"),
        ] {
            let e = bad.parse::<MaxConcurrency>().unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
        assert!("sometimes".parse::<ConcurrencyLimiter>().is_err());
        assert_eq!("AUTO".parse(), Ok(ConcurrencyLimiter::Auto));
    }
}
