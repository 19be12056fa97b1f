//! Windows: `%LOCALAPPDATA%` and `%ProgramData%`, the credential under DPAPI, console events.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use windows::Win32::Foundation::{HLOCAL, LocalFree};
use windows::Win32::Security::Cryptography::{
    CRYPT_INTEGER_BLOB, CRYPTPROTECT_UI_FORBIDDEN, CryptProtectData, CryptUnprotectData,
};
use windows::core::PCWSTR;

use super::{DPAPI_PREFIX, SecretError};

fn env_dir(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// `%LOCALAPPDATA%\Capture\agent.toml`: the user's enrolment (not roamed to other machines).
pub fn user_config_path() -> PathBuf {
    env_dir("LOCALAPPDATA")
        .or_else(|| env_dir("USERPROFILE").map(|p| p.join("AppData").join("Local")))
        .unwrap_or_else(|| PathBuf::from("."))
        .join("Capture")
        .join("agent.toml")
}

/// `%ProgramData%\Capture\agent.toml`, written by the installer for every user of the machine.
pub fn machine_config_path() -> PathBuf {
    env_dir("ProgramData")
        .unwrap_or_else(|| PathBuf::from(r"C:\ProgramData"))
        .join("Capture")
        .join("agent.toml")
}

fn blob(bytes: &[u8]) -> CRYPT_INTEGER_BLOB {
    CRYPT_INTEGER_BLOB {
        cbData: bytes.len() as u32,
        pbData: bytes.as_ptr().cast_mut(),
    }
}

/// Takes the bytes of a blob DPAPI allocated, and frees it.
fn take(out: CRYPT_INTEGER_BLOB) -> Vec<u8> {
    // SAFETY: DPAPI returned `cbData` bytes at `pbData`, allocated with LocalAlloc; they are
    // copied, then freed once.
    unsafe {
        let bytes = std::slice::from_raw_parts(out.pbData, out.cbData as usize).to_vec();
        let _ = LocalFree(Some(HLOCAL(out.pbData.cast())));
        bytes
    }
}

/// The credential protected with DPAPI for the current user (only this user on this machine
/// can read it back), as `dpapi:<base64>`.
pub fn protect_secret(secret: &str) -> Result<String, SecretError> {
    let input = blob(secret.as_bytes());
    let mut out = CRYPT_INTEGER_BLOB::default();
    // SAFETY: `input` points at `secret`, alive for the call; `out` is written by the call.
    unsafe {
        CryptProtectData(
            &input,
            PCWSTR::null(),
            None,
            None,
            None,
            CRYPTPROTECT_UI_FORBIDDEN,
            &mut out,
        )
    }
    .map_err(|e| SecretError::Protect(e.to_string()))?;
    let protected = take(out);
    Ok(format!(
        "{DPAPI_PREFIX}{}",
        base64::engine::general_purpose::STANDARD.encode(protected)
    ))
}

/// The credential: unprotected if it is `dpapi:…`, as it is otherwise.
pub fn reveal_secret(stored: &str) -> Result<String, SecretError> {
    let Some(encoded) = stored.strip_prefix(DPAPI_PREFIX) else {
        return Ok(stored.to_owned());
    };
    let protected = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|e| SecretError::Unprotect(e.to_string()))?;
    let input = blob(&protected);
    let mut out = CRYPT_INTEGER_BLOB::default();
    // SAFETY: `input` points at `protected`, alive for the call; `out` is written by the call.
    unsafe {
        CryptUnprotectData(
            &input,
            None,
            None,
            None,
            None,
            CRYPTPROTECT_UI_FORBIDDEN,
            &mut out,
        )
    }
    .map_err(|e| SecretError::Unprotect(e.to_string()))?;
    String::from_utf8(take(out)).map_err(|e| SecretError::Unprotect(e.to_string()))
}

/// Writes the file in the user's profile (whose ACL admits the user, SYSTEM and
/// administrators); the credential in it is DPAPI-protected.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut file = std::fs::File::create(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Resolves on Ctrl-C, Ctrl-Break, the console window closing, logoff or shutdown: the agent
/// then stops its pipelines (frames flushed, `Stopped` sent) within the few seconds Windows
/// gives a console process.
pub async fn shutdown_signal() {
    use tokio::signal::windows::{ctrl_break, ctrl_c, ctrl_close, ctrl_logoff, ctrl_shutdown};
    async fn wait<S>(signal: std::io::Result<S>, recv: impl AsyncFnOnce(S)) {
        match signal {
            Ok(s) => recv(s).await,
            Err(_) => std::future::pending().await,
        }
    }
    tokio::select! {
        () = wait(ctrl_c(), async |mut s| { s.recv().await; }) => {}
        () = wait(ctrl_break(), async |mut s| { s.recv().await; }) => {}
        () = wait(ctrl_close(), async |mut s| { s.recv().await; }) => {}
        () = wait(ctrl_logoff(), async |mut s| { s.recv().await; }) => {}
        () = wait(ctrl_shutdown(), async |mut s| { s.recv().await; }) => {}
    }
}

/// Where the MSI writes its public properties (`SERVER_URL` …), 64-bit view.
pub const MACHINE_REGISTRY_KEY: &str = r"Software\Capture\Agent";

/// Where the MSI writes `ENROLLMENT_TOKEN` (value `Token`): a key of its own, whose value the
/// machine's users may delete (the MSI's `MsiLockPermissionsEx`).
pub const ENROLLMENT_REGISTRY_KEY: &str = r"Software\Capture\Agent\Enrollment";

fn wide(text: &str) -> Vec<u16> {
    text.encode_utf16().chain(std::iter::once(0)).collect()
}

/// One `REG_SZ` value of `HKLM\<key>`, if present.
fn machine_registry_value(key: &str, name: &str) -> Option<String> {
    use windows::Win32::System::Registry::{
        HKEY_LOCAL_MACHINE, RRF_RT_REG_SZ, RRF_SUBKEY_WOW6464KEY, RegGetValueW,
    };
    let key = wide(key);
    let value = wide(name);
    let mut size = 0u32;
    // SAFETY: the strings are NUL-terminated and alive for the calls; the first call only reads
    // the size, the second writes at most `size` bytes into `buffer`.
    unsafe {
        let flags = RRF_RT_REG_SZ | RRF_SUBKEY_WOW6464KEY;
        if RegGetValueW(
            HKEY_LOCAL_MACHINE,
            PCWSTR(key.as_ptr()),
            PCWSTR(value.as_ptr()),
            flags,
            None,
            None,
            Some(&mut size),
        )
        .is_err()
        {
            return None;
        }
        let mut buffer = vec![0u16; (size as usize).div_ceil(2).max(1)];
        if RegGetValueW(
            HKEY_LOCAL_MACHINE,
            PCWSTR(key.as_ptr()),
            PCWSTR(value.as_ptr()),
            flags,
            None,
            Some(buffer.as_mut_ptr().cast()),
            Some(&mut size),
        )
        .is_err()
        {
            return None;
        }
        let length = buffer.iter().position(|&c| c == 0).unwrap_or(buffer.len());
        Some(String::from_utf16_lossy(&buffer[..length]))
    }
}

/// The MSI's values in `HKLM\Software\Capture\Agent` (over the machine file).
pub fn managed_machine_settings() -> Vec<crate::config::MachineConfig> {
    vec![crate::config::MachineConfig {
        server: machine_registry_value(MACHINE_REGISTRY_KEY, "ServerUrl"),
        server_ca_sha256: machine_registry_value(MACHINE_REGISTRY_KEY, "ServerCaSha256"),
        proxy: machine_registry_value(MACHINE_REGISTRY_KEY, "ProxyUrl"),
        enrolment_token: machine_registry_value(ENROLLMENT_REGISTRY_KEY, "Token"),
        ..crate::config::MachineConfig::default()
    }]
}

/// Deletes the MSI's enrolment token (the MSI lets the machine's users delete that value).
pub fn remove_managed_enrolment_token() -> Result<(), String> {
    use windows::Win32::System::Registry::{HKEY_LOCAL_MACHINE, RegDeleteKeyValueW};
    if machine_registry_value(ENROLLMENT_REGISTRY_KEY, "Token").is_none() {
        return Ok(());
    }
    let key = wide(ENROLLMENT_REGISTRY_KEY);
    let value = wide("Token");
    // SAFETY: NUL-terminated strings, alive for the call.
    let result = unsafe {
        RegDeleteKeyValueW(
            HKEY_LOCAL_MACHINE,
            PCWSTR(key.as_ptr()),
            PCWSTR(value.as_ptr()),
        )
    };
    result
        .ok()
        .map_err(|e| format!(r"HKLM\{ENROLLMENT_REGISTRY_KEY}\Token: {}", e.message()))
}
