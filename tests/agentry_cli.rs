//! The agentry command line, for tests that start real processes of it (`agentry worker`):
//! test executables are not agentry, so the package builds this one from the same library
//! code `agentry`'s main runs.

use clap::Parser;

fn main() -> std::process::ExitCode {
    if std::env::args_os()
        .nth(1)
        .is_some_and(|arg| arg == agentry::prompt::helper::FLAG)
    {
        return agentry::prompt::helper::main();
    }
    let cli = agentry::config::Cli::parse();
    agentry::telemetry::init(&cli.config.log_filter);
    let Ok(runtime) = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    else {
        return std::process::ExitCode::FAILURE;
    };
    match runtime.block_on(agentry::cli::run(cli, &mut std::io::stdout())) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
