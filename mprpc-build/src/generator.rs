//! The prost-build `ServiceGenerator` that turns a `.proto` `service` into
//! mprpc code.
//!
//! For `service UserServiceRpc { rpc Login(LoginRequest) returns (LoginResponse); }`
//! it writes, next to the messages prost generates:
//!
//! * `trait UserServiceRpc` — one `fn login(&self, ctx, request) -> Result<LoginResponse, Status>`
//!   per rpc; the user implements it (the seed's "inherit `UserServiceRpc`").
//!   A service opted into answering later ([`MprpcServiceGenerator::async_service`])
//!   gets instead `fn login(self: Arc<Self>, ctx, request) -> impl Future<Output =
//!   Result<LoginResponse, Status>> + Send + 'static` (`async fn` in the impl works),
//!   polled on the connection's reactor without blocking it.
//! * `struct UserServiceRpcServer<T>` — implements `mprpc::Service`: matches
//!   the method name, decodes the request, runs the handler and encodes the
//!   reply straight into the server's output buffer.
//! * `struct UserServiceRpcStub` — the seed's `UserServiceRpc_Stub`: a typed
//!   client over an `mprpc::client::Channel` with a blocking call (outcome in
//!   the controller, as in the seed), a future-like call and a callback call.
//!
//! Wire names are the `.proto` names without the package (`UserServiceRpc`,
//! `Login`), as in the seed: a seed consumer asks for `UserServiceRpc`, and
//! ZooKeeper nodes are named after it. So two services with the same name in
//! different packages share one wire name; a service opts into its full name
//! (`fixbug.UserServiceRpc`) with [`MprpcServiceGenerator::full_service_names`]
//! or [`MprpcServiceGenerator::full_service_name`] (provider and consumers
//! must agree). The output refers to mprpc by absolute paths
//! (`::mprpc::...`) and to prost/bytes through `::mprpc::__private`, so a
//! user crate needs no extra dependency for the glue. Comments in the
//! `.proto` become doc comments.
//!
//! Given the compiled `FileDescriptorSet` ([`MprpcServiceGenerator::file_descriptor_set`],
//! which [`crate::Builder`] always passes), each `...Server<T>` also embeds
//! the descriptors of its service's file and of every file it imports
//! (`FILE_DESCRIPTOR_SET`, source comments stripped) and returns them from
//! `Service::schema`, so every provider can serve them through the built-in
//! `mprpc.Reflection` service.

use std::fmt::Write as _;
use std::sync::Arc;

use prost::Message as _;
use prost_build::Service;
use prost_types::{FileDescriptorProto, FileDescriptorSet};

use crate::server::{write_server, write_trait, Handlers};
use crate::stub::write_stub;

/// Where the generated code finds its runtime.
pub(crate) const MPRPC: &str = "::mprpc";
pub(crate) const PRIVATE: &str = "::mprpc::__private";

/// Generates mprpc server traits, dispatchers and client stubs.
///
/// Plug it into your own `prost_build::Config` with
/// `config.service_generator(Box::new(MprpcServiceGenerator::new()))` if the
/// [`crate::Builder`] is not flexible enough.
#[derive(Debug, Clone)]
pub struct MprpcServiceGenerator {
    build_server: bool,
    build_client: bool,
    /// Services that use their full wire name.
    full_names: ServiceSet,
    /// Every compiled file, to embed each service's descriptors.
    descriptors: Option<Arc<FileDescriptorSet>>,
    /// Services whose handlers return futures.
    answer_later: ServiceSet,
    /// Sync services whose stream handlers block (on the worker pool).
    blocking_streams: ServiceSet,
}

impl Default for MprpcServiceGenerator {
    fn default() -> Self {
        MprpcServiceGenerator {
            build_server: true,
            build_client: true,
            full_names: ServiceSet::default(),
            descriptors: None,
            answer_later: ServiceSet::default(),
            blocking_streams: ServiceSet::default(),
        }
    }
}

/// Services a setting applies to: every one, or those named
/// (`package.Service`).
#[derive(Debug, Clone, Default)]
struct ServiceSet {
    all: bool,
    names: Vec<String>,
}

impl ServiceSet {
    /// Adds one service; a leading `.` is optional.
    fn add(&mut self, service: &str) {
        self.names.push(service.trim_start_matches('.').to_owned());
    }

    fn contains(&self, service: &Service) -> bool {
        self.all || self.names.contains(&full_proto_name(service))
    }
}

impl MprpcServiceGenerator {
    /// A generator that emits both the server side and the client stub.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether to emit the server trait and `...Server<T>` (default: true).
    pub fn build_server(mut self, enable: bool) -> Self {
        self.build_server = enable;
        self
    }

    /// Whether to emit the `...Stub` client (default: true).
    pub fn build_client(mut self, enable: bool) -> Self {
        self.build_client = enable;
        self
    }

    /// Whether every service's wire (and ZooKeeper) name includes its
    /// package, `fixbug.UserServiceRpc` instead of `UserServiceRpc`
    /// (default: false, the seed's naming; seed consumers need it).
    /// Providers and consumers must be generated with the same setting.
    pub fn full_service_names(mut self, enable: bool) -> Self {
        self.full_names.all = enable;
        self
    }

    /// Gives one service (`package.Service`, a leading `.` is optional) its
    /// full wire name, leaving the others with the seed's short one.
    pub fn full_service_name(mut self, service: impl AsRef<str>) -> Self {
        self.full_names.add(service.as_ref());
        self
    }

    /// Every service's handlers return futures and answer later
    /// (default: false, handlers return their answer).
    pub fn async_services(mut self, enable: bool) -> Self {
        self.answer_later.all = enable;
        self
    }

    /// One service's (`package.Service`, a leading `.` is optional) handlers
    /// return futures: `fn method(self: Arc<Self>, ctx, request) -> impl
    /// Future<Output = Result<Reply, Status>> + Send + 'static`, polled on
    /// the connection's reactor, so a handler can await other calls
    /// (`Channel::call_async`, a `Responder`) without blocking a thread.
    pub fn async_service(mut self, service: impl AsRef<str>) -> Self {
        self.answer_later.add(service.as_ref());
        self
    }

    /// Whether `service`'s handlers return futures.
    fn answers_later(&self, service: &Service) -> bool {
        self.answer_later.contains(service)
    }

    /// Every sync service's stream handlers block (default: false, they
    /// return futures polled on a reactor, as an async service's do).
    /// Services that answer later keep async stream handlers.
    pub fn blocking_streams(mut self, enable: bool) -> Self {
        self.blocking_streams.all = enable;
        self
    }

    /// One sync service's (`package.Service`, a leading `.` is optional)
    /// stream handlers block: plain functions run on the server's worker
    /// pool for as long as their stream is open, e.g. `fn watch(&self,
    /// ctx: &CallContext, request: Req, sink: BlockingSender<Event>) ->
    /// Result<(), Status>`, whose `send` blocks while the client has no
    /// credit, and `BlockingStreaming<Chunk>` (an iterator) for the
    /// client's messages. The server starts its worker pool for them
    /// whichever way the service is published; its unary handlers run as
    /// before. A service that answers later is not affected.
    pub fn blocking_stream(mut self, service: impl AsRef<str>) -> Self {
        self.blocking_streams.add(service.as_ref());
        self
    }

    /// The compiled files (with their imports), so each `...Server<T>`
    /// embeds its service's descriptors for reflection. Without it the
    /// servers have no schema (`Service::schema` is `None`).
    pub fn file_descriptor_set(mut self, files: FileDescriptorSet) -> Self {
        self.descriptors = Some(Arc::new(files));
        self
    }

    /// The encoded descriptors `service` needs, if the files are known.
    fn schema_bytes(&self, service: &Service) -> Option<Vec<u8>> {
        let files = self.descriptors.as_deref()?;
        let set = service_files(files, &service.package, &service.proto_name)?;
        Some(set.encode_to_vec())
    }

    /// The name `service` is served and registered under.
    fn wire_name(&self, service: &Service) -> String {
        if self.full_names.contains(service) {
            full_proto_name(service)
        } else {
            service.proto_name.clone()
        }
    }
}

impl prost_build::ServiceGenerator for MprpcServiceGenerator {
    fn generate(&mut self, service: Service, buf: &mut String) {
        let wire = self.wire_name(&service);
        if self.build_server {
            let later = self.answers_later(&service);
            let blocking = !later && self.blocking_streams.contains(&service);
            write_trait(&service, later, blocking, buf);
            let schema = self.schema_bytes(&service);
            let how = Handlers { later, blocking };
            write_server(&service, &wire, schema.as_deref(), how, buf);
        }
        if self.build_client {
            write_stub(&service, &wire, buf);
        }
    }
}

/// The file that defines `package.service` and every file it imports,
/// imports first, without source comments; `None` if no file defines it.
fn service_files(
    files: &FileDescriptorSet,
    package: &str,
    service: &str,
) -> Option<FileDescriptorSet> {
    let by_name = |name: &str| files.file.iter().find(|f| f.name() == name);
    let home = files
        .file
        .iter()
        .find(|f| f.package() == package && f.service.iter().any(|s| s.name() == service))?;
    let mut order: Vec<&FileDescriptorProto> = Vec::new();
    // Depth-first, dependencies before dependents, each file once.
    fn visit<'a>(
        file: &'a FileDescriptorProto,
        by_name: &dyn Fn(&str) -> Option<&'a FileDescriptorProto>,
        order: &mut Vec<&'a FileDescriptorProto>,
    ) {
        if order.iter().any(|f| f.name() == file.name()) {
            return;
        }
        for dep in &file.dependency {
            if let Some(dep) = by_name(dep) {
                visit(dep, by_name, order);
            }
        }
        order.push(file);
    }
    visit(home, &by_name, &mut order);
    let file = order
        .into_iter()
        .map(|f| FileDescriptorProto {
            source_code_info: None,
            ..f.clone()
        })
        .collect();
    Some(FileDescriptorSet { file })
}

/// `bytes` as a Rust byte string literal body: printable ASCII as is, the
/// rest escaped.
pub(crate) fn byte_string(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        match b {
            b'"' | b'\\' => {
                out.push('\\');
                out.push(b as char);
            }
            0x20..=0x7e => out.push(b as char),
            _ => {
                let _ = write!(out, "\\x{b:02x}");
            }
        }
    }
    out
}

/// `r#type` -> `type`, so we can build `type_async` etc. from it.
pub(crate) fn bare(ident: &str) -> &str {
    ident.strip_prefix("r#").unwrap_or(ident)
}

/// The fully qualified `.proto` name, e.g. `fixbug.UserServiceRpc`, for docs.
pub(crate) fn full_proto_name(service: &Service) -> String {
    if service.package.is_empty() {
        service.proto_name.clone()
    } else {
        format!("{}.{}", service.package, service.proto_name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost_build::{Comments, Method, ServiceGenerator as _};

    fn method(name: &str, proto: &str, input: &str, output: &str) -> Method {
        Method {
            name: name.into(),
            proto_name: proto.into(),
            comments: Comments {
                leading: vec![" Logs a user in.".into()],
                ..Comments::default()
            },
            input_type: input.into(),
            output_type: output.into(),
            input_proto_type: format!(".fixbug.{input}"),
            output_proto_type: format!(".fixbug.{output}"),
            options: Default::default(),
            client_streaming: false,
            server_streaming: false,
        }
    }

    fn user_service() -> Service {
        Service {
            name: "UserServiceRpc".into(),
            proto_name: "UserServiceRpc".into(),
            package: "fixbug".into(),
            comments: Comments {
                leading: vec![" The seed's user service.".into()],
                ..Comments::default()
            },
            methods: vec![
                method("login", "Login", "LoginRequest", "LoginResponse"),
                method("r#type", "Type", "LoginRequest", "LoginResponse"),
            ],
            options: Default::default(),
        }
    }

    fn generate(generator: &mut MprpcServiceGenerator, service: Service) -> String {
        let mut buf = String::new();
        generator.generate(service, &mut buf);
        buf
    }

    #[test]
    fn generates_trait_server_and_stub_that_parse_as_rust() {
        let code = generate(&mut MprpcServiceGenerator::new(), user_service());
        let file: syn::File = syn::parse_str(&code).unwrap_or_else(|e| panic!("{e}\n{code}"));
        let names: Vec<String> = file
            .items
            .iter()
            .filter_map(|item| match item {
                syn::Item::Trait(t) => Some(t.ident.to_string()),
                syn::Item::Struct(s) => Some(s.ident.to_string()),
                _ => None,
            })
            .collect();
        assert_eq!(
            names,
            [
                "UserServiceRpc",
                "UserServiceRpcServer",
                "UserServiceRpcStub"
            ]
        );
        assert!(code.contains("fn login(&self, ctx: &::mprpc::CallContext, request: LoginRequest)"));
        assert!(
            code.contains("pub const METHODS: &'static [&'static str] = &[\"Login\", \"Type\"];")
        );
        assert!(code.contains("\"Login\" => {"));
        assert!(code.contains("Status::unknown_method(Self::SERVICE_NAME, method)"));
        assert!(code.contains("pub fn login_async("));
        assert!(code.contains("pub fn login_with("));
        // Keywords stay raw where needed, and suffixed names are plain.
        assert!(code.contains("pub fn r#type("));
        assert!(code.contains("pub fn type_async("));
        // The .proto comments become doc comments.
        assert!(code.contains("/// The seed's user service."));
        assert!(code.contains("    /// Logs a user in."));
    }

    #[test]
    fn client_only_and_server_only_switches() {
        let client = generate(
            &mut MprpcServiceGenerator::new().build_server(false),
            user_service(),
        );
        assert!(client.contains("pub struct UserServiceRpcStub"));
        assert!(!client.contains("pub trait UserServiceRpc"));
        let server = generate(
            &mut MprpcServiceGenerator::new().build_client(false),
            user_service(),
        );
        assert!(server.contains("pub trait UserServiceRpc"));
        assert!(!server.contains("Stub"));
    }

    #[test]
    fn wire_names_drop_the_package_unless_a_service_opts_in() {
        let short = generate(&mut MprpcServiceGenerator::new(), user_service());
        assert_eq!(
            short
                .matches("SERVICE_NAME: &'static str = \"UserServiceRpc\";")
                .count(),
            2
        );
        for mut generator in [
            MprpcServiceGenerator::new().full_service_names(true),
            MprpcServiceGenerator::new().full_service_name(".fixbug.UserServiceRpc"),
            MprpcServiceGenerator::new().full_service_name("fixbug.UserServiceRpc"),
        ] {
            let full = generate(&mut generator, user_service());
            // Server and stub agree on the full name.
            assert_eq!(
                full.matches("SERVICE_NAME: &'static str = \"fixbug.UserServiceRpc\";")
                    .count(),
                2,
                "{generator:?}"
            );
        }
        let other = generate(
            &mut MprpcServiceGenerator::new().full_service_name("other.UserServiceRpc"),
            user_service(),
        );
        assert!(other.contains("SERVICE_NAME: &'static str = \"UserServiceRpc\";"));
    }

    #[test]
    fn generated_docs_name_the_real_provider_api_and_the_callback_rule() {
        let code = generate(&mut MprpcServiceGenerator::new(), user_service());
        assert!(code.contains("`RpcProvider::notify_blocking_service`"));
        assert!(!code.contains("add_blocking_service"));
        assert!(code.contains("ctx.expired()"));
        // Every *_with states that blocking inside the callback is refused.
        let with_docs =
            code.matches("pub fn login_with(").count() + code.matches("pub fn type_with(").count();
        assert_eq!(with_docs, 2);
        assert_eq!(code.matches("never block in it").count(), 2);
        assert_eq!(code.matches("Dropping it").count(), 2);
    }

    /// `common.proto` (ResultCode), `user.proto` (imports it, defines the
    /// service) and an unrelated `other.proto`.
    fn user_files() -> FileDescriptorSet {
        use prost_types::{DescriptorProto, ServiceDescriptorProto, SourceCodeInfo};
        let message = |name: &str| DescriptorProto {
            name: Some(name.into()),
            ..Default::default()
        };
        let file = |name: &str, deps: &[&str], messages: &[&str]| FileDescriptorProto {
            name: Some(name.into()),
            package: Some("fixbug".into()),
            dependency: deps.iter().map(|d| (*d).to_owned()).collect(),
            message_type: messages.iter().map(|m| message(m)).collect(),
            source_code_info: Some(SourceCodeInfo::default()),
            ..Default::default()
        };
        let mut user = file("user.proto", &["common.proto"], &["LoginRequest"]);
        user.service.push(ServiceDescriptorProto {
            name: Some("UserServiceRpc".into()),
            ..Default::default()
        });
        FileDescriptorSet {
            file: vec![
                file("other.proto", &[], &["Other"]),
                user,
                file("common.proto", &[], &["ResultCode"]),
            ],
        }
    }

    #[test]
    fn a_service_embeds_its_file_and_imports_without_comments() {
        let set = service_files(&user_files(), "fixbug", "UserServiceRpc").unwrap();
        let names: Vec<&str> = set.file.iter().map(|f| f.name()).collect();
        assert_eq!(
            names,
            ["common.proto", "user.proto"],
            "imports first, others left out"
        );
        assert!(set.file.iter().all(|f| f.source_code_info.is_none()));
        assert!(service_files(&user_files(), "other", "UserServiceRpc").is_none());

        let mut generator = MprpcServiceGenerator::new().file_descriptor_set(user_files());
        let code = generate(&mut generator, user_service());
        syn::parse_str::<syn::File>(&code).unwrap_or_else(|e| panic!("{e}\n{code}"));
        assert!(code.contains("pub const FILE_DESCRIPTOR_SET: &'static [u8] = b\""));
        assert!(code.contains("proto_name: \"fixbug.UserServiceRpc\""));
        // Without the files there is nothing to embed: the default `schema()`.
        let plain = generate(&mut MprpcServiceGenerator::new(), user_service());
        assert!(!plain.contains("FILE_DESCRIPTOR_SET") && !plain.contains("fn schema"));
    }

    #[test]
    fn embedded_bytes_are_a_valid_rust_byte_string() {
        let bytes: Vec<u8> = (0..=255).collect();
        let code = format!("const B: &[u8] = b\"{}\";", byte_string(&bytes));
        let file: syn::File = syn::parse_str(&code).unwrap();
        let syn::Item::Const(item) = &file.items[0] else {
            panic!("{code}")
        };
        let syn::Expr::Lit(syn::ExprLit {
            lit: syn::Lit::ByteStr(lit),
            ..
        }) = &*item.expr
        else {
            panic!("{code}")
        };
        assert_eq!(lit.value(), bytes);
    }

    #[test]
    fn an_async_service_gets_future_handlers_and_call_later_others_stay_sync() {
        for mut generator in [
            MprpcServiceGenerator::new().async_services(true),
            MprpcServiceGenerator::new().async_service("fixbug.UserServiceRpc"),
            MprpcServiceGenerator::new().async_service(".fixbug.UserServiceRpc"),
        ] {
            let code = generate(&mut generator, user_service());
            syn::parse_str::<syn::File>(&code).unwrap_or_else(|e| panic!("{e}\n{code}"));
            assert!(code.contains(
                "fn login(self: ::std::sync::Arc<Self>, ctx: ::mprpc::CallContext, request: LoginRequest) \
                 -> impl ::core::future::Future<Output = ::core::result::Result<LoginResponse, ::mprpc::Status>> \
                 + ::core::marker::Send + 'static;"
            ));
            assert!(code.contains("fn answers_later(&self) -> bool {\n        true"));
            assert!(code.contains("fn call_later("));
            assert!(code.contains(
                "::mprpc::service::encode_later(UserServiceRpc::login(inner, ctx, request))"
            ));
            // The stub is the same either way.
            assert!(code.contains("pub fn login_async("));
        }
        let other = generate(
            &mut MprpcServiceGenerator::new().async_service("other.UserServiceRpc"),
            user_service(),
        );
        assert!(!other.contains("answers_later") && !other.contains("call_later"));
        assert!(
            other.contains("fn login(&self, ctx: &::mprpc::CallContext, request: LoginRequest)")
        );
    }

    /// The user service with `Login` a server stream, and a client stream
    /// `Upload` and a bidirectional `Chat` beside `Type`.
    fn streaming_service() -> Service {
        let mut service = user_service();
        service.methods[0].server_streaming = true;
        let mut upload = method("upload", "Upload", "LoginRequest", "LoginResponse");
        upload.client_streaming = true;
        let mut chat = method("chat", "Chat", "LoginRequest", "LoginResponse");
        (chat.client_streaming, chat.server_streaming) = (true, true);
        service.methods.extend([upload, chat]);
        service
    }

    #[test]
    fn blocking_streams_get_plain_handlers_run_on_the_pool() {
        let service = streaming_service();
        let mut generator = MprpcServiceGenerator::new().blocking_stream("fixbug.UserServiceRpc");
        let code = generate(&mut generator, service.clone());
        syn::parse_str::<syn::File>(&code).unwrap_or_else(|e| panic!("{e}\n{code}"));
        assert!(code.contains(
            "fn login(&self, ctx: &::mprpc::CallContext, request: LoginRequest, \
             sink: ::mprpc::service::blocking_stream::BlockingSender<LoginResponse>) \
             -> ::core::result::Result<(), ::mprpc::Status>;"
        ));
        assert!(code.contains(
            "fn upload(&self, ctx: &::mprpc::CallContext, \
             requests: ::mprpc::service::blocking_stream::BlockingStreaming<LoginRequest>) \
             -> ::core::result::Result<LoginResponse, ::mprpc::Status>;"
        ));
        assert!(code.contains("fn blocking_streams(&self) -> bool"));
        assert!(code.contains("blocking_stream::on_pool(&io, move ||"));
        assert!(code.contains("blocking_stream::reply_once_on_pool(&io, move ||"));
        // Unary handlers and the stub are as without the setting.
        assert!(
            code.contains("fn r#type(&self, ctx: &::mprpc::CallContext, request: LoginRequest)")
        );
        let plain = generate(&mut MprpcServiceGenerator::new(), service.clone());
        let stub =
            |code: &str| code[code.find("pub struct UserServiceRpcStub").unwrap()..].to_owned();
        assert_eq!(stub(&code), stub(&plain));
        // An async service keeps its futures.
        let mut both = MprpcServiceGenerator::new()
            .async_services(true)
            .blocking_streams(true);
        let later = generate(&mut both, service);
        assert!(!later.contains("blocking_stream") && later.contains("stream::StreamSender"));
    }

    #[test]
    fn streaming_rpcs_get_handlers_open_stream_and_stub_methods() {
        let service = streaming_service();
        for later in [false, true] {
            let mut generator = MprpcServiceGenerator::new().async_services(later);
            let code = generate(&mut generator, service.clone());
            syn::parse_str::<syn::File>(&code).unwrap_or_else(|e| panic!("{e}\n{code}"));
            assert!(!code.contains("compile_error!"));
            assert!(code.contains(
                "fn login(self: ::std::sync::Arc<Self>, ctx: ::mprpc::CallContext, request: LoginRequest, \
                 sink: ::mprpc::service::stream::StreamSender<LoginResponse>)"
            ));
            assert!(code.contains(
                "requests: ::mprpc::service::stream::Streaming<LoginRequest>) -> impl \
                 ::core::future::Future<Output = ::core::result::Result<LoginResponse, ::mprpc::Status>>"
            ));
            assert!(code.contains("fn open_stream("));
            assert!(
                code.contains("UserServiceRpc.Login is a streaming method: open it as a stream")
            );
            assert!(code.contains("self.channel.server_stream(Self::SERVICE_NAME, \"Login\""));
            assert!(code.contains("self.channel.client_stream(Self::SERVICE_NAME, \"Upload\""));
            assert!(code.contains("self.channel.bidi_stream(Self::SERVICE_NAME, \"Chat\""));
            // Each streaming rpc also gets a handled variant.
            assert!(code.contains("pub fn login_with<H>("));
            assert!(code.contains("H: ::mprpc::client::stream::StreamHandler<(), LoginResponse>"));
            assert!(code.contains(
                "self.channel.server_stream_with(Self::SERVICE_NAME, \"Login\", request, options, handler)"
            ));
            assert!(code.contains(
                "self.channel.client_stream_with(Self::SERVICE_NAME, \"Upload\", options, handler)"
            ));
            assert!(code.contains(
                "self.channel.bidi_stream_with(Self::SERVICE_NAME, \"Chat\", options, handler)"
            ));
            assert!(!code.contains("fn type_with<H>"));
            // The unary rpc is generated as before.
            assert!(code.contains("pub fn type_async("));
        }
        let unary = generate(&mut MprpcServiceGenerator::new(), user_service());
        assert!(!unary.contains("open_stream") && !unary.contains("stream::"));
    }
}
