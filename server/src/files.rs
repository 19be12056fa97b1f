//! Small files the server keeps in its data directory: written atomically, secrets readable by
//! the service's user only.

use std::fs;
use std::io::Write as _;
use std::path::Path;

/// Writes `bytes` to a temporary file beside `path`, syncs it and renames it into place.
pub fn write_atomically(path: &Path, bytes: &[u8], secret: bool) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    restrict_to_owner(&mut options, secret);
    let mut file = options.open(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    fs::rename(&tmp, path)
}

#[cfg(unix)]
fn restrict_to_owner(options: &mut fs::OpenOptions, secret: bool) {
    use std::os::unix::fs::OpenOptionsExt;
    options.mode(if secret { 0o600 } else { 0o644 });
}

/// On Windows the data directory's ACL (set by the installer) protects secrets.
#[cfg(not(unix))]
fn restrict_to_owner(_options: &mut fs::OpenOptions, _secret: bool) {}

/// Reads a secret from `path`, or generates a random one (256 bits, hex) and keeps it there.
/// Returns the secret and whether it was generated now.
pub fn load_or_generate_secret(path: &Path) -> std::io::Result<(String, bool)> {
    match fs::read_to_string(path) {
        Ok(text) if !text.trim().is_empty() => Ok((text.trim().to_owned(), false)),
        Ok(_) => Err(std::io::Error::other(format!(
            "{} is empty",
            path.display()
        ))),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let mut bytes = [0u8; 32];
            getrandom::fill(&mut bytes).map_err(|e| std::io::Error::other(e.to_string()))?;
            let secret = hex::encode(bytes);
            if let Some(parent) = path.parent() {
                fs::create_dir_all(parent)?;
            }
            write_atomically(path, format!("{secret}\n").as_bytes(), true)?;
            Ok((secret, true))
        }
        Err(error) => Err(error),
    }
}

/// Reads a secret file given in the configuration (trimmed; must not be empty).
pub fn read_secret(path: &Path) -> std::io::Result<String> {
    let text = fs::read_to_string(path)?;
    let secret = text.trim();
    if secret.is_empty() {
        return Err(std::io::Error::other(format!(
            "{} is empty",
            path.display()
        )));
    }
    Ok(secret.to_owned())
}
