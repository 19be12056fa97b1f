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
    /// Run the service with the built-in Webex emulator and virtual agents taking calls: a first
    /// look without a Webex account (needs no Webex settings; keep its data apart).
    #[cfg(feature = "demo")]
    Demo(RunArgs),
    /// The agent directory.
    #[command(subcommand)]
    Agent(AgentCommand),
    /// Enrolment tokens: what installers carry to enrol desktops (`create`, `list`, `revoke`).
    #[command(subcommand)]
    Enrolment(EnrolmentCommand),
    /// Users of the replay page.
    #[command(subcommand)]
    User(UserCommand),
    /// The audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Webex webhooks.
    #[command(subcommand)]
    Webhooks(WebhooksCommand),
    /// Screen buffer (SCN) files.
    #[command(subcommand)]
    Scn(ScnCommand),
    /// Fetch every Webex recording that started in [FROM, TO): resumable (run it again after an
    /// interruption), safe next to the running service; progress on stderr.
    Backfill {
        /// Start, inclusive: RFC 3339 (`2026-11-01T00:00:00Z`) or a UTC date (`2026-11-01`).
        #[arg(long)]
        from: String,
        /// End, exclusive (same forms).
        #[arg(long)]
        to: String,
        /// Recordings fetched at the same time (overrides `adapter.concurrency`; most of a fetch
        /// is waiting on Webex, so a backfill gains from 100 or more).
        #[arg(long)]
        concurrency: Option<u32>,
        /// Data directory (overrides `data_dir`).
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum ScnCommand {
    /// Write one monitor's video of an SCN file to a playable MP4 (not re-encoded); prints
    /// what was written as JSON.
    Export {
        /// The SCN file (e.g. `<data_dir>/buffer/<contact>.scn`).
        file: PathBuf,
        /// The monitor to export.
        #[arg(long, default_value_t = 0)]
        monitor: u16,
        /// The MP4 file to write.
        #[arg(long, short)]
        out: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum AgentCommand {
    /// Add a desktop agent and the Webex person it belongs to; prints the entry and its
    /// credential as JSON, which `capture-agent enroll --credential-file FILE` takes as it is.
    Add {
        /// Display name (the agent's name as supervisors know it).
        #[arg(long)]
        name: String,
        /// The Webex person id (UUID or hydra id).
        #[arg(long)]
        person_id: Option<String>,
        /// The person's email.
        #[arg(long)]
        email: Option<String>,
        /// Data directory (overrides `data_dir`).
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
    },
    /// List the agent directory (never credentials) as JSON lines.
    List {
        /// Data directory (overrides `data_dir`).
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum EnrolmentCommand {
    /// Create an enrolment token; prints it (shown once) with its id as JSON.
    Create {
        /// What it is for ("floor 3 rollout").
        #[arg(long)]
        label: String,
        /// Hours until it stops working (default: never).
        #[arg(long)]
        expires_in_hours: Option<u32>,
        /// How many desktops it may enrol (default: any number).
        #[arg(long)]
        uses: Option<u32>,
        /// Data directory (overrides `data_dir`).
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
    },
    /// List the enrolment tokens (never the tokens themselves) as JSON lines.
    List {
        /// Data directory (overrides `data_dir`).
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
    },
    /// Revoke an enrolment token by its id: it enrols nothing from now on.
    Revoke {
        /// The token's id (from `create` or `list`).
        id: String,
        /// Data directory (overrides `data_dir`).
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Add a user; the password is read from --password-file, else from standard input (one
    /// line).
    Add {
        /// Login name.
        name: String,
        /// `admin` (users, agents, settings), `supervisor` (search, replay, export) or `auditor`
        /// (the audit log, legal holds, search, replay, export).
        #[arg(long)]
        role: String,
        /// A file holding the password.
        #[arg(long, value_name = "FILE")]
        password_file: Option<PathBuf>,
        /// Data directory (overrides `data_dir`).
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
    },
    /// Set a user's password (read like `add`'s), ending their sessions.
    Passwd {
        /// Login name.
        name: String,
        /// A file holding the password.
        #[arg(long, value_name = "FILE")]
        password_file: Option<PathBuf>,
        /// Data directory (overrides `data_dir`).
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
    },
    /// List the users as JSON lines.
    List {
        /// Data directory (overrides `data_dir`).
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Check the audit log's hash chain; names the first broken entry (exit status 1) or prints
    /// the number of entries and the head's hash (keep it elsewhere: a later run that does not
    /// reach it shows a truncated log).
    Verify {
        /// Data directory (overrides `data_dir`).
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum WebhooksCommand {
    /// Dry run: feed captured webhook bodies (each FILE one envelope or a JSON array of them) to
    /// the normaliser and state machine; print one JSON line per event and per action. Nothing is
    /// stored or sent.
    Replay {
        /// Files with Webex webhook envelopes.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Map a Webex person to an agent id (repeatable); without any, the configured
        /// directory is used when a database exists.
        #[arg(long = "agent", value_name = "PERSON=AGENT")]
        agents: Vec<String>,
    },
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
    let (args, demo) = match cli.command {
        Some(Command::Run(args)) => (args, false),
        #[cfg(feature = "demo")]
        Some(Command::Demo(args)) => (args, true),
        None => (cli.run, false),
        Some(Command::Agent(command)) => {
            return report(agent_command(cli.config.as_deref(), command));
        }
        Some(Command::Scn(ScnCommand::Export { file, monitor, out })) => {
            return report(scn_export(&file, monitor, &out));
        }
        Some(Command::User(command)) => {
            return report(user_command(cli.config.as_deref(), command));
        }
        Some(Command::Enrolment(command)) => {
            return report(enrolment_command(cli.config.as_deref(), command));
        }
        Some(Command::Audit(AuditCommand::Verify { data_dir })) => {
            return match audit_verify(cli.config.as_deref(), data_dir) {
                Ok(true) => ExitCode::SUCCESS,
                Ok(false) => ExitCode::from(1),
                Err(error) => {
                    eprintln!("capture-server: {error:#}");
                    ExitCode::from(2)
                }
            };
        }
        Some(Command::Webhooks(command)) => {
            return report(webhooks_command(cli.config.as_deref(), command));
        }
        Some(Command::Backfill {
            from,
            to,
            concurrency,
            data_dir,
        }) => {
            return report(backfill_command(
                cli.config.as_deref(),
                (&from, &to),
                concurrency,
                data_dir,
            ));
        }
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
    match serve(settings, demo) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            eprintln!("capture-server: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Exit status of a one-shot command: 0, or 2 with the error on stderr.
fn report(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("capture-server: {error:#}");
            ExitCode::from(2)
        }
    }
}

fn settings(
    config: Option<&std::path::Path>,
    data_dir: Option<PathBuf>,
) -> anyhow::Result<Settings> {
    let overrides = Overrides {
        listen: None,
        data_dir,
    };
    Ok(Config::load(config, &overrides).and_then(Settings::from_config)?)
}

fn agent_command(config: Option<&std::path::Path>, command: AgentCommand) -> anyhow::Result<()> {
    let (name, person_id, email, data_dir) = match command {
        AgentCommand::Add {
            name,
            person_id,
            email,
            data_dir,
        } => (name, person_id, email, data_dir),
        AgentCommand::List { data_dir } => {
            let settings = settings(config, data_dir)?;
            let (runtime, store) = open_store(&settings)?;
            let result = runtime.block_on(async {
                for agent in store.agents().await? {
                    println!("{}", serde_json::to_string(&agent)?);
                }
                anyhow::Ok(())
            });
            runtime.block_on(store.close());
            return result;
        }
    };
    let settings = settings(config, data_dir)?;
    let agent = capture_server::api::new_agent(&name, person_id.as_deref(), email.as_deref())
        .map_err(|message| {
            anyhow::anyhow!(
                "{message} (--person-id takes a Webex person id: a UUID or its base64 hydra form)"
            )
        })?;
    let (runtime, store) = open_store(&settings)?;
    let result = runtime.block_on(async {
        let now = capture_server::clock::Clock::system().now_ms();
        let (entry, credential) = store.add_agent(&agent, now).await?;
        // The credential is shown once; only its hash is stored.
        let mut json = serde_json::to_value(&entry)?;
        json["credential"] = serde_json::json!(credential);
        println!("{json}");
        anyhow::Ok(())
    });
    runtime.block_on(store.close());
    result
}

fn read_password(file: Option<&std::path::Path>) -> anyhow::Result<String> {
    use anyhow::Context as _;
    let raw = match file {
        Some(file) => {
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?
        }
        None => {
            let mut line = String::new();
            std::io::stdin().read_line(&mut line)?;
            line
        }
    };
    let password = raw.trim_end_matches(['\r', '\n']).to_owned();
    capture_server::replay::auth::check_new_password(&password).map_err(anyhow::Error::msg)?;
    Ok(password)
}

fn open_store(
    settings: &Settings,
) -> anyhow::Result<(tokio::runtime::Runtime, capture_server::store::Store)> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::fs::create_dir_all(&settings.data_dir)?;
    let store = runtime.block_on(capture_server::store::Store::open(&settings.data_dir))?;
    Ok((runtime, store))
}

fn enrolment_command(
    config: Option<&std::path::Path>,
    command: EnrolmentCommand,
) -> anyhow::Result<()> {
    let now = capture_server::clock::Clock::system().now_ms();
    let actor = format!(
        "cli:{}",
        std::env::var("USER").unwrap_or_else(|_| "unknown".into())
    );
    let data_dir = match &command {
        EnrolmentCommand::Create { data_dir, .. }
        | EnrolmentCommand::List { data_dir }
        | EnrolmentCommand::Revoke { data_dir, .. } => data_dir.clone(),
    };
    let settings = settings(config, data_dir)?;
    let (runtime, store) = open_store(&settings)?;
    let result = runtime.block_on(async {
        match command {
            EnrolmentCommand::Create {
                label,
                expires_in_hours,
                uses,
                ..
            } => {
                let label = label.trim();
                anyhow::ensure!(
                    !label.is_empty() && label.len() <= capture_server::api::MAX_TOKEN_LABEL,
                    "--label: 1 to {} bytes",
                    capture_server::api::MAX_TOKEN_LABEL
                );
                anyhow::ensure!(
                    expires_in_hours != Some(0) && uses != Some(0),
                    "--expires-in-hours and --uses are at least 1 (leave them out for no limit)"
                );
                let expires_at_ms = expires_in_hours.map(|h| now + i64::from(h) * 3_600_000);
                let (created, token) = store
                    .create_enrolment_token(
                        label,
                        (expires_at_ms, uses.map(i64::from)),
                        (None, None),
                        &actor,
                        now,
                    )
                    .await?;
                let mut json = serde_json::to_value(&created)?;
                json["token"] = serde_json::json!(token);
                println!("{json}");
            }
            EnrolmentCommand::List { .. } => {
                for token in store.enrolment_tokens().await? {
                    println!("{}", serde_json::to_string(&token)?);
                }
            }
            EnrolmentCommand::Revoke { id, .. } => {
                anyhow::ensure!(
                    store.revoke_enrolment_token(&id, &actor, now).await?,
                    "no enrolment token {id} (see `capture-server enrolment list`)"
                );
                println!("{}", serde_json::json!({ "id": id, "revoked": true }));
            }
        }
        Ok(())
    });
    runtime.block_on(store.close());
    result
}

fn user_command(config: Option<&std::path::Path>, command: UserCommand) -> anyhow::Result<()> {
    use capture_server::replay::auth::{Role, hash_password};
    let now = capture_server::clock::Clock::system().now_ms();
    let actor = format!(
        "cli:{}",
        std::env::var("USER").unwrap_or_else(|_| "unknown".into())
    );
    match command {
        UserCommand::Add {
            name,
            role,
            password_file,
            data_dir,
        } => {
            capture_server::replay::check_username(&name).map_err(anyhow::Error::msg)?;
            let role = Role::parse(&role)
                .ok_or_else(|| anyhow::anyhow!("--role is admin, supervisor or auditor"))?;
            let settings = settings(config, data_dir)?;
            let password = read_password(password_file.as_deref())?;
            let hash = hash_password(&password).map_err(anyhow::Error::msg)?;
            let (runtime, store) = open_store(&settings)?;
            runtime.block_on(async {
                let user = store
                    .add_user(&name, &hash, role.as_str(), &actor, now)
                    .await?;
                println!("{}", capture_server::replay::auth::user_json(&user));
                store.close().await;
                Ok(())
            })
        }
        UserCommand::Passwd {
            name,
            password_file,
            data_dir,
        } => {
            let settings = settings(config, data_dir)?;
            let password = read_password(password_file.as_deref())?;
            let hash = hash_password(&password).map_err(anyhow::Error::msg)?;
            let (runtime, store) = open_store(&settings)?;
            runtime.block_on(async {
                let changed = store
                    .update_user(&name, Some(&hash), None, None, &actor, now)
                    .await?;
                store.close().await;
                anyhow::ensure!(changed, "no user {name}");
                Ok(())
            })
        }
        UserCommand::List { data_dir } => {
            let settings = settings(config, data_dir)?;
            let (runtime, store) = open_store(&settings)?;
            runtime.block_on(async {
                for user in store.users().await? {
                    println!("{}", capture_server::replay::auth::user_json(&user));
                }
                store.close().await;
                Ok(())
            })
        }
    }
}

/// `audit verify`: `Ok(true)` when the chain holds.
fn audit_verify(
    config: Option<&std::path::Path>,
    data_dir: Option<PathBuf>,
) -> anyhow::Result<bool> {
    let settings = settings(config, data_dir)?;
    let (runtime, store) = open_store(&settings)?;
    runtime.block_on(async {
        let verified = store.verify_audit().await?;
        store.close().await;
        match &verified.broken {
            None => {
                println!(
                    "audit log verified: {} entries, head {}",
                    verified.entries, verified.head
                );
                Ok(true)
            }
            Some(broken) => {
                println!(
                    "audit log BROKEN at entry {}: {}",
                    broken.seq, broken.reason
                );
                Ok(false)
            }
        }
    })
}

fn webhooks_command(
    config: Option<&std::path::Path>,
    command: WebhooksCommand,
) -> anyhow::Result<()> {
    use anyhow::Context as _;
    use capture_server::integration::replay;
    let WebhooksCommand::Replay { files, agents } = command;
    let settings = settings(config, None)?;
    let mut directory = std::collections::BTreeMap::new();
    for mapping in &agents {
        let (person, agent) = mapping
            .split_once('=')
            .with_context(|| format!("--agent {mapping:?}: expected PERSON=AGENT"))?;
        let person = capture_shared::ids::person_id(person)
            .with_context(|| format!("--agent {mapping:?}"))?;
        directory.insert(person, agent.to_owned());
    }
    let database = settings.data_dir.join(capture_server::store::DATABASE_FILE);
    if agents.is_empty() && database.exists() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let entries = runtime.block_on(async {
            let store = capture_server::store::Store::open(&settings.data_dir).await?;
            let entries = store.agents().await;
            store.close().await;
            entries
        })?;
        for entry in entries {
            if let Some(person) = entry.person_id {
                directory.insert(person, entry.id.to_string());
            }
        }
    }
    let mut deliveries = Vec::new();
    for file in &files {
        let text =
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        let json: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("{} is not JSON", file.display()))?;
        for (index, envelope) in replay::envelopes(json).into_iter().enumerate() {
            deliveries.push((format!("{}#{index}", file.display()), envelope));
        }
    }
    let mut stdout = std::io::stdout().lock();
    for line in replay::replay(&deliveries, &directory, &settings.policy) {
        use std::io::Write as _;
        writeln!(stdout, "{line}")?;
    }
    Ok(())
}

/// An instant given on the command line: RFC 3339, or a date taken as UTC midnight.
fn parse_instant(flag: &str, text: &str) -> anyhow::Result<i64> {
    if let Ok(timestamp) = text.parse::<jiff::Timestamp>() {
        return Ok(timestamp.as_millisecond());
    }
    let date: jiff::civil::Date = text
        .parse()
        .map_err(|_| anyhow::anyhow!("--{flag} {text:?}: expected RFC 3339 or YYYY-MM-DD"))?;
    Ok(date
        .to_zoned(jiff::tz::TimeZone::UTC)
        .map_err(|e| anyhow::anyhow!("--{flag} {text:?}: {e}"))?
        .timestamp()
        .as_millisecond())
}

fn backfill_command(
    config: Option<&std::path::Path>,
    (from, to): (&str, &str),
    concurrency: Option<u32>,
    data_dir: Option<PathBuf>,
) -> anyhow::Result<()> {
    use capture_server::adapter::backfill::Progress;
    let from_ms = parse_instant("from", from)?;
    let to_ms = parse_instant("to", to)?;
    let mut settings = settings(config, data_dir)?;
    if let Some(concurrency) = concurrency {
        anyhow::ensure!(
            (1..=512).contains(&concurrency),
            "--concurrency must be between 1 and 512"
        );
        settings.adapter.concurrency = concurrency as usize;
    }
    if settings.log_filter == "info" {
        // The progress bar says what info lines would; warnings and errors still show.
        settings.log_filter = "warn".into();
    }
    init_logging(&settings);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        std::fs::create_dir_all(&settings.data_dir)?;
        let store = capture_server::store::Store::open(&settings.data_dir).await?;
        let clock = capture_server::clock::Clock::system();
        let wake = std::sync::Arc::new(tokio::sync::Notify::new());
        let poll_now = std::sync::Arc::new(tokio::sync::Notify::new());
        let metrics = std::sync::Arc::new(capture_server::metrics::Metrics::new());
        let adapter = capture_server::adapter(&settings, &store, &clock, wake, poll_now, metrics)?
            .ok_or_else(|| anyhow::anyhow!("no Webex credentials are configured (webex.access_token or webex.refresh_token)"))?;
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} recordings {msg}",
            )?,
        );
        let cancel = tokio_util::sync::CancellationToken::new();
        let signal = shutdown_signal()?;
        let on_signal = cancel.clone();
        tokio::spawn(async move {
            signal.await;
            on_signal.cancel();
        });
        let report = |progress: &Progress| {
            bar.set_length(progress.total.max(0) as u64);
            bar.set_position((progress.stored + progress.parked).max(0) as u64);
            bar.set_message(match (progress.listed, progress.parked) {
                (false, _) => "(listing)".to_owned(),
                (true, 0) => String::new(),
                (true, parked) => format!("({parked} parked)"),
            });
        };
        let result = adapter.backfill(from_ms, to_ms, report, cancel).await;
        bar.finish();
        store.close().await;
        let progress = result?;
        println!(
            "{}",
            serde_json::json!({ "stored": progress.stored, "parked": progress.parked, "total": progress.total })
        );
        if progress.parked > 0 {
            eprintln!(
                "capture-server: {} recordings were parked; see GET /api/v1/recordings?state=parked",
                progress.parked
            );
        }
        Ok(())
    })
}

fn serve(settings: Settings, demo: bool) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let listener = std::net::TcpListener::bind(settings.listen)
            .with_context(|| format!("cannot listen on {}", settings.listen))?;
        let shutdown = shutdown_signal().context("cannot install signal handlers")?;
        if demo {
            #[cfg(feature = "demo")]
            return capture_server::demo::run(settings, listener, shutdown).await;
        }
        capture_server::run(settings, listener, shutdown).await?;
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

/// Completes on Ctrl-C or SIGTERM (what systemd and `kill` send). The handlers are installed
/// when this is called, not when the future is first polled: a signal that arrives while the
/// server is still starting must stop it gracefully too.
#[cfg(unix)]
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => tracing::info!("ctrl-c received"),
            _ = terminate.recv() => tracing::info!("SIGTERM received"),
        }
    })
}

/// Windows services stop through Ctrl-C/Ctrl-Break handling.
#[cfg(not(unix))]
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    let mut ctrl_c = tokio::signal::windows::ctrl_c()?;
    Ok(async move {
        ctrl_c.recv().await;
        tracing::info!("ctrl-c received");
    })
}

fn scn_export(file: &std::path::Path, monitor: u16, out: &std::path::Path) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let exported =
        capture_server::media::export::export(file, capture_shared::ids::MonitorId(monitor), out)
            .with_context(|| format!("exporting {}", file.display()))?;
    println!(
        "{}",
        serde_json::json!({
            "out": out,
            "frames": exported.frames,
            "keyframes": exported.keyframes,
            "width": exported.width,
            "height": exported.height,
            "duration_us": exported.duration_us,
            "scn_ended": exported.scn_ended,
        })
    );
    Ok(())
}
