//! The `calamari` binary: parse arguments, run the command, map the result to an exit code.

mod argv_scrub;
mod cli;
mod commands;
mod context;
mod option_spelling;

fn main() {
    // A panic is a bug: report it as the reference reports an unexpected exception (exit
    // 100), never as Rust's default 101, which means "recursive variable definition" here.
    let code = std::panic::catch_unwind(|| cli::run(std::env::args_os().collect()))
        .unwrap_or_else(|_| calamari::ErrorKind::Unexpected.exit_code());
    std::process::exit(code);
}
