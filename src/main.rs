use std::process::ExitCode;

use clap::Parser;
use liaison::cli::{Cli, Command};

#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's settings, read when it starts (`_RJEM_MALLOC_CONF` in the environment overrides
/// them): one arena, as the operator's few threads share its caches anyway and every other
/// arena held its own partly used pages; freed pages go back to the system at once rather
/// than after seconds, which cost no measurable CPU at 10,000 grants; thread caches only for
/// objects up to 1 KiB, 1.3 MiB less at 10,000 grants for ~15 % more CPU (docs/benchmarks.md).
#[cfg(feature = "jemalloc")]
#[unsafe(export_name = "_rjem_malloc_conf")]
static JEMALLOC_CONF: &[u8; 60] = b"narenas:1,dirty_decay_ms:0,muzzy_decay_ms:0,tcache_max:1024\0";

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result: Result<(), Box<dyn std::error::Error>> = match cli.command {
        Command::Run(args) => {
            liaison::telemetry::init(args.log_format);
            liaison::run::run(*args).await.map_err(Into::into)
        }
        Command::Crds { dir } => liaison::crdgen::print_or_write(dir.as_deref()),
        Command::Access(args) => liaison::report::run(args).await.map_err(Into::into),
        Command::Review(args) => liaison::reviews::run(args).await.map_err(Into::into),
        Command::Approve(args) => liaison::reviews::approve_command(args).await.map_err(Into::into),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("liaison: {error}");
            ExitCode::FAILURE
        }
    }
}
