//! Windows programs under Wine on an Xvfb display, for the Windows agent's end-to-end test and
//! benchmark (Debian's `wine`, `wine64` and `gcc-mingw-w64-x86-64`, installed by `.ci/run`).
//!
//! The Windows binaries (`capture-agent.exe`, `capture-tray.exe`, `capture-test-desktop.exe`) are cross-built for
//! `x86_64-pc-windows-gnu` into the workspace's target directory, by `.ci/run` before the tests
//! or by [`windows_binaries`] itself. Wine 8 lacks `bcryptprimitives.dll`, whose `ProcessPrng`
//! Rust's std calls: a shim built from `tests/wine/processprng.c` is put beside the copies the
//! test runs (it is never shipped). Each [`Wine`] has its own fresh prefix.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;

/// The Rust target of the Windows build.
pub const WINDOWS_TARGET: &str = "x86_64-pc-windows-gnu";

/// Set to `skipped` by `.ci/run` when the Windows target could not be installed.
pub const SKIP_VARIABLE: &str = "CAPTURE_WINDOWS_BUILD";

/// Where the release Windows binaries are, building them first (a no-op when they are up to
/// date); `None` when `.ci/run` said the Windows build is skipped. `target_dir` is the
/// workspace's target directory.
pub fn windows_binaries(target_dir: &Path) -> anyhow::Result<Option<PathBuf>> {
    if std::env::var(SKIP_VARIABLE).as_deref() == Ok("skipped") {
        eprintln!("WINDOWS BUILD SKIPPED: {SKIP_VARIABLE}=skipped; the Wine test does not run");
        return Ok(None);
    }
    crate::cargo::build(
        target_dir,
        &[
            "--release",
            "--target",
            WINDOWS_TARGET,
            "-p",
            "capture-agent",
            "-p",
            "capture-test-desktop",
            "-p",
            "capture-tray",
        ],
    )
    .with_context(|| {
        format!(
            "building the Windows binaries (rustup target add {WINDOWS_TARGET}; Debian's \
             gcc-mingw-w64-x86-64; or set {SKIP_VARIABLE}=skipped)"
        )
    })?;
    Ok(Some(target_dir.join(WINDOWS_TARGET).join("release")))
}

/// Microsoft's `WebView2Loader.dll` beside the Windows build (`binaries`), as the newest
/// webview2-com-sys build unpacked it: the tray's MSI ships it.
pub fn webview2_loader(binaries: &Path) -> anyhow::Result<PathBuf> {
    let mut found: Vec<(std::time::SystemTime, PathBuf)> = Vec::new();
    for entry in std::fs::read_dir(binaries.join("build"))? {
        let dir = entry?.path();
        let is_sys = dir
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("webview2-com-sys-"));
        let loader = dir.join("out").join("x64").join("WebView2Loader.dll");
        if is_sys && let Ok(meta) = std::fs::metadata(&loader) {
            found.push((meta.modified()?, loader));
        }
    }
    found.sort();
    found
        .pop()
        .map(|(_, path)| path)
        .ok_or_else(|| anyhow::anyhow!("no WebView2Loader.dll under {}", binaries.display()))
}

/// A fresh Wine prefix on an X display, with the binaries copied into `C:\capture`.
#[derive(Debug)]
pub struct Wine {
    /// The prefix (deleted on drop).
    pub prefix: tempfile::TempDir,
    /// The X display Wine draws on.
    pub display: String,
    /// `C:\capture` as a Linux path.
    pub bin: PathBuf,
}

impl Wine {
    /// Creates the prefix (`wineboot --init`, without Mono and Gecko), copies `exes` from
    /// `binaries` and builds the `ProcessPrng` shim beside them.
    pub fn start(display: &str, binaries: &Path, exes: &[&str]) -> anyhow::Result<Wine> {
        let prefix = tempfile::tempdir()?;
        let wine = Wine {
            bin: prefix.path().join("drive_c").join("capture"),
            prefix,
            display: display.to_owned(),
        };
        let status = wine
            .raw("wineboot")
            .arg("--init")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .context("running wineboot (Debian packages wine, wine64)")?;
        anyhow::ensure!(status.success(), "wineboot --init failed: {status}");
        wine.wait_idle()?;
        std::fs::create_dir_all(&wine.bin)?;
        for exe in exes {
            std::fs::copy(binaries.join(exe), wine.bin.join(exe))
                .with_context(|| format!("copying {exe}"))?;
        }
        let shim = Path::new(env!("CARGO_MANIFEST_DIR")).join("wine/processprng.c");
        let output = Command::new("x86_64-w64-mingw32-gcc")
            .args(["-shared", "-O2", "-o"])
            .arg(wine.bin.join("bcryptprimitives.dll"))
            .arg(&shim)
            .arg("-ladvapi32")
            .output()
            .context("running x86_64-w64-mingw32-gcc (Debian package gcc-mingw-w64-x86-64)")?;
        anyhow::ensure!(
            output.status.success(),
            "building the ProcessPrng shim failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        Ok(wine)
    }

    /// A Wine tool (`wineboot`, `wineserver`) or `wine` itself with this prefix's environment.
    pub fn raw(&self, program: &str) -> Command {
        let mut command = Command::new(program);
        command
            .env("WINEPREFIX", self.prefix.path())
            .env("WINEDEBUG", "-all")
            // No Mono or Gecko installer dialogs: nothing here needs .NET or MSHTML.
            .env("WINEDLLOVERRIDES", "mscoree,mshtml=")
            .env("DISPLAY", &self.display)
            .stdin(Stdio::null());
        command
    }

    /// `wine C:\capture\<exe>`.
    pub fn command(&self, exe: &str) -> Command {
        let mut command = self.raw("wine");
        command.arg(self.bin.join(exe));
        command
    }

    /// `cmd /c <line>` in the prefix: the command's exit code (`%ERRORLEVEL%`; Wine's own exit
    /// code for `msiexec` run directly is not the installer's) and what it printed.
    pub fn cmd(&self, line: &str) -> anyhow::Result<(i32, String)> {
        let output = self
            .raw("wine")
            .args(["cmd", "/c", &format!("{line} & echo EXIT=%ERRORLEVEL%")])
            .output()
            .context("running wine cmd")?;
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        let code = text
            .lines()
            .rev()
            .find_map(|l| l.trim().strip_prefix("EXIT="))
            .and_then(|c| c.trim().parse().ok())
            .ok_or_else(|| anyhow::anyhow!("no exit code from `{line}`: {text}"))?;
        Ok((code, text))
    }

    /// The values (name → data) of a registry key, `None` when the key does not exist (64-bit
    /// view).
    pub fn registry(
        &self,
        key: &str,
    ) -> anyhow::Result<Option<std::collections::BTreeMap<String, String>>> {
        let output = self
            .raw("wine")
            .args(["reg", "query", key, "/reg:64"])
            .output()
            .context("running wine reg")?;
        if !output.status.success() {
            return Ok(None);
        }
        let mut values = std::collections::BTreeMap::new();
        for line in String::from_utf8_lossy(&output.stdout).lines() {
            let Some(line) = line.strip_prefix("    ") else {
                continue;
            };
            let mut parts = line.splitn(3, "    ");
            if let (Some(name), Some(kind)) = (parts.next(), parts.next())
                && kind.starts_with("REG_")
            {
                values.insert(
                    name.trim().to_owned(),
                    parts.next().unwrap_or_default().trim().to_owned(),
                );
            }
        }
        Ok(Some(values))
    }

    /// `C:\Program Files` as a Linux path.
    pub fn program_files(&self) -> PathBuf {
        self.prefix.path().join("drive_c").join("Program Files")
    }

    /// The `ProcessPrng` shim Wine 8 needs beside a Rust program (test-only, never shipped).
    pub fn shim(&self) -> PathBuf {
        self.bin.join("bcryptprimitives.dll")
    }

    /// A Linux path as Wine's `Z:` drive names it.
    pub fn windows_path(path: &Path) -> String {
        format!("Z:{}", path.display()).replace('/', "\\")
    }

    /// `%LOCALAPPDATA%` of the prefix's user, as a Linux path.
    pub fn local_app_data(&self) -> anyhow::Result<PathBuf> {
        let users = self.prefix.path().join("drive_c").join("users");
        for entry in std::fs::read_dir(&users)? {
            let path = entry?.path().join("AppData").join("Local");
            if path.is_dir() && !path.starts_with(users.join("Public")) {
                return Ok(path);
            }
        }
        anyhow::bail!("no user profile in {}", users.display())
    }

    /// Waits until every process of the prefix has ended (at most 60 s).
    pub fn wait_idle(&self) -> anyhow::Result<()> {
        let mut child = self.raw("wineserver").arg("-w").spawn()?;
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if child.try_wait()?.is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
        anyhow::bail!("the Wine prefix did not settle")
    }
}

impl Wine {
    /// Ends every process of the prefix (`wineserver -k`) and waits until they are gone.
    pub fn kill_all(&self) {
        self.kill();
        let _ = self.wait_idle();
    }

    /// `wineserver -k`: ends every process of the prefix.
    fn kill(&self) {
        let _ = self
            .raw("wineserver")
            .arg("-k")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

impl Drop for Wine {
    fn drop(&mut self) {
        self.kill();
    }
}
