//! The agent's MSI as IT deploys it, under Wine's msiexec: built on Linux with wixl from
//! `installer/windows/agent.wxs` (signed with a throwaway test certificate), its tables read back
//! with msiinfo; without the WebView2 runtime the tray's MSI refuses to install (1603); a
//! silent install with the public properties installs the tray, its WebView2 loader and the
//! agent, starts the tray at every logon, and writes the properties where the agent reads
//! them; the installed tray (what the Run key starts at logon) starts `capture-agent.exe`, which
//! enrols at its first start with the installer's token
//! (TLS pinned to the recorder's CA) and deletes the token; a major upgrade without properties
//! keeps them, one with a property changes only that one; a downgrade is refused (1603); an
//! uninstall leaves nothing of ours behind. What Wine cannot show (ACLs, the all-users Run key at
//! a real logon, ICE validation) is listed in installer/DEPLOYMENT.md.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::Context as _;
use capture_tests::process::{Running, wait_until};
use capture_tests::server::TestServer;
use capture_tests::wine::{Wine, webview2_loader, windows_binaries};
use capture_tests::xvfb::Xvfb;
use serde_json::json;

const SETTINGS: &str = r"HKLM\Software\Capture\Agent";
const ENROLLMENT: &str = r"HKLM\Software\Capture\Agent\Enrollment";
const RUN: &str = r"HKLM\Software\Microsoft\Windows\CurrentVersion\Run";
const UNINSTALL: &str = r"HKLM\Software\Microsoft\Windows\CurrentVersion\Uninstall";

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

fn run(command: &mut Command) -> anyhow::Result<String> {
    let output = command
        .output()
        .with_context(|| format!("running {command:?}"))?;
    anyhow::ensure!(
        output.status.success(),
        "{command:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// A throwaway code-signing certificate (PKCS#12, password `test`) and its PEM.
fn signing_certificate(dir: &Path) -> anyhow::Result<(PathBuf, PathBuf)> {
    let (key, cert, pfx) = (
        dir.join("key.pem"),
        dir.join("cert.pem"),
        dir.join("sign.pfx"),
    );
    run(Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .args(["-subj", "/CN=Capture Test Code Signing/O=Capture"])
        .args(["-addext", "extendedKeyUsage=codeSigning", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert))?;
    run(Command::new("openssl")
        .args(["pkcs12", "-export", "-passout", "pass:test", "-inkey"])
        .arg(&key)
        .arg("-in")
        .arg(&cert)
        .arg("-out")
        .arg(&pfx))?;
    Ok((pfx, cert))
}

fn build_msi(version: &str, binaries: &Path, out: &Path, pfx: Option<&Path>) -> anyhow::Result<()> {
    let mut command = Command::new("bash");
    command
        .arg(repository().join("installer/windows/build-msi.sh"))
        .arg(version)
        .arg(binaries.join("capture-agent.exe"))
        .arg(out)
        .arg(binaries.join("capture-tray.exe"))
        .arg(webview2_loader(binaries)?);
    if let Some(pfx) = pfx {
        command
            .env("CAPTURE_SIGN_PFX", pfx)
            .env("CAPTURE_SIGN_PASSWORD", "test");
    }
    run(&mut command)?;
    Ok(())
}

fn msi_table(msi: &Path, table: &str) -> anyhow::Result<String> {
    run(Command::new("msiinfo").arg("export").arg(msi).arg(table))
}

/// The rows of an exported table whose first column is `key`.
fn row(table: &str, key: &str) -> Vec<String> {
    table
        .lines()
        .map(|l| l.split('\t').map(str::to_owned).collect::<Vec<_>>())
        .find(|cols| cols.first().map(String::as_str) == Some(key))
        .unwrap_or_default()
}

fn msiexec(wine: &Wine, arguments: &str) -> anyhow::Result<i32> {
    let (code, output) = wine.cmd(&format!("msiexec {arguments}"))?;
    eprintln!(
        "msiexec {}: {code}",
        arguments.split(' ').take(2).collect::<Vec<_>>().join(" ")
    );
    if code != 0 && code != 1603 {
        eprintln!("{output}");
    }
    Ok(code)
}

/// The Uninstall entries (Add/Remove Programs) named "Capture Agent", with their versions.
fn installed_versions(wine: &Wine) -> anyhow::Result<Vec<String>> {
    let output = wine
        .raw("wine")
        .args(["reg", "query", UNINSTALL, "/s", "/reg:64"])
        .output()?;
    let text = String::from_utf8_lossy(&output.stdout);
    let mut versions = Vec::new();
    for block in text.split("\r\n\r\n").flat_map(|b| b.split("\n\n")) {
        if block.contains("Capture Agent")
            && let Some(version) = block
                .lines()
                .find_map(|l| l.trim().strip_prefix("DisplayVersion"))
        {
            versions.push(
                version
                    .trim()
                    .trim_start_matches("REG_SZ")
                    .trim()
                    .to_owned(),
            );
        }
    }
    Ok(versions)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_msi_installs_enrols_upgrades_refuses_a_downgrade_and_uninstalls_under_wine()
-> anyhow::Result<()> {
    let target = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .ok_or_else(|| anyhow::anyhow!("no target directory"))?
        .to_owned();
    let Some(binaries) = windows_binaries(&target)? else {
        return Ok(());
    };
    let work = tempfile::tempdir()?;
    let (pfx, cert) = signing_certificate(work.path())?;
    let (v1, v2, v3) = (
        work.path().join("capture-agent-0.1.0.msi"),
        work.path().join("capture-agent-0.2.0.msi"),
        work.path().join("capture-agent-0.3.0.msi"),
    );
    build_msi("0.1.0", &binaries, &v1, Some(&pfx))?;
    build_msi("0.2.0", &binaries, &v2, None)?;
    build_msi("0.3.0", &binaries, &v3, None)?;

    // The signature verifies against the test certificate.
    let verified = run(Command::new("osslsigncode")
        .args(["verify", "-CAfile"])
        .arg(&cert)
        .arg("-in")
        .arg(&v1))?;
    assert!(
        verified.contains("Signature verification: ok"),
        "{verified}"
    );

    // The tables say what DEPLOYMENT.md promises.
    let property = msi_table(&v1, "Property")?;
    assert_eq!(row(&property, "ALLUSERS")[1], "1", "per-machine");
    let secure = &row(&property, "SecureCustomProperties")[1];
    for name in [
        "SERVER_URL",
        "ENROLLMENT_TOKEN",
        "SERVER_CA_SHA256",
        "PROXY_URL",
        "AUTOSTART",
    ] {
        assert!(secure.split(';').any(|p| p == name), "{name} in {secure}");
    }
    let hidden = &row(&property, "MsiHiddenProperties")[1];
    assert!(hidden.contains("ENROLLMENT_TOKEN") && hidden.contains("PROXY_URL"));
    let upgrade = msi_table(&v1, "Upgrade")?;
    assert!(upgrade.contains("WIX_DOWNGRADE_DETECTED") && upgrade.contains("WIX_UPGRADE_DETECTED"));
    let launch = msi_table(&v1, "LaunchCondition")?;
    for condition in [
        "NOT WIX_DOWNGRADE_DETECTED",
        "VersionNT64",
        "Privileged",
        "WEBVIEW2_VERSION",
    ] {
        assert!(launch.contains(condition), "{condition}: {launch}");
    }
    let components = msi_table(&v1, "Component")?;
    assert_eq!(row(&components, "EnrollmentToken")[4], "ENROLLMENT_TOKEN");
    assert_eq!(row(&components, "Autostart")[4], "AUTOSTART<>\"0\"");
    let registry = msi_table(&v1, "Registry")?;
    assert_eq!(
        row(&registry, "RemoveSettingsKey")[3],
        "-",
        "the settings key goes at uninstall"
    );
    let acl = msi_table(&v1, "MsiLockPermissionsEx")?;
    assert!(acl.contains("EnrollmentTokenValue\tRegistry\tD:"), "{acl}");

    // A recorder, and a one-time token an administrator made for this rollout.
    let server = TestServer::start().await?;
    let created: serde_json::Value = server
        .client()?
        .post(format!("{}/api/v1/enrolment-tokens", server.base_url()))
        .bearer_auth(server.api_token()?)
        .json(&json!({ "label": "msi rollout", "max_uses": 1 }))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let token = created["token"].as_str().unwrap_or_default().to_owned();
    let token_id = created["id"].as_str().unwrap_or_default().to_owned();
    let pin = server.ca_sha256()?;

    let xvfb = Xvfb::start(&[(1024, 768)])?;
    let wine = Wine::start(&xvfb.display, &binaries, &[])?;

    // Without the WebView2 runtime the tray's MSI refuses to install (its launch condition);
    // then the runtime is "deployed" (its registration, which is all the condition reads).
    let install = format!(
        "/i {} /qn SERVER_URL={} ENROLLMENT_TOKEN={token} SERVER_CA_SHA256={pin}",
        Wine::windows_path(&v1),
        server.base_url()
    );
    assert_eq!(msiexec(&wine, &install)?, 1603, "no WebView2, no install");
    assert_eq!(wine.registry(SETTINGS)?, None);
    let (code, _) = wine.cmd(
        r"reg add HKLM\SOFTWARE\Microsoft\EdgeUpdate\Clients\{F3017226-FE2A-4295-8BDF-00C3A9A7E4C5} /v pv /t REG_SZ /d 120.0.2210.91 /f /reg:32",
    )?;
    assert_eq!(code, 0);

    // Install, silently, with the properties.
    assert_eq!(msiexec(&wine, &install)?, 0, "install");
    let settings = wine
        .registry(SETTINGS)?
        .ok_or_else(|| anyhow::anyhow!("no {SETTINGS}"))?;
    assert_eq!(settings["ServerUrl"], server.base_url());
    assert_eq!(settings["ServerCaSha256"], pin);
    assert!(!settings.contains_key("ProxyUrl"), "no PROXY_URL given");
    assert_eq!(
        wine.registry(ENROLLMENT)?.unwrap_or_default()["Token"],
        token
    );
    let run_key = wine.registry(RUN)?.unwrap_or_default();
    assert!(
        run_key
            .get("Capture Agent")
            .is_some_and(|v| v.contains(r"Capture\Agent\capture-tray.exe")),
        "the tray (which starts the agent) at every logon by default: {run_key:?}"
    );
    let install_dir = wine.program_files().join("Capture").join("Agent");
    for file in [
        "capture-agent.exe",
        "capture-tray.exe",
        "WebView2Loader.dll",
    ] {
        assert!(install_dir.join(file).is_file(), "{file} installed");
    }
    assert_eq!(installed_versions(&wine)?, ["0.1.0"]);

    // The installed agent's first start: enrols with the machine's token over the pinned CA,
    // saves its DPAPI-protected credential, deletes the token, connects.
    std::fs::copy(wine.shim(), install_dir.join("bcryptprimitives.dll"))?;
    // What the Run key starts at logon: the tray, which starts the agent.
    let tray_log = work.path().join("tray.log");
    let tray = Running(
        wine.raw("wine")
            .arg(install_dir.join("capture-tray.exe"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&tray_log)?)
            .spawn()?,
    );
    let log = wine.local_app_data()?.join("Capture").join("agent.log");
    let connected = wait_until(
        "the installed agent to connect",
        Duration::from_secs(90),
        async || {
            let agents = server.api_get("/api/v1/agents").await?;
            Ok(agents["items"]
                .as_array()
                .and_then(|items| items.iter().find(|a| a["connected"] == true).cloned()))
        },
    )
    .await
    .with_context(|| {
        format!(
            "the agent's log: {}\nthe tray's log: {}",
            std::fs::read_to_string(&log).unwrap_or_default(),
            std::fs::read_to_string(&tray_log).unwrap_or_default()
        )
    })?;
    let agent_id = connected["id"].as_str().unwrap_or_default().to_owned();
    let enrollment = wine.registry(ENROLLMENT)?.unwrap_or_default();
    assert!(
        !enrollment.contains_key("Token"),
        "the used token is deleted: {enrollment:?}"
    );
    let user_file = wine.local_app_data()?.join("Capture").join("agent.toml");
    let user = std::fs::read_to_string(&user_file)?;
    assert!(user.contains("credential = \"dpapi:"), "{user}");
    assert!(user.contains(&agent_id), "{user}");
    let tokens = server.api_get("/api/v1/enrolment-tokens").await?;
    let used = tokens["items"]
        .as_array()
        .and_then(|items| items.iter().find(|t| t["id"] == token_id.as_str()).cloned())
        .unwrap_or_default();
    assert_eq!(used["uses"], 1, "{used}");
    // The agent was started by the tray, as a process of its own: both end here.
    drop(tray);
    wine.kill_all();

    // Upgrade without properties: everything remembered; the used token is not brought back.
    assert_eq!(
        msiexec(&wine, &format!("/i {} /qn", Wine::windows_path(&v2)))?,
        0
    );
    let settings = wine.registry(SETTINGS)?.unwrap_or_default();
    assert_eq!(settings["ServerUrl"], server.base_url());
    assert_eq!(settings["ServerCaSha256"], pin);
    assert!(
        !wine
            .registry(ENROLLMENT)?
            .unwrap_or_default()
            .contains_key("Token")
    );
    assert!(
        wine.registry(RUN)?
            .unwrap_or_default()
            .contains_key("Capture Agent")
    );
    assert_eq!(installed_versions(&wine)?, ["0.2.0"], "one entry, upgraded");

    // An upgrade that gives a property changes that one, and keeps the rest; AUTOSTART=0 takes
    // the logon start away.
    let code = msiexec(
        &wine,
        &format!(
            "/i {} /qn PROXY_URL=http://proxy.example:3128 AUTOSTART=0",
            Wine::windows_path(&v3)
        ),
    )?;
    assert_eq!(code, 0);
    let settings = wine.registry(SETTINGS)?.unwrap_or_default();
    assert_eq!(settings["ProxyUrl"], "http://proxy.example:3128");
    assert_eq!(settings["ServerUrl"], server.base_url());
    assert!(
        !wine
            .registry(RUN)?
            .unwrap_or_default()
            .contains_key("Capture Agent")
    );
    assert_eq!(installed_versions(&wine)?, ["0.3.0"]);

    // A downgrade is refused.
    assert_eq!(
        msiexec(&wine, &format!("/i {} /qn", Wine::windows_path(&v2)))?,
        1603
    );
    assert_eq!(installed_versions(&wine)?, ["0.3.0"]);

    // Uninstall: nothing of ours remains (the test's shim aside, removed first).
    std::fs::remove_file(install_dir.join("bcryptprimitives.dll"))?;
    assert_eq!(
        msiexec(&wine, &format!("/x {} /qn", Wine::windows_path(&v3)))?,
        0
    );
    assert_eq!(wine.registry(SETTINGS)?, None, "settings removed");
    assert!(
        !wine
            .registry(RUN)?
            .unwrap_or_default()
            .contains_key("Capture Agent")
    );
    assert!(
        !install_dir.exists() || std::fs::read_dir(&install_dir)?.next().is_none(),
        "the program's files are gone"
    );
    assert!(installed_versions(&wine)?.is_empty());
    server.stop().await
}
