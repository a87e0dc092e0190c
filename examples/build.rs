//! Generates the example messages, service traits and stubs from `../proto`.

fn main() -> std::io::Result<()> {
    // The gateway's handlers return futures (it awaits its backends); the
    // seed's services stay sync. One run: they share package `fixbug`.
    mprpc_build::configure()
        .async_service("fixbug.GatewayServiceRpc")
        .compile_protos(
            &[
                "../proto/user.proto",
                "../proto/friend.proto",
                "../proto/friend_watch.proto",
                "../proto/gateway.proto",
                "../proto/bench.proto",
            ],
            &["../proto"],
        )?;
    // Its handlers return futures (answer later).
    mprpc_build::configure()
        .async_service("mprpc.later.LaterService")
        .compile_protos(&["../proto/later.proto"], &["../proto"])?;
    // Its stream handlers block, on the worker pool.
    mprpc_build::configure()
        .blocking_stream("mprpc.blocking.TickerRpc")
        .compile_protos(&["../proto/ticker.proto"], &["../proto"])
}
