//! The `calamari` binary: parse arguments, run the command, map the result to an exit code.

mod argv_scrub;
mod cli;
mod commands;

fn main() {
    let code = cli::run(std::env::args_os().collect());
    std::process::exit(code);
}
