//! Providers as a consumer sees them: an [`Endpoint`], the [`Discover`]
//! trait that lists a service's endpoints, and [`StaticDiscover`], a fixed
//! list. Re-exported by [`crate::discovery`]; the ZooKeeper registry builds
//! on this module, and `discovery` on both, so neither imports the other.
//!
//! The client asks a [`Discover`] for a service's providers on every call, so
//! implementations must answer from memory: [`StaticDiscover`] holds a fixed
//! list (a directly configured address, as in tests and the core examples);
//! the ZooKeeper registry keeps a watched cache behind the same trait. The
//! list is shared as an `Arc<[Endpoint]>` so a lookup is a clone, not a copy.
//! A source that numbers its changes ([`Discover::generation`]) is not
//! even asked again while the number stays put (see `client::providers`).

use std::collections::HashMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;

use crate::call::status::Status;
use crate::net::tls::TlsMode;
pub use crate::protocol::WireFormat;

/// One provider of a service.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Endpoint {
    /// Where the provider listens.
    pub addr: SocketAddr,
    /// Relative share of traffic under `LoadBalance::Random` (default 100).
    pub weight: u32,
    /// The wire format the provider speaks (ours or the seed's).
    pub format: WireFormat,
    /// The largest frame body the provider accepts, when it published one
    /// (ZooKeeper discovery): larger calls fail locally, before sending.
    pub max_frame: Option<usize>,
    /// What the provider published about TLS on its port (ZooKeeper
    /// discovery; `Off` when unknown). A consumer speaks TLS to every
    /// provider when it has [`ChannelOptions::tls`](crate::ChannelOptions::tls);
    /// without it, a provider that requires TLS is not called.
    pub tls: TlsMode,
}

impl Endpoint {
    /// An mprpc-format provider at `addr` with the default weight (100)
    /// and no published frame limit.
    pub fn new(addr: SocketAddr) -> Endpoint {
        Endpoint {
            addr,
            weight: 100,
            format: WireFormat::Mprpc,
            max_frame: None,
            tls: TlsMode::Off,
        }
    }

    /// This endpoint with traffic share `weight`.
    #[must_use]
    pub fn weight(mut self, weight: u32) -> Endpoint {
        self.weight = weight;
        self
    }

    /// This endpoint speaking `format`.
    #[must_use]
    pub fn format(mut self, format: WireFormat) -> Endpoint {
        self.format = format;
        self
    }

    /// This endpoint accepting frame bodies of at most `max_frame` bytes.
    #[must_use]
    pub fn max_frame(mut self, max_frame: Option<usize>) -> Endpoint {
        self.max_frame = max_frame;
        self
    }

    /// This endpoint with `tls` published for its port.
    #[must_use]
    pub fn tls(mut self, tls: TlsMode) -> Endpoint {
        self.tls = tls;
        self
    }
}

/// A source of provider lists, answered from memory.
pub trait Discover: Send + Sync + 'static {
    /// The current providers of `service`. An empty list or an error makes
    /// the call fail with `Unavailable`.
    fn providers(&self, service: &str) -> Result<Arc<[Endpoint]>, Status>;

    /// The providers to call `service`.`method` on: by default every
    /// provider of the service. A registry that lists providers per method
    /// (the seed's `/<Service>/<Method>` layout) answers for that method
    /// only, and fails when it has none, so nothing is sent.
    fn method_providers(&self, service: &str, method: &str) -> Result<Arc<[Endpoint]>, Status> {
        let _ = method;
        self.providers(service)
    }

    /// A number that moves whenever an answer of `providers` or
    /// `method_providers` may change (a discovery update), so a client may
    /// keep an answer while it stays put; `None` (the default): answers may
    /// change at any time and are asked for on every call. It must move
    /// *after* the new answers are visible, and be `Some` always or never.
    /// Worth it when an answer costs more than comparing the names (a
    /// fixed list's does not: [`StaticDiscover`] answers `None`).
    fn generation(&self) -> Option<u64> {
        None
    }

    /// One list that answers `method_providers` for every service and
    /// method, now and always, if this source has one (a fixed list of
    /// providers for every service); a client then takes it once instead
    /// of asking on every call. `None` (the default): ask per call.
    fn fixed(&self) -> Option<Arc<[Endpoint]>> {
        None
    }
}

/// A fixed list of providers, for every service or per service.
#[derive(Debug, Clone, Default)]
pub struct StaticDiscover {
    all: Option<Arc<[Endpoint]>>,
    per_service: HashMap<String, Arc<[Endpoint]>>,
}

impl StaticDiscover {
    /// Every service is served by these endpoints.
    pub fn new(endpoints: Vec<Endpoint>) -> StaticDiscover {
        StaticDiscover {
            all: Some(endpoints.into()),
            per_service: HashMap::new(),
        }
    }

    /// Every service is served at `addr` (e.g. "127.0.0.1:8000").
    pub fn single(addr: impl ToSocketAddrs) -> std::io::Result<StaticDiscover> {
        let addr = addr.to_socket_addrs()?.next().ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "address resolved to nothing",
            )
        })?;
        Ok(StaticDiscover::new(vec![Endpoint::new(addr)]))
    }

    /// `service` is served by these endpoints (overrides the shared list).
    pub fn with_service(mut self, service: &str, endpoints: Vec<Endpoint>) -> StaticDiscover {
        self.per_service
            .insert(service.to_owned(), endpoints.into());
        self
    }
}

impl Discover for StaticDiscover {
    fn providers(&self, service: &str) -> Result<Arc<[Endpoint]>, Status> {
        // Hashing the name is skipped when no per-service list exists (the
        // usual direct-address case): this runs on every call.
        let own = if self.per_service.is_empty() {
            None
        } else {
            self.per_service.get(service)
        };
        own.or(self.all.as_ref()).cloned().ok_or_else(|| {
            Status::unavailable(format!("no provider known for service '{service}'"))
        })
    }

    fn fixed(&self) -> Option<Arc<[Endpoint]>> {
        // Only a list for every service, with no per-service exceptions.
        self.per_service
            .is_empty()
            .then(|| self.all.clone())
            .flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoints(port: u16) -> Vec<Endpoint> {
        vec![Endpoint::new(SocketAddr::from(([127, 0, 0, 1], port)))]
    }

    #[test]
    fn one_list_for_all_is_fixed_and_per_service_lists_are_not() {
        let all = StaticDiscover::new(endpoints(1));
        let fixed = all.fixed().expect("one list for every service");
        assert_eq!(fixed[0].addr.port(), 1);
        let mixed = StaticDiscover::new(endpoints(1)).with_service("S", endpoints(2));
        assert!(mixed.fixed().is_none());
        assert_eq!(mixed.providers("S").unwrap()[0].addr.port(), 2);
    }
}
