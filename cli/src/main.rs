//! `mprpc`: the command-line client (the library's [`mprpc_cli::main`]).

fn main() -> std::process::ExitCode {
    mprpc_cli::main()
}
