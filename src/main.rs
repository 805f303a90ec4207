//! The `musicd` binary: parses the command line and hands over to `musicd::cli`.

fn main() -> std::process::ExitCode {
    musicd::cli::main()
}
