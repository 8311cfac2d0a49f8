//! The `agentry` binary: load `.env`, parse the command line, hand over to the library.

use agentry::{cli, config::Cli, prompt::helper, telemetry};
use clap::Parser;

fn main() -> std::process::ExitCode {
    // The server starts this executable as its template render helper. That runs before
    // anything else: it needs no .env, logging or async runtime, and it limits its memory.
    if std::env::args_os()
        .nth(1)
        .is_some_and(|arg| arg == helper::FLAG)
    {
        return helper::main();
    }
    // A missing .env is normal; a broken one is worth saying.
    if let Err(err) = dotenvy::dotenv()
        && !err.not_found()
    {
        eprintln!("warning: ignoring .env: {err}");
    }
    let cli = Cli::parse();
    telemetry::init(&cli.config.log_filter);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli::run(cli, &mut std::io::stdout())) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!("{err:#}");
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
