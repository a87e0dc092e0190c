//! With the `tonic` feature: generates the gRPC echo server (and the client
//! `loadgen --stream server --target tonic` drives it with) from
//! `../proto/bench.proto` (the same file the mprpc bench service uses), with
//! protox as the protobuf compiler so no system `protoc` is needed. With the
//! `volo` feature: generates the Volo Thrift echo server from
//! `thrift/echo.thrift`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=build.rs");
    #[cfg(feature = "tonic")]
    {
        println!("cargo:rerun-if-changed=../proto/bench.proto");
        let fds = protox::compile(["bench.proto"], ["../proto"])?;
        tonic_prost_build::configure()
            .bytes(".")
            .build_client(true)
            .compile_fds(fds)?;
    }
    #[cfg(feature = "volo")]
    {
        println!("cargo:rerun-if-changed=thrift/echo.thrift");
        volo_build::Builder::thrift()
            .add_service("thrift/echo.thrift")
            .write()?;
    }
    Ok(())
}
