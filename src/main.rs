use std::process::ExitCode;

use clap::Parser;
use liaison::cli::{Cli, Command};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result: Result<(), Box<dyn std::error::Error>> = match cli.command {
        Command::Run(args) => {
            liaison::telemetry::init(args.log_format);
            liaison::run::run(args).await.map_err(Into::into)
        }
        Command::Crds { dir } => liaison::crdgen::print_or_write(dir.as_deref()),
        Command::Access(args) => liaison::report::run(args).await.map_err(Into::into),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("liaison: {error}");
            ExitCode::FAILURE
        }
    }
}
