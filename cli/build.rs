//! Generates the `mprpc.Reflection` client stub from
//! `../proto/mprpc/reflection.proto`, and keeps that file's descriptors so
//! `mprpc describe mprpc.Reflection` works (providers serve no schema for it).

fn main() -> std::io::Result<()> {
    let out = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    mprpc_build::configure()
        .build_server(false)
        .full_service_name("mprpc.Reflection") // served under its full name
        .file_descriptor_set_path(format!("{out}/reflection.fds"))
        .compile_protos(&["../proto/mprpc/reflection.proto"], &["../proto"])
}
