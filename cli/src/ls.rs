//! `mprpc ls [SERVICE]`: with `--zk`, every service in the registry, its
//! providers with the data they registered, and its methods (seed-format
//! providers, known only from the seed's layout, are marked); with
//! `--addr`, what that provider publishes, from its reflection service.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use mprpc::discovery::WireFormat;
use mprpc::registry::{ProviderInfo, ServiceListing};
use mprpc::CallOptions;

use crate::error::{fail, Error, Result};
use crate::schema::pb;
use crate::target::Target;

/// Runs `ls`, printing on stdout.
pub(crate) fn run(target: &Target, only: Option<&str>) -> Result<()> {
    match target.browse()? {
        Some(services) => print!("{}", registry(&services, only)?),
        None => print!("{}", provider(target, only)?),
    }
    Ok(())
}

/// The registry's services (or `only`).
fn registry(services: &[ServiceListing], only: Option<&str>) -> Result<String> {
    let shown: Vec<&ServiceListing> = services
        .iter()
        .filter(|s| only.is_none_or(|name| s.name == name))
        .collect();
    if let (Some(name), true) = (only, shown.is_empty()) {
        let known: Vec<&str> = services.iter().map(|s| &s.name[..]).collect();
        fail!(
            "unknown service '{name}': the registry has {}",
            if known.is_empty() {
                "none".to_owned()
            } else {
                known.join(", ")
            }
        )
    }
    let mut out = String::new();
    if shown.is_empty() {
        out.push_str("no services registered\n");
    }
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    for service in shown {
        let seed = service.seed_providers();
        let mut methods: BTreeSet<&str> = service
            .providers
            .iter()
            .flat_map(|p| p.methods.iter().map(|m| &m[..]))
            .collect();
        methods.extend(service.seed_methods.iter().map(|m| &m.method[..]));
        let _ = writeln!(out, "{}", service.name);
        let _ = writeln!(
            out,
            "  methods: {}",
            methods.into_iter().collect::<Vec<_>>().join(", ")
        );
        for p in &service.providers {
            let _ = writeln!(out, "  provider {}", provider_line(p, now_ms));
        }
        for addr in seed {
            let served: Vec<&str> = service
                .seed_methods
                .iter()
                .filter(|m| m.addr == addr)
                .map(|m| &m.method[..])
                .collect();
            let _ = writeln!(
                out,
                "  provider {addr}  seed format (seed layout: {})",
                served.join(", ")
            );
        }
    }
    Ok(out)
}

/// `addr  key=value ...` from a provider node.
fn provider_line(p: &ProviderInfo, now_ms: u64) -> String {
    let mut line = format!(
        "{}  methods={} weight={} version={} pid={} tls={}",
        p.addr,
        p.methods.join(","),
        p.weight,
        p.version,
        p.pid,
        p.tls
    );
    if let Some(max) = p.max_frame {
        let _ = write!(line, " max_frame={max}");
    }
    if p.start_time_ms > 0 && now_ms >= p.start_time_ms {
        let _ = write!(line, " up={}", uptime((now_ms - p.start_time_ms) / 1000));
    }
    line
}

fn uptime(secs: u64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m{}s", s / 60, s % 60),
        s => format!("{}h{}m", s / 3600, (s % 3600) / 60),
    }
}

/// What the `--addr` provider publishes, from its reflection.
fn provider(target: &Target, only: Option<&str>) -> Result<String> {
    let endpoint = target.endpoint().expect("browse() is None only for --addr");
    if endpoint.format == WireFormat::Seed {
        fail!("a seed-format provider cannot list its services (it has no reflection); use --zk to read the registry")
    }
    let stub = pb::ReflectionStub::new(target.direct(endpoint)?);
    let list = stub
        .list_services_async(
            &pb::ListServicesRequest {},
            &CallOptions::with_timeout(target.timeout()),
        )
        .wait()
        .map_err(|status| {
            Error::new(format!(
                "provider {}: cannot list its services: {status}",
                endpoint.addr
            ))
        })?;
    let shown: Vec<&pb::ServiceInfo> = list
        .services
        .iter()
        .filter(|s| only.is_none_or(|name| s.name == name))
        .collect();
    if let (Some(name), true) = (only, shown.is_empty()) {
        let known: Vec<&str> = list.services.iter().map(|s| &s.name[..]).collect();
        fail!(
            "unknown service '{name}': provider {} publishes {}",
            endpoint.addr,
            known.join(", ")
        )
    }
    let mut out = String::new();
    for s in shown {
        let proto = if s.proto_name.is_empty() || s.proto_name == s.name {
            String::new()
        } else {
            format!("  ({})", s.proto_name)
        };
        let _ = writeln!(out, "{}{proto}", s.name);
        let _ = writeln!(out, "  methods: {}", s.methods.join(", "));
        let _ = writeln!(out, "  provider {}", endpoint.addr);
    }
    Ok(out)
}
