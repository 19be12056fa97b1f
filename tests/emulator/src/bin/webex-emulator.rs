//! `webex-emulator --listen ADDR --data DIR [--scenario NAME] [--token TOKEN]`: runs the Webex
//! emulator until SIGINT/SIGTERM. Writes `DIR/credentials.json`, then prints one line
//! `READY <base url> CA=<ca file>` on stdout once listening. Logs go to stderr.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, ValueEnum};
use serde_json::json;
use webex_emulator::{ContactCenterTiming, Emulator, EmulatorConfig};

/// Named scenarios.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Scenario {
    /// Nothing happens by itself.
    None,
    /// Four agents taking calls of every kind continuously.
    ContactCenter,
}

#[derive(Debug, Parser)]
#[command(version, about = "An emulator of the Webex APIs Capture uses")]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Directory for the TLS certificate and credentials.json.
    #[arg(long)]
    data: PathBuf,
    /// What runs by itself.
    #[arg(long, value_enum, default_value = "none")]
    scenario: Scenario,
    /// A fixed access token (else random).
    #[arg(long)]
    token: Option<String>,
    /// Seed of every random choice.
    #[arg(long, default_value_t = 0x5eed_cafe)]
    seed: u64,
    /// Seconds between a call's end and the publication of its recordings.
    #[arg(long, default_value_t = 10)]
    publish_delay: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();
    let config = EmulatorConfig {
        listen: args.listen,
        seed: args.seed,
        access_token: args.token,
        publish_delay: std::time::Duration::from_secs(args.publish_delay),
        ..EmulatorConfig::in_dir(&args.data)
    };
    let emulator = Emulator::start(config)
        .await
        .context("starting the emulator")?;
    let credentials = emulator.credentials();
    let file = args.data.join("credentials.json");
    let mut document = serde_json::to_value(&credentials)?;
    document["base_url"] = json!(emulator.base_url());
    document["ca_file"] = json!(emulator.ca_file());
    std::fs::write(&file, serde_json::to_vec_pretty(&document)?)
        .with_context(|| format!("writing {}", file.display()))?;
    let _scenario = match args.scenario {
        Scenario::None => None,
        Scenario::ContactCenter => {
            let agents = (1..=4)
                .map(|n| {
                    emulator
                        .add_person(&format!("agent{n}@emulator.example"), &format!("Agent {n}"))
                })
                .collect();
            Some(emulator.spawn_contact_center(agents, ContactCenterTiming::default()))
        }
    };
    let mut stdout = std::io::stdout().lock();
    writeln!(
        stdout,
        "READY {} CA={}",
        emulator.base_url(),
        emulator.ca_file().display()
    )?;
    stdout.flush()?;
    drop(stdout);
    wait_for_signal().await?;
    tracing::info!("shutting down");
    emulator.shutdown().await;
    Ok(())
}

async fn wait_for_signal() -> anyhow::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result?,
        _ = term.recv() => {}
    }
    Ok(())
}
