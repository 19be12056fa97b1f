//! `capture-agent`: enrol this machine, run the agent, or show its status.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use capture_agent::agent::{Agent, Identity, SpoolSettings, Status};
use capture_agent::clock::AgentClock;
use capture_agent::config::{
    AgentConfig, ConfigError, MachineConfig, default_path, machine_config_path,
};
use capture_agent::connection::connect;
use capture_agent::enroll::{EnrollRequest, enroll_with};
use capture_agent::local::{self, AgentState, StatusReport};
use capture_agent::platform::{machine_name as machine, os_user};
use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

/// mimalloc instead of glibc's malloc: the pipeline's threads come and go with each call, and
/// glibc kept their freed 8 MB image buffers in per-thread arenas (an idle agent held ~57 MB);
/// mimalloc returns freed memory to the system.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(name = "capture-agent", version, about = "Capture's desktop agent")]
struct Cli {
    /// The configuration file (default: the user's config directory, capture/agent.toml).
    #[arg(long, env = "CAPTURE_AGENT_CONFIG", global = true)]
    config: Option<PathBuf>,
    /// Log level (error, warn, info, debug, trace).
    #[arg(long, default_value = "info", global = true)]
    log_level: String,
    #[command(subcommand)]
    command: Command,
}

// Parsed once per process: the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
enum Command {
    /// Enrol this machine with the recorder and write the configuration file.
    Enroll {
        /// The recorder, https://host[:port].
        #[arg(long)]
        server: String,
        /// A file holding the enrolment token; without it the token is read from the
        /// `CAPTURE_AGENT_ENROLMENT_TOKEN` variable. Never on the command line, where every user
        /// of the machine can read it.
        #[arg(long, value_name = "FILE", conflicts_with = "credential_file")]
        token_file: Option<PathBuf>,
        /// Instead of a token: the JSON an administrator's `capture-server agent add` printed
        /// (the agent's id and credential); checked against the recorder before it is saved.
        #[arg(long, value_name = "FILE")]
        credential_file: Option<PathBuf>,
        /// An extra CA certificate (PEM) to trust for the recorder.
        #[arg(long)]
        ca_file: Option<PathBuf>,
        /// Trust only the recorder's CA with this SHA-256 (hex; the installer's
        /// `SERVER_CA_SHA256`), which the server presents in its chain.
        #[arg(long, value_name = "HEX", conflicts_with = "ca_file")]
        server_ca_sha256: Option<String>,
        /// The agent's Webex email (maps this desktop to its Webex person).
        #[arg(long)]
        email: Option<String>,
        /// What to capture (screen, synthetic-office, synthetic-still).
        #[arg(long, default_value = "screen")]
        source: String,
        /// An HTTP proxy to reach the recorder through, http://[user:password@]host:port.
        #[arg(long, value_name = "URL")]
        proxy: Option<String>,
    },
    /// Run the agent until stopped (SIGTERM / Ctrl-C, logoff). At its first start on a machine
    /// the installer configured (SERVER_URL + ENROLLMENT_TOKEN), it enrols this user first and
    /// deletes the token. One agent runs per user: a second start exits with code 3.
    Run,
    /// Check the configuration and the connection to the recorder, print JSON.
    Status,
}

/// The enrolment token from `file`, else from `CAPTURE_AGENT_ENROLMENT_TOKEN`.
fn enrolment_token(file: Option<&std::path::Path>) -> anyhow::Result<String> {
    let token = match file {
        Some(file) => std::fs::read_to_string(file)
            .with_context(|| format!("reading the enrolment token from {}", file.display()))?,
        None => std::env::var("CAPTURE_AGENT_ENROLMENT_TOKEN").map_err(|_| {
            anyhow::anyhow!(
                "no enrolment token: pass --token-file FILE or set CAPTURE_AGENT_ENROLMENT_TOKEN"
            )
        })?,
    };
    let token = token.trim().to_owned();
    anyhow::ensure!(!token.is_empty(), "the enrolment token is empty");
    Ok(token)
}

/// A handshake of this machine's user (the checks `enroll` and `status` make; `run`'s own is
/// `Agent::run`'s).
fn hello(
    agent_id: capture_shared::ids::AgentId,
    credential: &str,
    monitors: Vec<capture_shared::protocol::MonitorInfo>,
    capture_backend: Option<String>,
) -> capture_shared::protocol::Hello {
    capture_shared::protocol::Hello {
        protocol_version: capture_shared::protocol::PROTOCOL_VERSION,
        agent_id,
        credential: credential.to_owned(),
        os_user: os_user(),
        machine: machine(),
        monitors,
        agent_version: env!("CARGO_PKG_VERSION").into(),
        capture_backend,
        spooled: None,
    }
}

fn identity(config: &AgentConfig) -> Identity {
    Identity {
        agent_id: config.agent_id,
        credential: config.credential.clone(),
        os_user: os_user(),
        machine: machine(),
    }
}

/// The configuration to run with: the user's; at a first start, the enrolment the machine's
/// token buys (retried while the recorder cannot be reached).
async fn configuration(
    path: &std::path::Path,
    status_file: &std::path::Path,
    cancel: &CancellationToken,
) -> anyhow::Result<Option<AgentConfig>> {
    let machine = MachineConfig::load()?;
    match AgentConfig::load_over(&machine, path) {
        Ok(config) => return Ok(Some(config)),
        Err(ConfigError::NotEnrolled { .. }) if machine.enrolment_token.is_some() => {}
        Err(error) => return Err(error.into()),
    }
    let server = machine.server.clone().unwrap_or_default();
    let mut backoff = capture_agent::backoff::Backoff::new();
    loop {
        let _ = StatusReport::only(AgentState::Enrolling, &server, None).write(status_file);
        match capture_agent::enroll::first_start(&machine, &machine_config_path(), path).await {
            Ok(config) => return Ok(Some(config)),
            Err(error) if error.is_retryable() => {
                tracing::warn!(%error, "enrolment failed; trying again");
                let _ = StatusReport::only(AgentState::Enrolling, &server, Some(error.to_string()))
                    .write(status_file);
            }
            Err(error) => return Err(error.into()),
        }
        tokio::select! {
            () = tokio::time::sleep(backoff.next_delay()) => {}
            () = cancel.cancelled() => return Ok(None),
        }
    }
}

/// `capture-agent run`.
async fn run(path: &std::path::Path) -> anyhow::Result<ExitCode> {
    let lock_file = local::lock_path(path);
    let Some(_lock) = local::InstanceLock::acquire(&lock_file)
        .with_context(|| format!("locking {}", lock_file.display()))?
    else {
        eprintln!(
            "capture-agent: another agent is running for this user ({} is locked)",
            lock_file.display()
        );
        return Ok(ExitCode::from(local::EXIT_ALREADY_RUNNING));
    };
    let status_file = local::status_path(path);
    let cancel = CancellationToken::new();
    let stop = cancel.clone();
    tokio::spawn(async move {
        capture_agent::platform::shutdown_signal().await;
        stop.cancel();
    });
    let config = match configuration(path, &status_file, &cancel).await {
        Ok(Some(config)) => config,
        Ok(None) => {
            let _ = std::fs::remove_file(&status_file);
            return Ok(ExitCode::SUCCESS);
        }
        Err(error) => {
            let _ = StatusReport::only(AgentState::Error, "", Some(format!("{error:#}")))
                .write(&status_file);
            return Err(error);
        }
    };
    let status = Arc::new(Mutex::new(Status::default()));
    let agent = Agent {
        endpoint: config.endpoint()?,
        identity: identity(&config),
        source: capture_agent::source(&config.source).map_err(anyhow::Error::msg)?,
        clock: AgentClock::new(),
        status: status.clone(),
        spool: SpoolSettings {
            dir: local::spool_path(path),
            quota_bytes: config.spool_quota_bytes(),
        },
    };
    let report = {
        let (status, status_file, server, agent_id) = (
            status.clone(),
            status_file.clone(),
            config.server.clone(),
            config.agent_id,
        );
        let cancel = cancel.child_token();
        tokio::spawn(async move {
            let mut previous: Option<StatusReport> = None;
            let mut interval = tokio::time::interval(local::STATUS_INTERVAL);
            loop {
                tokio::select! {
                    _ = interval.tick() => {}
                    () = cancel.cancelled() => break,
                }
                let now = status
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .clone();
                let report = StatusReport::of(&now, &server, Some(agent_id), previous.as_ref());
                if let Err(error) = report.write(&status_file) {
                    tracing::debug!(%error, "status file not written");
                }
                previous = Some(report);
            }
        })
    };
    let result = agent.run(cancel.clone()).await;
    cancel.cancel();
    let _ = report.await;
    match result {
        Ok(()) => {
            let _ = std::fs::remove_file(&status_file);
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => {
            let mut last = StatusReport::of(
                &status
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner),
                &config.server,
                Some(config.agent_id),
                None,
            );
            last.state = AgentState::Error;
            last.last_error = Some(error.to_string());
            let _ = last.write(&status_file);
            eprintln!("capture-agent: {error}");
            Ok(ExitCode::from(match error {
                capture_agent::agent::AgentError::Refused(_) => local::EXIT_REFUSED,
                capture_agent::agent::AgentError::Capture(_)
                | capture_agent::agent::AgentError::Spool(_) => 1,
            }))
        }
    }
}

async fn main_async(cli: Cli) -> anyhow::Result<ExitCode> {
    let path = cli.config.clone().unwrap_or_else(default_path);
    match cli.command {
        Command::Enroll {
            server,
            token_file,
            credential_file,
            ca_file,
            server_ca_sha256,
            email,
            source,
            proxy,
        } => {
            capture_agent::source(&source).map_err(anyhow::Error::msg)?;
            let (user, host) = (os_user(), machine());
            let mut config = AgentConfig {
                server,
                ca_file,
                server_ca_sha256,
                agent_id: capture_shared::ids::AgentId(uuid::Uuid::nil()),
                credential: String::new(),
                source,
                proxy,
                spool_quota_mb: None,
            };
            let endpoint = config.endpoint()?;
            let enrolled = match credential_file {
                Some(file) => {
                    let text = std::fs::read_to_string(&file)
                        .with_context(|| format!("reading {}", file.display()))?;
                    let enrolled = capture_agent::enroll::Enrolled::from_credential_json(&text)
                        .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
                    // The recorder must accept it before it is saved.
                    let hello = hello(enrolled.agent_id, &enrolled.credential, Vec::new(), None);
                    connect(&endpoint, &hello)
                        .await
                        .context("the recorder does not accept this credential")?;
                    enrolled
                }
                None => {
                    let token = enrolment_token(token_file.as_deref())?;
                    enroll_with(
                        &endpoint,
                        &EnrollRequest {
                            token: &token,
                            machine: &host,
                            os_user: &user,
                            email: email.as_deref(),
                        },
                    )
                    .await?
                }
            };
            config.agent_id = enrolled.agent_id;
            config.credential = enrolled.credential;
            config
                .save(&path)
                .with_context(|| format!("writing {}", path.display()))?;
            println!(
                "{}",
                serde_json::json!({ "agent_id": config.agent_id, "config": path })
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Run => run(&path).await,
        Command::Status => {
            let config = AgentConfig::load(&path)?;
            let endpoint = config.endpoint()?;
            let source = capture_agent::source(&config.source).map_err(anyhow::Error::msg)?;
            let monitors = source.monitors()?;
            let hello = hello(
                config.agent_id,
                &config.credential,
                monitors.clone(),
                Some(source.backend()),
            );
            let connection = match connect(&endpoint, &hello).await {
                Ok((_, welcome)) => serde_json::json!({ "ok": true, "settings": welcome.settings }),
                Err(error) => serde_json::json!({ "ok": false, "error": error.to_string() }),
            };
            println!(
                "{}",
                serde_json::json!({
                    "config": path,
                    "server": config.server,
                    "agent_id": config.agent_id,
                    "source": config.source,
                    "capture_backend": source.backend(),
                    "monitors": monitors,
                    "connection": connection,
                })
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&cli.log_level)
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("capture-agent: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(main_async(cli)) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("capture-agent: {error:#}");
            ExitCode::from(1)
        }
    }
}
