use apiload_webhook::cli::Args;
use clap::Parser;
use std::process::ExitCode;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let args = Args::parse();
    init_logging(&args.log_format);
    // A panic (caught per review) is logged as one line, like everything else.
    std::panic::set_hook(Box::new(|info| tracing::error!(panic = %info, "panic")));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        // Analyses run on the blocking pool; bound it so that overload queues
        // (and meets the per-review deadline) instead of spawning threads.
        .max_blocking_threads(64)
        .build();
    let runtime = match runtime {
        Ok(r) => r,
        Err(e) => {
            eprintln!("apiload-webhook: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(apiload_webhook::run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "cannot start");
            eprintln!("apiload-webhook: {e}");
            ExitCode::FAILURE
        }
    }
}

/// JSON lines on stdout (or text), level from `RUST_LOG` (default info;
/// rustls only for errors: it warns once per handshake of any client that
/// sends an IP address as SNI, which would let clients flood the log).
fn init_logging(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,rustls=error"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stdout);
    if format == "json" {
        builder.json().flatten_event(true).with_current_span(false).init();
    } else {
        builder.init();
    }
}
