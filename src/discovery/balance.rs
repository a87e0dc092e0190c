//! The load-balancing policy names a channel can be configured with.
//!
//! Only the choice lives here, so the config file can name a policy without
//! depending on the client; the policies themselves (cursors, generators,
//! hash rings) are the client's `Balancer`.

use std::fmt;
use std::str::FromStr;

/// How a channel spreads calls over a service's providers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum LoadBalance {
    /// Each call goes to the next provider in turn.
    #[default]
    RoundRobin,
    /// Each call goes to a provider chosen at random, in proportion to its
    /// `Endpoint::weight` (published in ZooKeeper; 100 by default).
    Random,
    /// Of two random providers, the one with fewer calls in flight from this
    /// channel (power of two choices).
    LeastOutstanding,
    /// Calls with the same `CallOptions::hash_key` go to the same provider;
    /// calls without a key fall back to round robin.
    ConsistentHash,
}

impl LoadBalance {
    /// The policy's name as the config file spells it.
    pub fn name(self) -> &'static str {
        match self {
            LoadBalance::RoundRobin => "round_robin",
            LoadBalance::Random => "random",
            LoadBalance::LeastOutstanding => "least_outstanding",
            LoadBalance::ConsistentHash => "consistent_hash",
        }
    }
}

impl fmt::Display for LoadBalance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Parses a policy name, case-insensitively, with `-` or `_` between words.
impl FromStr for LoadBalance {
    type Err = String;

    fn from_str(value: &str) -> Result<LoadBalance, String> {
        match value.to_ascii_lowercase().replace('-', "_").as_str() {
            "round_robin" => Ok(LoadBalance::RoundRobin),
            "random" => Ok(LoadBalance::Random),
            "least_outstanding" => Ok(LoadBalance::LeastOutstanding),
            "consistent_hash" => Ok(LoadBalance::ConsistentHash),
            _ => Err(format!(
                "'{value}' is not one of round_robin, random, least_outstanding, consistent_hash"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for p in [
            LoadBalance::RoundRobin,
            LoadBalance::Random,
            LoadBalance::LeastOutstanding,
            LoadBalance::ConsistentHash,
        ] {
            assert_eq!(p.to_string().parse::<LoadBalance>(), Ok(p));
        }
        assert_eq!(
            "Least-Outstanding".parse(),
            Ok(LoadBalance::LeastOutstanding)
        );
        assert!("fastest".parse::<LoadBalance>().is_err());
    }
}
