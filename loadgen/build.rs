//! With the `tonic` feature: generates the gRPC echo client and server from
//! `../proto/bench.proto` (the same file the mprpc bench service uses), with
//! protox as the protobuf compiler so no system `protoc` is needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=build.rs");
    #[cfg(feature = "tonic")]
    {
        println!("cargo:rerun-if-changed=../proto/bench.proto");
        let fds = protox::compile(["bench.proto"], ["../proto"])?;
        tonic_prost_build::configure().bytes(".").compile_fds(fds)?;
    }
    Ok(())
}
