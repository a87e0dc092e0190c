//! Generates the example messages, service traits and stubs from `../proto`.

fn main() -> std::io::Result<()> {
    mprpc_build::compile_protos(
        &[
            "../proto/user.proto",
            "../proto/friend.proto",
            "../proto/bench.proto",
        ],
        &["../proto"],
    )?;
    // Its handlers return futures (answer later).
    mprpc_build::configure()
        .async_service("mprpc.later.LaterService")
        .compile_protos(&["../proto/later.proto"], &["../proto"])
}
