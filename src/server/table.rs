//! The service table: a service's wire name → the service and where its
//! handlers run (inline on the reactor, on the worker pool, or as futures
//! polled on the reactor; blocking stream handlers on the worker pool).

use std::collections::HashMap;
use std::sync::Arc;

use crate::service::reflection::{self, Reflection};
use crate::service::{Service, ServiceInfo};

/// A published service and where its handlers run.
#[derive(Clone)]
pub(crate) struct Entry {
    pub(crate) service: Arc<dyn Service>,
    pub(crate) blocking: bool,
    /// Its handlers return futures (`Service::answers_later`): they run on
    /// the reactor's executor (`pending`), never on the pool.
    pub(crate) answers_later: bool,
    /// Its stream handlers block (`Service::blocking_streams`): they run
    /// on the worker pool.
    pub(crate) blocking_streams: bool,
    /// Metrics id of the service's first method; the others follow in
    /// `methods()` order.
    pub(crate) first_method_id: usize,
}

impl Entry {
    /// The metrics id of `method`, if the service has it.
    pub(crate) fn method_id(&self, method: &[u8]) -> Option<usize> {
        let methods = self.service.methods();
        let pos = methods.iter().position(|m| m.as_bytes() == method)?;
        Some(self.first_method_id + pos)
    }

    /// Whether the service has `method`.
    pub(crate) fn has_method(&self, method: &[u8]) -> bool {
        self.method_id(method).is_some()
    }
}

/// Up to this many services, lookup scans instead of hashing.
const LINEAR_LOOKUP_MAX: usize = 8;

/// Service name → entry, looked up with the request's name bytes.
#[derive(Default)]
pub(crate) struct ServiceTable {
    by_name: HashMap<Box<[u8]>, Entry>,
    /// The same entries in a vector, for the linear lookup.
    list: Vec<(Box<[u8]>, Entry)>,
    /// (service, method) for each metrics id.
    method_names: Vec<(&'static str, &'static str)>,
}

impl ServiceTable {
    pub(crate) fn insert(&mut self, service: Arc<dyn Service>, blocking: bool) {
        let name: Box<[u8]> = service.name().as_bytes().into();
        if self.by_name.contains_key(&name) {
            tracing::warn!(
                service = service.name(),
                "service published twice; the later one wins"
            );
        }
        let first_method_id = self.method_names.len();
        let service_name = service.name();
        self.method_names
            .extend(service.methods().iter().map(|m| (service_name, *m)));
        let entry = Entry {
            answers_later: service.answers_later(),
            blocking_streams: service.blocking_streams(),
            service,
            blocking,
            first_method_id,
        };
        self.list.retain(|(n, _)| *n != name);
        self.list.push((name.clone(), entry.clone()));
        self.by_name.insert(name, entry);
    }

    /// Adds the built-in `mprpc.Reflection` over the services published so
    /// far, unless a service of that name is published already.
    pub(crate) fn add_reflection(&mut self) {
        if self.get(reflection::SERVICE_NAME.as_bytes()).is_some() {
            return;
        }
        let reflection = Reflection::new(self.list.iter().map(|(_, e)| &*e.service));
        self.insert(Arc::new(reflection), false);
    }

    /// (service, method) for each metrics id.
    pub(crate) fn method_names(&self) -> Vec<(&'static str, &'static str)> {
        self.method_names.clone()
    }

    pub(crate) fn get(&self, name: &[u8]) -> Option<&Entry> {
        // A handful of services is the common case: comparing a few short
        // names beats hashing one with SipHash.
        if self.by_name.len() <= LINEAR_LOOKUP_MAX {
            return self
                .list
                .iter()
                .find(|(n, _)| &n[..] == name)
                .map(|(_, e)| e);
        }
        self.by_name.get(name)
    }

    pub(crate) fn has_blocking(&self) -> bool {
        self.by_name
            .values()
            .any(|e| e.blocking || e.blocking_streams)
    }

    /// Every service and its methods, sorted by name.
    pub(crate) fn describe(&self) -> Vec<ServiceInfo> {
        let mut list: Vec<_> = self
            .by_name
            .values()
            .map(|e| ServiceInfo {
                name: e.service.name(),
                methods: e.service.methods(),
            })
            .collect();
        list.sort();
        list
    }
}
