//! The built-in `mprpc.Reflection` service: every provider lists the
//! services it publishes and hands out their `.proto` schemas, so a tool
//! (the `mprpc` command-line client) can call any method with JSON without
//! being compiled against its `.proto` files, as gRPC reflection allows.
//!
//! The schema is `proto/mprpc/reflection.proto`. The messages are written
//! here by hand with prost's derive (the library has no build step, like
//! the seed's `RpcHeader` in `protocol::seed`); the CLI generates its stub from
//! the `.proto` file, and its tests call real providers, which keeps the two
//! in step. Schemas come from [`Service::schema`], which `mprpc-build`
//! fills with the descriptors it compiled.
//!
//! The server adds this service to every table when it starts
//! ([`Reflection::new`]); it is served on the RPC port in both wire
//! formats, but it is neither registered in ZooKeeper nor printed among the
//! provider's services: ask a provider found there.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use prost::Message;

use crate::call::status::Status;
use crate::service::{CallContext, Service, ServiceInfo as Published};

/// The service's wire name (its full `.proto` name).
pub const SERVICE_NAME: &str = "mprpc.Reflection";
/// Lists the published services.
pub const LIST_SERVICES: &str = "ListServices";
/// Hands out one service's descriptors.
pub const GET_SCHEMA: &str = "GetSchema";

/// `mprpc.ListServicesRequest` (no fields).
#[derive(Clone, PartialEq, Message)]
pub struct ListServicesRequest {}

/// `mprpc.ServiceInfo`: one published service.
#[derive(Clone, PartialEq, Message)]
pub struct ServiceInfo {
    /// The name it is called and registered by.
    #[prost(string, tag = "1")]
    pub name: String,
    /// Its full `.proto` name; empty when it has no schema.
    #[prost(string, tag = "2")]
    pub proto_name: String,
    /// Its methods.
    #[prost(string, repeated, tag = "3")]
    pub methods: Vec<String>,
}

/// `mprpc.ListServicesResponse`.
#[derive(Clone, PartialEq, Message)]
pub struct ListServicesResponse {
    /// Every published service, by name, this one included.
    #[prost(message, repeated, tag = "1")]
    pub services: Vec<ServiceInfo>,
}

/// `mprpc.GetSchemaRequest`.
#[derive(Clone, PartialEq, Message)]
pub struct GetSchemaRequest {
    /// A service's name as [`ListServicesResponse`] gives it.
    #[prost(string, tag = "1")]
    pub service: String,
}

/// `mprpc.GetSchemaResponse`.
#[derive(Clone, PartialEq, Message)]
pub struct GetSchemaResponse {
    /// The service's full `.proto` name.
    #[prost(string, tag = "1")]
    pub proto_name: String,
    /// An encoded `google.protobuf.FileDescriptorSet` (empty: no schema).
    #[prost(bytes = "bytes", tag = "2")]
    pub file_descriptor_set: Bytes,
}

/// One service as reflection reports it, fixed when the server starts.
#[derive(Debug, Clone)]
struct Entry {
    info: Published,
    schema: Option<crate::service::Schema>,
}

/// The reflection service over a server's published services.
#[derive(Debug, Clone)]
pub struct Reflection {
    services: Arc<[Entry]>,
}

impl Reflection {
    /// Reflection over `services` (and itself), sorted by name.
    pub fn new<'a>(services: impl IntoIterator<Item = &'a dyn Service>) -> Reflection {
        let mut list: Vec<Entry> = services
            .into_iter()
            .filter(|s| s.name() != SERVICE_NAME)
            .map(|s| Entry {
                info: Published::new(s.name(), s.methods()),
                schema: s.schema(),
            })
            .collect();
        list.push(Entry {
            info: Published::new(SERVICE_NAME, &[LIST_SERVICES, GET_SCHEMA]),
            schema: None,
        });
        list.sort_by_key(|e| e.info.name);
        Reflection {
            services: list.into(),
        }
    }

    fn list(&self) -> ListServicesResponse {
        let services = self
            .services
            .iter()
            .map(|e| ServiceInfo {
                name: e.info.name.to_owned(),
                proto_name: proto_name(e).to_owned(),
                methods: e.info.methods.iter().map(|m| (*m).to_owned()).collect(),
            })
            .collect();
        ListServicesResponse { services }
    }

    fn schema(&self, request: GetSchemaRequest) -> Result<GetSchemaResponse, Status> {
        let entry = self
            .services
            .iter()
            .find(|e| e.info.name == request.service)
            .ok_or_else(|| Status::unknown_service(&request.service))?;
        Ok(GetSchemaResponse {
            proto_name: proto_name(entry).to_owned(),
            file_descriptor_set: entry
                .schema
                .map_or_else(Bytes::new, |s| Bytes::from_static(s.file_descriptor_set)),
        })
    }
}

/// The full `.proto` name reflection reports for `entry`.
fn proto_name(entry: &Entry) -> &'static str {
    match entry.schema {
        Some(schema) => schema.proto_name,
        None if entry.info.name == SERVICE_NAME => SERVICE_NAME,
        None => "",
    }
}

impl Service for Reflection {
    fn name(&self) -> &'static str {
        SERVICE_NAME
    }

    fn methods(&self) -> &'static [&'static str] {
        &[LIST_SERVICES, GET_SCHEMA]
    }

    fn call(
        &self,
        method: &str,
        _ctx: &CallContext,
        request: Bytes,
        response: &mut BytesMut,
    ) -> Result<(), Status> {
        let bad = |e: prost::DecodeError| {
            Status::bad_request(format!(
                "{SERVICE_NAME}.{method}: cannot decode the request: {e}"
            ))
        };
        match method {
            LIST_SERVICES => {
                ListServicesRequest::decode(request).map_err(bad)?;
                encode(&self.list(), response)
            }
            GET_SCHEMA => {
                let request = GetSchemaRequest::decode(request).map_err(bad)?;
                encode(&self.schema(request)?, response)
            }
            _ => Err(Status::unknown_method(SERVICE_NAME, method)),
        }
    }
}

fn encode(message: &impl Message, out: &mut BytesMut) -> Result<(), Status> {
    message
        .encode(out)
        .map_err(|e| Status::internal(format!("{SERVICE_NAME}: cannot encode the reply: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::call::status::Code;
    use crate::service::Schema;

    struct Plain;

    impl Service for Plain {
        fn name(&self) -> &'static str {
            "Plain"
        }
        fn methods(&self) -> &'static [&'static str] {
            &["Do"]
        }
        fn call(&self, m: &str, _: &CallContext, _: Bytes, _: &mut BytesMut) -> Result<(), Status> {
            Err(Status::unknown_method("Plain", m))
        }
    }

    struct Described;

    impl Service for Described {
        fn name(&self) -> &'static str {
            "Described"
        }
        fn methods(&self) -> &'static [&'static str] {
            &["A", "B"]
        }
        fn call(&self, m: &str, _: &CallContext, _: Bytes, _: &mut BytesMut) -> Result<(), Status> {
            Err(Status::unknown_method("Described", m))
        }
        fn schema(&self) -> Option<Schema> {
            Some(Schema {
                proto_name: "pkg.Described",
                file_descriptor_set: b"\x0a\x00",
            })
        }
    }

    fn ctx() -> CallContext {
        CallContext::new(1, None, "127.0.0.1:1".parse().unwrap())
    }

    fn call<M: Message + Default>(
        r: &Reflection,
        method: &str,
        req: impl Message,
    ) -> Result<M, Status> {
        let mut out = BytesMut::new();
        r.call(method, &ctx(), req.encode_to_vec().into(), &mut out)?;
        Ok(M::decode(out.freeze()).unwrap())
    }

    fn reflection() -> Reflection {
        let services: [&dyn Service; 2] = [&Plain, &Described];
        Reflection::new(services)
    }

    #[test]
    fn lists_every_service_with_its_methods_and_itself() {
        let list: ListServicesResponse =
            call(&reflection(), LIST_SERVICES, ListServicesRequest {}).unwrap();
        let rows: Vec<(&str, &str, Vec<&str>)> = list
            .services
            .iter()
            .map(|s| {
                (
                    &s.name[..],
                    &s.proto_name[..],
                    s.methods.iter().map(|m| &m[..]).collect(),
                )
            })
            .collect();
        assert_eq!(
            rows,
            [
                ("Described", "pkg.Described", vec!["A", "B"]),
                ("Plain", "", vec!["Do"]),
                (SERVICE_NAME, SERVICE_NAME, vec![LIST_SERVICES, GET_SCHEMA]),
            ]
        );
    }

    #[test]
    fn hands_out_schemas_and_names_unknown_services() {
        let r = reflection();
        let got: GetSchemaResponse = call(
            &r,
            GET_SCHEMA,
            GetSchemaRequest {
                service: "Described".into(),
            },
        )
        .unwrap();
        assert_eq!(got.proto_name, "pkg.Described");
        assert_eq!(&got.file_descriptor_set[..], b"\x0a\x00");
        let plain: GetSchemaResponse = call(
            &r,
            GET_SCHEMA,
            GetSchemaRequest {
                service: "Plain".into(),
            },
        )
        .unwrap();
        assert!(plain.file_descriptor_set.is_empty());
        let err = call::<GetSchemaResponse>(
            &r,
            GET_SCHEMA,
            GetSchemaRequest {
                service: "Nope".into(),
            },
        )
        .unwrap_err();
        assert_eq!(err.code(), Code::UnknownService);
        assert!(err.message().contains("Nope"), "{err}");
        let err = call::<GetSchemaResponse>(&r, "Watch", ListServicesRequest {}).unwrap_err();
        assert_eq!(err.code(), Code::UnknownMethod);
        let mut out = BytesMut::new();
        let err = r
            .call(
                GET_SCHEMA,
                &ctx(),
                Bytes::from_static(b"\xff\xff"),
                &mut out,
            )
            .unwrap_err();
        assert_eq!(err.code(), Code::BadRequest);
    }
}
