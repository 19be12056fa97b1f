//! `capture-server user add` and `capture-server audit verify`: users added from the command line
//! (password from standard input, hashed), and a tampered audit log named at its first broken
//! entry with exit status 1.

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

use sqlx::Connection as _;

const BINARY: &str = env!("CARGO_BIN_EXE_capture-server");

fn capture(dir: &Path, args: &[&str], stdin: &str) -> (i32, String, String) {
    let mut child = Command::new(BINARY)
        .current_dir(dir)
        .args(args)
        .args(["--data-dir", "data"])
        .env_remove("CAPTURE_CONFIG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run capture-server");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    let output = child.wait_with_output().expect("wait");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn users_are_added_from_the_command_line_and_a_tampered_audit_log_fails_at_its_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, role) in [("sam", "supervisor"), ("ada", "auditor"), ("root", "admin")] {
        let (code, out, err) = capture(
            dir.path(),
            &["user", "add", name, "--role", role],
            "a long enough password\n",
        );
        assert_eq!(code, 0, "{err}");
        assert!(out.contains(&format!("\"username\":\"{name}\"")), "{out}");
    }
    // A short password, an unknown role and a taken name are refused, each with a reason.
    let (code, _, err) = capture(
        dir.path(),
        &["user", "add", "eve", "--role", "supervisor"],
        "short\n",
    );
    assert_eq!(code, 2);
    assert!(err.contains("12 characters"), "{err}");
    let (code, _, err) = capture(
        dir.path(),
        &["user", "add", "eve", "--role", "owner"],
        "a long enough password\n",
    );
    assert_eq!(code, 2);
    assert!(err.contains("--role"), "{err}");
    let (code, _, err) = capture(
        dir.path(),
        &["user", "add", "sam", "--role", "auditor"],
        "a long enough password\n",
    );
    assert_eq!(code, 2);
    assert!(err.contains("already exists"), "{err}");

    let (code, out, err) = capture(dir.path(), &["audit", "verify"], "");
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("verified: 3 entries"), "{out}");

    // The password is stored hashed (argon2id), never as given.
    let url = format!("sqlite://{}", dir.path().join("data/capture.db").display());
    let mut db = sqlx::SqliteConnection::connect(&url).await.expect("db");
    let hash: String = sqlx::query_scalar("SELECT password_hash FROM users WHERE username = 'sam'")
        .fetch_one(&mut db)
        .await
        .expect("hash");
    assert!(
        hash.starts_with("$argon2id$") && !hash.contains("long enough"),
        "{hash}"
    );

    // Editing the second entry: verify fails there, exit status 1.
    sqlx::query("UPDATE audit_log SET subject = 'mallory' WHERE id = 2")
        .execute(&mut db)
        .await
        .expect("tamper");
    db.close().await.expect("close");
    let (code, out, _) = capture(dir.path(), &["audit", "verify"], "");
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("BROKEN at entry 2"), "{out}");
}
