//! `capture-server`: the command line of Capture's server.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use capture_server::config::{Config, LogFormat, Overrides, Settings};
use clap::{Parser, Subcommand};

/// Capture records contact-center calls on Webex Calling with the agent's screen.
#[derive(Debug, Parser)]
#[command(
    name = "capture-server",
    version,
    about,
    args_conflicts_with_subcommands = true
)]
struct Cli {
    /// Configuration file (TOML).
    #[arg(long, global = true, env = "CAPTURE_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
    /// With no command: the flags of `run`.
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the service (the default).
    Run(RunArgs),
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// Address and port to listen on (overrides `listen`).
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// Data directory (overrides `data_dir`).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let args = match cli.command {
        Some(Command::Run(args)) => args,
        None => cli.run,
    };
    let overrides = Overrides {
        listen: args.listen,
        data_dir: args.data_dir,
    };
    let settings =
        match Config::load(cli.config.as_deref(), &overrides).and_then(Settings::from_config) {
            Ok(settings) => settings,
            Err(error) => {
                eprintln!("capture-server: {error}");
                return ExitCode::from(2);
            }
        };
    init_logging(&settings);
    match serve(settings) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            eprintln!("capture-server: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn serve(settings: Settings) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let listener = std::net::TcpListener::bind(settings.listen)
            .with_context(|| format!("cannot listen on {}", settings.listen))?;
        capture_server::run(settings, listener, shutdown_signal()).await?;
        Ok(())
    })
}

fn init_logging(settings: &Settings) {
    let filter = tracing_subscriber::EnvFilter::builder().parse_lossy(&settings.log_filter);
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match settings.log_format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Completes on Ctrl-C or SIGTERM (what systemd and `kill` send).
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for ctrl-c");
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        () = ctrl_c => tracing::info!("ctrl-c received"),
        () = terminate() => tracing::info!("SIGTERM received"),
    }
}

#[cfg(unix)]
async fn terminate() {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut signal) => {
            signal.recv().await;
        }
        Err(error) => {
            tracing::error!(%error, "cannot listen for SIGTERM");
            std::future::pending::<()>().await;
        }
    }
}

/// Windows services stop through Ctrl-C/Ctrl-Break handling only.
#[cfg(not(unix))]
async fn terminate() {
    std::future::pending::<()>().await;
}
