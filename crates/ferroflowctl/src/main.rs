//! ferroflowctl: the Ferroflow command line (see the library for all of it).

fn main() -> std::process::ExitCode {
    ferroflowctl::main()
}
