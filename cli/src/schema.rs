//! Where a service's descriptors come from: the provider's built-in
//! `mprpc.Reflection` service, or `--proto` files compiled here with protox
//! (the seed's C++ providers have no reflection). Either way the answer is
//! a prost-reflect `ServiceDescriptor`, plus the name the service is called
//! by on the wire, which may be the short `.proto` name.

use std::path::PathBuf;

use clap::Args;
use mprpc::discovery::{Discover, Endpoint, WireFormat};
use mprpc::service::reflection::SERVICE_NAME as REFLECTION;
use mprpc::{CallOptions, Code, Status};
use prost_reflect::{DescriptorPool, MethodDescriptor, ServiceDescriptor};

use crate::error::{fail, Error, Result};
use crate::target::Target;

/// The `mprpc.Reflection` client generated from `proto/mprpc/reflection.proto`.
#[allow(
    missing_docs,
    missing_debug_implementations,
    unreachable_pub,
    dead_code
)]
pub(crate) mod pb {
    mprpc::include_proto!("mprpc");
}

/// The descriptors of `proto/mprpc/reflection.proto` (no provider serves
/// them: they would describe the very service asked for them).
const REFLECTION_FDS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/reflection.fds"));

/// Where descriptors come from when not from reflection.
#[derive(Debug, Args)]
pub(crate) struct SchemaArgs {
    /// A .proto file (or an encoded FileDescriptorSet) describing the
    /// service, instead of asking the provider; may be repeated. Needed for
    /// seed-format providers.
    #[arg(long, value_name = "FILE")]
    proto: Vec<PathBuf>,
    /// Where the --proto files' imports are (their own folders are searched too).
    #[arg(long = "import-path", short = 'I', value_name = "DIR")]
    import_paths: Vec<PathBuf>,
}

impl SchemaArgs {
    /// `--proto` files and `-I` folders given by another tool.
    pub(crate) fn new(proto: Vec<PathBuf>, import_paths: Vec<PathBuf>) -> SchemaArgs {
        SchemaArgs {
            proto,
            import_paths,
        }
    }
}

/// A service's schema and its wire name.
#[derive(Debug, Clone)]
pub(crate) struct ServiceSchema {
    /// The name it is called by (`UserServiceRpc`).
    pub(crate) wire: String,
    /// Its descriptor (`fixbug.UserServiceRpc`).
    pub(crate) descriptor: ServiceDescriptor,
}

impl ServiceSchema {
    /// The method `name`, or an error listing the methods there are.
    pub(crate) fn method(&self, name: &str) -> Result<MethodDescriptor> {
        if let Some(m) = self.descriptor.methods().find(|m| m.name() == name) {
            return Ok(m);
        }
        let known: Vec<String> = self
            .descriptor
            .methods()
            .map(|m| m.name().to_owned())
            .collect();
        fail!(
            "unknown method '{name}': service '{}' has {}",
            self.wire,
            list_or_none(&known)
        )
    }
}

fn list_or_none(names: &[String]) -> String {
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}

/// Finds schemas for one command.
pub(crate) struct Schemas<'a> {
    target: &'a Target,
    args: &'a SchemaArgs,
    discover: &'a dyn Discover,
}

impl std::fmt::Debug for Schemas<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Schemas")
            .field("args", &self.args)
            .finish_non_exhaustive()
    }
}

impl<'a> Schemas<'a> {
    pub(crate) fn new(
        target: &'a Target,
        args: &'a SchemaArgs,
        discover: &'a dyn Discover,
    ) -> Self {
        Schemas {
            target,
            args,
            discover,
        }
    }

    /// The schema of the service called `wire`.
    pub(crate) fn service(&self, wire: &str) -> Result<ServiceSchema> {
        let descriptor = if wire == REFLECTION {
            find(&builtin(), wire, "mprpc's reflection.proto")?
        } else if !self.args.proto.is_empty() {
            let files: Vec<String> = self
                .args
                .proto
                .iter()
                .map(|p| p.display().to_string())
                .collect();
            find(&self.compile()?, wire, &files.join(", "))?
        } else {
            self.reflect(wire)?
        };
        Ok(ServiceSchema {
            wire: wire.to_owned(),
            descriptor,
        })
    }

    /// Compiles (or decodes) the --proto files.
    fn compile(&self) -> Result<DescriptorPool> {
        let mut pool = DescriptorPool::new();
        let mut protos = Vec::new();
        for path in &self.args.proto {
            if path.extension().is_some_and(|e| e == "proto") {
                protos.push(path);
                continue;
            }
            let bytes = std::fs::read(path)
                .map_err(|e| Error::new(format!("--proto {}: {e}", path.display())))?;
            pool.decode_file_descriptor_set(&bytes[..]).map_err(|e| {
                Error::new(format!(
                    "--proto {}: not a .proto file nor a FileDescriptorSet: {e}",
                    path.display()
                ))
            })?;
        }
        if !protos.is_empty() {
            let mut includes = self.args.import_paths.clone();
            for proto in &protos {
                let dir = proto.parent().filter(|d| !d.as_os_str().is_empty());
                includes.push(dir.map_or_else(|| PathBuf::from("."), PathBuf::from));
            }
            let compiled = protox::Compiler::new(&includes)
                .and_then(|mut c| {
                    c.include_imports(true).open_files(&protos)?;
                    Ok(c.file_descriptor_set())
                })
                .map_err(|e| Error::new(format!("--proto: {e}")))?;
            pool.add_file_descriptor_set(compiled)
                .map_err(|e| Error::new(format!("--proto: {e}")))?;
        }
        Ok(pool)
    }

    /// Asks a provider of `wire` for its schema.
    fn reflect(&self, wire: &str) -> Result<ServiceDescriptor> {
        let providers = self.target.providers(self.discover, wire)?;
        let Some(provider) = providers.iter().find(|p| p.format == WireFormat::Mprpc) else {
            let addrs: Vec<String> = providers.iter().map(|p| p.addr.to_string()).collect();
            fail!(
                "'{wire}' is served by seed-format providers only ({}), which have no reflection: pass --proto FILE",
                addrs.join(", ")
            )
        };
        let stub = pb::ReflectionStub::new(self.target.direct(provider)?);
        let options = CallOptions::with_timeout(self.target.timeout());
        let request = pb::GetSchemaRequest {
            service: wire.to_owned(),
        };
        let reply = stub
            .get_schema_async(&request, &options)
            .wait()
            .map_err(|status| self.reflection_error(&stub, provider, wire, status))?;
        if reply.file_descriptor_set.is_empty() {
            fail!(
                "provider {} publishes '{wire}' without a schema (a hand-written service): pass --proto FILE",
                provider.addr
            )
        }
        let pool = DescriptorPool::decode(reply.file_descriptor_set).map_err(|e| {
            Error::new(format!(
                "provider {}: the schema of '{wire}' does not decode: {e}",
                provider.addr
            ))
        })?;
        find(
            &pool,
            &reply.proto_name,
            &format!("the schema provider {} sent", provider.addr),
        )
    }

    /// Says why reflection failed, in the terms of the user's request.
    fn reflection_error(
        &self,
        stub: &pb::ReflectionStub,
        provider: &Endpoint,
        wire: &str,
        status: Status,
    ) -> Error {
        let addr = provider.addr;
        match status.code() {
            Code::UnknownService if status.message().contains(REFLECTION) => Error::new(format!(
                "provider {addr} has no reflection (an mprpc before it): pass --proto FILE"
            )),
            Code::UnknownService => {
                let options = CallOptions::with_timeout(self.target.timeout());
                let known = stub
                    .list_services_async(&pb::ListServicesRequest {}, &options)
                    .wait()
                    .map(|l| l.services.into_iter().map(|s| s.name).collect::<Vec<_>>())
                    .unwrap_or_default();
                Error::new(format!(
                    "unknown service '{wire}': provider {addr} publishes {}",
                    list_or_none(&known)
                ))
            }
            Code::Unavailable | Code::DeadlineExceeded => Error::new(format!(
                "cannot reach provider {addr} (to ask it for the schema of '{wire}'): {}",
                status.message()
            )),
            Code::Unauthenticated => Error::new(format!(
                "provider {addr} wants a token: --token TOKEN, or -i FILE with the consumers' auth_token ({status})"
            )),
            _ => Error::new(format!("provider {addr}: reflection failed: {status}")),
        }
    }
}

/// The built-in descriptors of `mprpc.Reflection`.
fn builtin() -> DescriptorPool {
    DescriptorPool::decode(REFLECTION_FDS).expect("build.rs wrote a valid FileDescriptorSet")
}

/// The service `name` in `pool`: by full name, or by a unique short name.
fn find(pool: &DescriptorPool, name: &str, from: &str) -> Result<ServiceDescriptor> {
    if let Some(service) = pool.get_service_by_name(name) {
        return Ok(service);
    }
    let short: Vec<ServiceDescriptor> = pool.services().filter(|s| s.name() == name).collect();
    match &short[..] {
        [one] => Ok(one.clone()),
        [] => {
            let known: Vec<String> = pool.services().map(|s| s.full_name().to_owned()).collect();
            fail!(
                "unknown service '{name}' in {from} (services there: {})",
                list_or_none(&known)
            )
        }
        many => {
            let names: Vec<&str> = many.iter().map(|s| s.full_name()).collect();
            fail!(
                "service '{name}' is ambiguous in {from}: {}; give the full name",
                names.join(", ")
            )
        }
    }
}
