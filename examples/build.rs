//! Generates the example messages, service traits and stubs from `../proto`.

fn main() -> std::io::Result<()> {
    mprpc_build::compile_protos(
        &[
            "../proto/user.proto",
            "../proto/friend.proto",
            "../proto/bench.proto",
        ],
        &["../proto"],
    )
}
