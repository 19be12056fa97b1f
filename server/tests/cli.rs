//! The `capture-server` binary: starting with no configuration, refusing bad configuration with a
//! message that names the key, and stopping on SIGTERM within its deadline.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BINARY: &str = env!("CARGO_BIN_EXE_capture-server");

/// Runs the binary in `dir` with `args` and extra environment; returns (exit code, stderr).
fn run_to_exit(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let mut command = Command::new(BINARY);
    command
        .current_dir(dir)
        .args(args)
        .env_remove("CAPTURE_CONFIG");
    for (key, value) in env {
        command.env(key, value);
    }
    let output = command.output().expect("run capture-server");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn an_unknown_key_a_wrong_type_and_an_out_of_range_value_each_exit_non_zero_naming_the_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("unknown.toml"),
        "listen = \"127.0.0.1:0\"\nlog_levl = \"debug\"\n",
    )
    .expect("write");
    let (code, stderr) = run_to_exit(dir.path(), &["--config", "unknown.toml"], &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("log_levl") && stderr.contains("unknown.toml"),
        "{stderr}"
    );

    std::fs::write(
        dir.path().join("type.toml"),
        "[tls]\ngenerated_names = \"localhost\"\n",
    )
    .expect("write");
    let (code, stderr) = run_to_exit(dir.path(), &["--config", "type.toml"], &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("tls.generated_names"), "{stderr}");

    let (code, stderr) = run_to_exit(dir.path(), &[], &[("CAPTURE_SHUTDOWN_GRACE_S", "100000")]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("shutdown_grace_s") && stderr.contains("100000"),
        "{stderr}"
    );

    let (code, stderr) = run_to_exit(dir.path(), &["run", "--listen", "not-an-address"], &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--listen"), "{stderr}");

    // Nothing was started: no data directory appeared.
    assert!(!dir.path().join("capture-data").exists());
}

/// Starts the binary with JSON logs and waits for its "listening" line; returns the child, the
/// address it listens on, and the thread collecting its log lines.
fn start(dir: &Path, args: &[&str]) -> (Child, String, std::thread::JoinHandle<Vec<String>>) {
    let mut child = Command::new(BINARY)
        .current_dir(dir)
        .args(args)
        .env_remove("CAPTURE_CONFIG")
        .env("CAPTURE_LOG__FORMAT", "json")
        .env("CAPTURE_SHUTDOWN_GRACE_S", "3")
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn capture-server");
    let stderr = child.stderr.take().expect("stderr");
    let (address_tx, address_rx) = std::sync::mpsc::channel();
    let lines = std::thread::spawn(move || {
        let mut lines = Vec::new();
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if let Ok(json) = serde_json::from_str::<serde_json::Value>(&line)
                && json["fields"]["message"] == "capture server listening"
            {
                let _ = address_tx.send(
                    json["fields"]["address"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                );
            }
            lines.push(line);
        }
        lines
    });
    let address = address_rx
        .recv_timeout(Duration::from_secs(30))
        .expect("server reported its address");
    (child, address, lines)
}

#[test]
fn with_no_configuration_it_starts_and_stops_on_sigterm_within_its_deadline() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut child, address, lines) = start(dir.path(), &["--listen", "127.0.0.1:0"]);
    let port = address.rsplit(':').next().expect("port");

    // The default data directory is created in the working directory, with the generated CA.
    // (The HTTPS exchange itself is tested in-process in tests/tests/server.rs.)
    assert!(dir.path().join("capture-data/tls/ca.pem").exists());
    assert!(std::net::TcpStream::connect(format!("127.0.0.1:{port}")).is_ok());

    let started = Instant::now();
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    // Grace period (3 s) plus the server's slack: the process must be gone by then.
    let deadline = Duration::from_secs(3) + capture_server::SHUTDOWN_SLACK;
    let exit = loop {
        if let Some(exit) = child.try_wait().expect("wait") {
            break exit;
        }
        assert!(
            started.elapsed() < deadline,
            "still running {:?} after SIGTERM",
            started.elapsed()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(exit.success(), "{exit:?}");
    let lines = lines.join().expect("log reader");
    assert!(
        lines.iter().any(|l| l.contains("SIGTERM received")),
        "{lines:#?}"
    );
    assert!(
        lines.iter().any(|l| l.contains("\"stopped\"")),
        "{lines:#?}"
    );
}

/// Runs the binary to its end; (exit code, stdout, stderr).
fn run_output(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let output = Command::new(BINARY)
        .current_dir(dir)
        .args(args)
        .env_remove("CAPTURE_CONFIG")
        .output()
        .expect("run capture-server");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn enrolment_tokens_are_created_listed_and_revoked_from_the_command_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let data = data.to_str().expect("utf-8 path");
    let (code, out, err) = run_output(
        dir.path(),
        &[
            "enrolment",
            "create",
            "--label",
            "floor 3",
            "--uses",
            "250",
            "--expires-in-hours",
            "72",
            "--data-dir",
            data,
        ],
    );
    assert_eq!(code, 0, "{err}");
    let created: serde_json::Value = serde_json::from_str(out.trim()).expect("JSON");
    assert_eq!(created["token"].as_str().map(str::len), Some(64), "{out}");
    assert_eq!(created["max_uses"], 250);
    assert!(created["expires_at_ms"].as_i64() > created["created_at_ms"].as_i64());
    let id = created["id"].as_str().expect("id").to_owned();

    let (code, out, err) = run_output(dir.path(), &["enrolment", "list", "--data-dir", data]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&id) && out.contains("floor 3"), "{out}");
    assert!(
        !out.contains(created["token"].as_str().expect("token")),
        "a token is never listed"
    );

    let (code, out, err) = run_output(
        dir.path(),
        &["enrolment", "revoke", &id, "--data-dir", data],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("\"revoked\":true"), "{out}");
    let (_, out, _) = run_output(dir.path(), &["enrolment", "list", "--data-dir", data]);
    let listed: serde_json::Value =
        serde_json::from_str(out.lines().next().expect("a line")).expect("JSON");
    assert!(listed["revoked_at_ms"].is_i64(), "{out}");
    assert!(
        listed["revoked_by"]
            .as_str()
            .is_some_and(|by| by.starts_with("cli:"))
    );

    let (code, _, err) = run_output(
        dir.path(),
        &["enrolment", "revoke", "nope", "--data-dir", data],
    );
    assert_ne!(code, 0);
    assert!(err.contains("no enrolment token nope"), "{err}");
    let (code, _, err) = run_output(
        dir.path(),
        &[
            "enrolment",
            "create",
            "--label",
            "x",
            "--uses",
            "0",
            "--data-dir",
            data,
        ],
    );
    assert_ne!(code, 0);
    assert!(err.contains("at least 1"), "{err}");
}
