//! Capture's tray app: a thin shell over the `capture-agent` library. It shows the agent's state
//! at a glance (an icon per state, a tooltip, a menu with the server, the agent and the last
//! contact, a status window on demand) and keeps the recording agent running; it records
//! nothing itself.
//!
//! - [`state`]: the status file → what the tray shows (pure);
//! - [`tray`]: the icon, menu and window;
//! - [`commands`]: what the status window may ask;
//! - [`supervisor`]: starts and restarts `capture-agent run`, a process of its own that keeps
//!   recording when the tray is closed or crashes.

pub mod commands;
pub mod state;
pub mod supervisor;
pub mod tray;

use std::path::PathBuf;
use std::process::ExitCode;

/// Runs the tray until the user closes it (the agent keeps recording).
pub fn run() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CAPTURE_TRAY_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let config: PathBuf = std::env::var_os("CAPTURE_AGENT_CONFIG")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(capture_agent::config::default_path);
    let agent = match supervisor::agent_binary() {
        Ok(agent) => agent,
        Err(error) => {
            eprintln!("capture-tray: where is capture-agent? {error}");
            return ExitCode::FAILURE;
        }
    };
    let built = tauri::Builder::default()
        .manage(tray::Shared::new())
        .invoke_handler(tauri::generate_handler![commands::status, commands::about])
        .setup(move |app| {
            tray::install(app.handle(), config.clone())?;
            let config = config.clone();
            std::thread::Builder::new()
                .name("agent-supervisor".into())
                .spawn(move || supervisor::supervise(agent, config))?;
            Ok(())
        })
        .build(tauri::generate_context!());
    let app = match built {
        Ok(app) => app,
        Err(error) => {
            eprintln!("capture-tray: {error}");
            return ExitCode::FAILURE;
        }
    };
    app.run(|_, event| {
        // Closing the status window must not end the tray; only "close this icon" does.
        if let tauri::RunEvent::ExitRequested {
            code: None, api, ..
        } = event
        {
            api.prevent_exit();
        }
    });
    ExitCode::SUCCESS
}
