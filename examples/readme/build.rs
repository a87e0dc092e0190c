//! The README's `build.rs`: generate the code for `proto/user.proto`.

fn main() -> std::io::Result<()> {
    mprpc_build::compile_protos(&["proto/user.proto"], &["proto"])
}
