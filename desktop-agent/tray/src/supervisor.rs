//! The recording runs in its own process, `capture-agent run`, which the tray starts and restarts
//! but does not own: it is started in its own process group (Windows: without a console, in a new
//! process group), so quitting the tray, or the tray crashing, leaves it recording. A tray that
//! starts while an agent already runs for this user (its status file is fresh, or its start
//! exits with "already running") only watches it.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use capture_agent::local::{self, StatusReport};

/// How the agent's next start is delayed after it exits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restarts {
    delay: Duration,
}

impl Default for Restarts {
    fn default() -> Self {
        Restarts {
            delay: Duration::from_secs(1),
        }
    }
}

impl Restarts {
    /// The wait before starting the agent again after it exited with `code` having run for
    /// `ran`: another agent runs → check again soon; refused for good → slowly (an administrator
    /// must act; the tray shows the error); a crash → 1 s doubling to 60 s, reset once it ran a
    /// minute.
    pub fn after(&mut self, code: Option<i32>, ran: Duration) -> Duration {
        if code == Some(i32::from(local::EXIT_ALREADY_RUNNING)) {
            return Duration::from_secs(2);
        }
        if code == Some(i32::from(local::EXIT_REFUSED)) {
            return Duration::from_secs(300);
        }
        if ran >= Duration::from_secs(60) {
            self.delay = Duration::from_secs(1);
        }
        let delay = self.delay;
        self.delay = (self.delay * 2).min(Duration::from_secs(60));
        delay
    }
}

/// The agent binary beside the tray's (`capture-agent`, `capture-agent.exe`).
pub fn agent_binary() -> std::io::Result<PathBuf> {
    let tray = std::env::current_exe()?;
    Ok(tray.with_file_name(format!("capture-agent{}", std::env::consts::EXE_SUFFIX)))
}

fn detached(agent: &Path, config: &Path, log: &Path) -> std::io::Result<std::process::Child> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)?;
    let mut command = Command::new(agent);
    command
        .arg("--config")
        .arg(config)
        .arg("run")
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt as _;
        command.process_group(0);
    }
    #[cfg(windows)]
    {
        use std::os::windows::process::CommandExt as _;
        const CREATE_NO_WINDOW: u32 = 0x0800_0000;
        const CREATE_NEW_PROCESS_GROUP: u32 = 0x0000_0200;
        command.creation_flags(CREATE_NO_WINDOW | CREATE_NEW_PROCESS_GROUP);
    }
    command.spawn()
}

/// Keeps one agent running for the user of `config` until the tray ends (a thread; the agent
/// outlives it).
pub fn supervise(agent: PathBuf, config: PathBuf) {
    let status_file = local::status_path(&config);
    let log = config.with_file_name("agent.log");
    let mut restarts = Restarts::default();
    loop {
        let running = StatusReport::read(&status_file)
            .map(|r| r.is_live(local::unix_ms()) && r.state != local::AgentState::Error)
            .unwrap_or(false);
        if running {
            std::thread::sleep(Duration::from_secs(2));
            continue;
        }
        if let Some(dir) = config.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let started = Instant::now();
        let exit: std::io::Result<ExitStatus> =
            detached(&agent, &config, &log).and_then(|mut child| {
                tracing::info!(pid = child.id(), agent = %agent.display(), "agent started");
                child.wait()
            });
        let delay = match exit {
            Ok(status) => {
                tracing::info!(%status, "agent exited");
                restarts.after(status.code(), started.elapsed())
            }
            Err(error) => {
                tracing::error!(%error, agent = %agent.display(), "the agent cannot be started");
                let _ = StatusReport::only(
                    local::AgentState::Error,
                    "",
                    Some(format!("the agent cannot be started: {error}")),
                )
                .write(&status_file);
                Duration::from_secs(30)
            }
        };
        std::thread::sleep(delay);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crashes_back_off_and_refusals_wait_for_an_administrator() {
        let mut restarts = Restarts::default();
        let quick = Duration::from_secs(1);
        let delays: Vec<u64> = (0..8)
            .map(|_| restarts.after(Some(101), quick).as_secs())
            .collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 32, 60, 60]);
        assert_eq!(
            restarts.after(Some(101), Duration::from_secs(120)),
            Duration::from_secs(1),
            "a crash after a minute's recording restarts at once"
        );
        assert_eq!(restarts.after(Some(3), quick), Duration::from_secs(2));
        assert_eq!(restarts.after(Some(2), quick), Duration::from_secs(300));
    }
}
