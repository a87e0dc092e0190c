//! Build-time code generation for mprpc, in the spirit of `tonic-build`.
//!
//! The seed runs `protoc --cpp_out` with `option cc_generic_services` to get
//! a `UserServiceRpc` base class and a `UserServiceRpc_Stub`. Here a
//! `build.rs` of a few lines does the same for Rust, with no system `protoc`:
//! the pure-Rust [`protox`] compiler parses the `.proto` files into a
//! `FileDescriptorSet`, [`prost_build`] generates the messages from it, and
//! [`MprpcServiceGenerator`] adds, for each `service`, a server trait, the
//! `...Server<T>` dispatcher and a `...Stub` client (see [`generator`]).
//!
//! ```no_run
//! // build.rs
//! fn main() -> std::io::Result<()> {
//!     mprpc_build::compile_protos(&["proto/user.proto"], &["proto"])
//! }
//! ```
//!
//! and in the crate: `pub mod fixbug { mprpc::include_proto!("fixbug"); }`
//! (one file per protobuf package, named after it; the macro is
//! `include!(concat!(env!("OUT_DIR"), "/fixbug.rs"))`). The crate needs only
//! `mprpc` as a dependency: the generated messages reach prost and bytes
//! through `mprpc::__private` (prost-build's `prost_path`).
//!
//! A service's wire and ZooKeeper name is its `.proto` name without the
//! package, as in the seed; [`Builder::full_service_names`] and
//! [`Builder::full_service_name`] opt into `package.Service`.
//!
//! Proto `bytes` fields become `bytes::Bytes` by default, so decoding a
//! request slices the received frame instead of copying it.
//!
//! Each `...Server<T>` embeds its service's `FileDescriptorSet`
//! (`FILE_DESCRIPTOR_SET`), which every provider serves through the
//! built-in `mprpc.Reflection` service: tools such as the `mprpc`
//! command-line client learn the schema from the running provider.

use std::io;
use std::path::{Path, PathBuf};

mod blocking_streams;
mod comments;
pub mod generator;
mod server;
mod streams;
mod stub;

pub use generator::MprpcServiceGenerator;
/// The prost-build this crate drives, for [`Builder::configure_prost`] hooks.
pub use prost_build;

/// Where generated messages find prost (and `prost::bytes`): re-exported by
/// `mprpc`, so a user crate does not depend on prost itself.
pub const PROST_PATH: &str = "::mprpc::__private::prost";

/// Compiles `protos` (searched for in `includes`) into Rust in `OUT_DIR`,
/// with the default settings. Emits `cargo:rerun-if-changed` for every
/// `.proto` read, imports included.
pub fn compile_protos(
    protos: &[impl AsRef<Path>],
    includes: &[impl AsRef<Path>],
) -> io::Result<()> {
    configure().compile_protos(protos, includes)
}

/// Starts a [`Builder`] to tune the generation before compiling.
pub fn configure() -> Builder {
    Builder::default()
}

type ProstHook = Box<dyn FnOnce(&mut prost_build::Config)>;

/// Settings for one code generation run: where and how prost-build writes
/// the messages, and the [`MprpcServiceGenerator`] that writes the services
/// (its settings are set through the builder's setters of the same names).
pub struct Builder {
    out_dir: Option<PathBuf>,
    bytes: Vec<String>,
    emit_rerun_if_changed: bool,
    file_descriptor_set_path: Option<PathBuf>,
    generator: MprpcServiceGenerator,
    prost_hooks: Vec<ProstHook>,
}

impl Default for Builder {
    fn default() -> Self {
        Builder {
            out_dir: None,
            bytes: vec![".".to_owned()],
            emit_rerun_if_changed: true,
            file_descriptor_set_path: None,
            generator: MprpcServiceGenerator::new(),
            prost_hooks: Vec::new(),
        }
    }
}

impl std::fmt::Debug for Builder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builder")
            .field("out_dir", &self.out_dir)
            .field("bytes", &self.bytes)
            .field("emit_rerun_if_changed", &self.emit_rerun_if_changed)
            .field("file_descriptor_set_path", &self.file_descriptor_set_path)
            .field("generator", &self.generator)
            .field("prost_hooks", &self.prost_hooks.len())
            .finish()
    }
}

/// Builder setters that hand their value to the service generator's setter
/// of the same name, where each is documented.
macro_rules! generator_setters {
    ($($name:ident($arg:ident: $ty:ty);)*) => {$(
        #[doc = concat!("See [`MprpcServiceGenerator::", stringify!($name), "`].")]
        pub fn $name(mut self, $arg: $ty) -> Self {
            self.generator = self.generator.$name($arg);
            self
        }
    )*};
}

impl Builder {
    generator_setters! {
        build_server(enable: bool);
        build_client(enable: bool);
        full_service_names(enable: bool);
        full_service_name(service: impl AsRef<str>);
        async_services(enable: bool);
        async_service(service: impl AsRef<str>);
        blocking_streams(enable: bool);
        blocking_stream(service: impl AsRef<str>);
    }

    /// Where to write the generated `.rs` files (default: `OUT_DIR`).
    pub fn out_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.out_dir = Some(dir.into());
        self
    }

    /// Which `bytes` fields become `bytes::Bytes` instead of `Vec<u8>`, as
    /// prost paths (default `["."]`: all of them, for zero-copy decoding).
    /// An empty list keeps `Vec<u8>` everywhere.
    pub fn bytes<I, S>(mut self, paths: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.bytes = paths.into_iter().map(|p| p.as_ref().to_owned()).collect();
        self
    }

    /// Print `cargo:rerun-if-changed` for every `.proto` read (default: true).
    pub fn emit_rerun_if_changed(mut self, enable: bool) -> Self {
        self.emit_rerun_if_changed = enable;
        self
    }

    /// Also write the encoded `FileDescriptorSet` to this path.
    pub fn file_descriptor_set_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.file_descriptor_set_path = Some(path.into());
        self
    }

    /// Adjusts the underlying `prost_build::Config` (attributes, extern
    /// paths, ...) just before compiling; hooks run in the order added.
    pub fn configure_prost(
        mut self,
        hook: impl FnOnce(&mut prost_build::Config) + 'static,
    ) -> Self {
        self.prost_hooks.push(Box::new(hook));
        self
    }

    /// Compiles `protos`, resolving them and their imports in `includes`.
    pub fn compile_protos(
        self,
        protos: &[impl AsRef<Path>],
        includes: &[impl AsRef<Path>],
    ) -> io::Result<()> {
        self.compile_with_config(prost_build::Config::new(), protos, includes)
    }

    /// Like [`Builder::compile_protos`], starting from the caller's prost config.
    pub fn compile_with_config(
        self,
        mut config: prost_build::Config,
        protos: &[impl AsRef<Path>],
        includes: &[impl AsRef<Path>],
    ) -> io::Result<()> {
        let fds = self.parse(protos, includes)?;
        if let Some(path) = &self.file_descriptor_set_path {
            std::fs::write(path, prost::Message::encode_to_vec(&fds))?;
        }
        if let Some(dir) = &self.out_dir {
            config.out_dir(dir);
        }
        if !self.bytes.is_empty() {
            config.bytes(&self.bytes);
        }
        config.prost_path(PROST_PATH);
        config.service_generator(Box::new(self.generator.file_descriptor_set(fds.clone())));
        for hook in self.prost_hooks {
            hook(&mut config);
        }
        config.compile_fds(fds)
    }

    /// Runs protox: `.proto` text to a `FileDescriptorSet` with comments.
    fn parse(
        &self,
        protos: &[impl AsRef<Path>],
        includes: &[impl AsRef<Path>],
    ) -> io::Result<prost_types::FileDescriptorSet> {
        let mut compiler = protox::Compiler::new(includes).map_err(protox_error)?;
        compiler.include_source_info(true).include_imports(true);
        compiler.open_files(protos).map_err(protox_error)?;
        if self.emit_rerun_if_changed {
            for path in compiler.files().filter_map(|f| f.path()) {
                println!("cargo:rerun-if-changed={}", path.display());
            }
        }
        Ok(compiler.file_descriptor_set())
    }
}

/// A protox error as an `io::Error` that names the file and the problem.
fn protox_error(e: protox::Error) -> io::Error {
    let message = match e.file() {
        Some(file) => format!("mprpc-build: {file}: {e:?}"),
        None => format!("mprpc-build: {e:?}"),
    };
    let kind = if e.is_file_not_found() {
        io::ErrorKind::NotFound
    } else {
        io::ErrorKind::InvalidInput
    };
    io::Error::new(kind, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROTO: &str = r#"
syntax = "proto3";
package demo.v1;

message PingRequest { bytes payload = 1; }
message PingReply { bytes payload = 1; uint64 seq = 2; }

// Answers pings.
service Pinger {
  // Sends the payload back.
  rpc Ping(PingRequest) returns (PingReply);
}
"#;

    fn compile_demo(builder: Builder) -> (tempfile::TempDir, String) {
        let dir = tempfile::tempdir().unwrap();
        let proto_dir = dir.path().join("proto");
        let out = dir.path().join("out");
        std::fs::create_dir_all(&proto_dir).unwrap();
        std::fs::create_dir_all(&out).unwrap();
        std::fs::write(proto_dir.join("demo.proto"), PROTO).unwrap();
        builder
            .out_dir(&out)
            .emit_rerun_if_changed(false)
            .compile_protos(&[proto_dir.join("demo.proto")], &[&proto_dir])
            .unwrap();
        let code = std::fs::read_to_string(out.join("demo.v1.rs")).unwrap();
        (dir, code)
    }

    #[test]
    fn compiles_a_proto_without_protoc_into_messages_trait_and_stub() {
        let (_dir, code) = compile_demo(configure());
        syn::parse_str::<syn::File>(&code).unwrap_or_else(|e| panic!("{e}\n{code}"));
        assert!(code.contains("pub struct PingRequest"));
        assert!(code.contains("pub payload: ::mprpc::__private::prost::bytes::Bytes"));
        // Only mprpc's re-export of prost is named: a user crate needs no prost.
        assert!(!code.contains(" ::prost::"), "{code}");
        assert!(code.contains("#[prost(prost_path = \"::mprpc::__private::prost\")]"));
        assert!(code.contains("pub trait Pinger"));
        assert!(code.contains("pub struct PingerServer<T>"));
        assert!(code.contains("pub struct PingerStub"));
        assert!(code.contains("pub const SERVICE_NAME: &'static str = \"Pinger\";"));
        assert!(code.contains("/// Answers pings."));
        assert!(code.contains("/// Sends the payload back."));
        // The schema reflection serves is embedded.
        assert!(code.contains("pub const FILE_DESCRIPTOR_SET: &'static [u8]"));
        assert!(code.contains("proto_name: \"demo.v1.Pinger\""));
    }

    #[test]
    fn full_service_names_reach_the_generator() {
        let (_dir, code) = compile_demo(configure().full_service_names(true));
        assert!(code.contains("pub const SERVICE_NAME: &'static str = \"demo.v1.Pinger\";"));
        let (_dir, code) = compile_demo(configure().full_service_name("demo.v1.Pinger"));
        assert!(code.contains("pub const SERVICE_NAME: &'static str = \"demo.v1.Pinger\";"));
        let (_dir, code) = compile_demo(configure());
        assert!(code.contains("pub const SERVICE_NAME: &'static str = \"Pinger\";"));
    }

    #[test]
    fn async_services_reach_the_generator() {
        let (_dir, code) = compile_demo(configure().async_service("demo.v1.Pinger"));
        syn::parse_str::<syn::File>(&code).unwrap_or_else(|e| panic!("{e}\n{code}"));
        assert!(code.contains("fn call_later("));
        let (_dir, code) = compile_demo(configure().async_services(true));
        assert!(code.contains("fn call_later("));
        let (_dir, code) = compile_demo(configure());
        assert!(!code.contains("fn call_later("));
    }

    #[test]
    fn bytes_can_be_turned_back_into_vec() {
        let (_dir, code) = compile_demo(configure().bytes(Vec::<String>::new()));
        assert!(code.contains("::mprpc::__private::prost::alloc::vec::Vec<u8>"));
        assert!(!code.contains("::prost::bytes::Bytes"));
    }

    #[test]
    fn prost_hook_runs() {
        let (_dir, code) = compile_demo(configure().configure_prost(|c| {
            c.type_attribute(".demo.v1.PingRequest", "#[derive(Eq, Hash)]");
        }));
        assert!(code.contains("#[derive(Eq, Hash)]"));
    }

    #[test]
    fn a_bad_proto_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("bad.proto"),
            "syntax = \"proto3\";\nmessage {",
        )
        .unwrap();
        let err = configure()
            .out_dir(dir.path())
            .emit_rerun_if_changed(false)
            .compile_protos(&[dir.path().join("bad.proto")], &[dir.path()])
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(err.to_string().contains("bad.proto"), "{err}");

        let missing = configure()
            .out_dir(dir.path())
            .emit_rerun_if_changed(false)
            .compile_protos(&[dir.path().join("missing.proto")], &[dir.path()])
            .unwrap_err();
        assert_eq!(missing.kind(), io::ErrorKind::NotFound, "{missing}");
    }
}
