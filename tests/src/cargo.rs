//! Building the workspace's other binaries from a test or a benchmark (the agent, the Windows
//! binaries): `cargo build` in the workspace with the caller's target directory, a no-op when
//! they are up to date.

use std::path::Path;

use anyhow::Context as _;

/// `cargo build --locked ARGS` in the workspace, into `target_dir`.
pub fn build(target_dir: &Path, args: &[&str]) -> anyhow::Result<()> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("the workspace")?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = std::process::Command::new(cargo)
        .current_dir(workspace)
        .args(["build", "--locked"])
        .args(args)
        .env("CARGO_TARGET_DIR", target_dir)
        .status()
        .with_context(|| format!("running cargo build {}", args.join(" ")))?;
    anyhow::ensure!(status.success(), "cargo build {} failed", args.join(" "));
    Ok(())
}
