use std::process::ExitCode;

fn main() -> ExitCode {
    ExitCode::from(vardr_init::main(std::env::args_os().skip(1)))
}
