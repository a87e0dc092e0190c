//! The README's user crate: the generated code for package `fixbug`.

pub mod fixbug {
    mprpc::include_proto!("fixbug"); // $OUT_DIR/fixbug.rs, named after the package
}
