//! Test harness: an emulator with a client trusting its CA, fixtures, MP3 analysis with
//! ffmpeg/ffprobe, and a webhook receiver.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow, bail};
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde_json::Value;
use webex_emulator::{Emulator, EmulatorConfig};

/// A running emulator and a client for it.
pub struct Harness {
    pub emulator: Emulator,
    pub client: reqwest::Client,
    pub token: String,
    _dir: tempfile::TempDir,
}

/// A client trusting `ca` (ring provider passed explicitly).
pub fn client(ca: &Path) -> Result<reqwest::Client> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca)? {
        roots.add(cert?)?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .timeout(Duration::from_secs(20))
        .build()?)
}

pub async fn start() -> Result<Harness> {
    start_with(|_| {}).await
}

pub async fn start_with(tweak: impl FnOnce(&mut EmulatorConfig)) -> Result<Harness> {
    let dir = tempfile::tempdir()?;
    let mut config = EmulatorConfig::in_dir(dir.path());
    tweak(&mut config);
    let emulator = Emulator::start(config).await?;
    let client = client(emulator.ca_file())?;
    let token = emulator.credentials().access_token;
    Ok(Harness {
        emulator,
        client,
        token,
        _dir: dir,
    })
}

impl Harness {
    /// `base_url` + `path` (or `path` itself when absolute).
    pub fn url(&self, path: &str) -> String {
        if path.starts_with("https://") {
            path.to_owned()
        } else {
            format!("{}{path}", self.emulator.base_url())
        }
    }

    /// GET with the bearer token: status, headers, body parsed as JSON (Null when not JSON).
    pub async fn get(&self, path: &str) -> Result<(StatusCode, HeaderMap, Value)> {
        self.get_with(path, &self.token).await
    }

    pub async fn get_with(
        &self,
        path: &str,
        token: &str,
    ) -> Result<(StatusCode, HeaderMap, Value)> {
        let response = self
            .client
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.bytes().await?;
        Ok((
            status,
            headers,
            serde_json::from_slice(&body).unwrap_or(Value::Null),
        ))
    }

    /// Downloads a recording through its details' link: the bytes.
    pub async fn download(&self, id: &str) -> Result<Vec<u8>> {
        let (status, _, details) = self.get(&format!("/convergedRecordings/{id}")).await?;
        if status != StatusCode::OK {
            bail!("details of {id}: {status}");
        }
        let link = details["temporaryDirectDownloadLinks"]["audioDownloadLink"]
            .as_str()
            .ok_or_else(|| anyhow!("no audio link"))?;
        let response = self.client.get(link).send().await?;
        if response.status() != StatusCode::OK {
            bail!("download of {id}: {}", response.status());
        }
        Ok(response.bytes().await?.to_vec())
    }
}

/// A published example payload.
pub fn fixture(name: &str) -> Result<Value> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/webex")
        .join(name);
    let text = std::fs::read_to_string(&path).with_context(|| path.display().to_string())?;
    Ok(serde_json::from_str(&text)?)
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Same keys (recursively for objects, element shape for arrays) and same JSON types.
pub fn assert_same_shape(ours: &Value, theirs: &Value, at: &str) {
    assert_eq!(
        kind(ours),
        kind(theirs),
        "type at {at}: ours {ours}, example {theirs}"
    );
    match (ours, theirs) {
        (Value::Object(a), Value::Object(b)) => {
            let mut keys_a: Vec<&String> = a.keys().collect();
            let mut keys_b: Vec<&String> = b.keys().collect();
            keys_a.sort();
            keys_b.sort();
            assert_eq!(keys_a, keys_b, "keys at {at}");
            for (key, value) in a {
                assert_same_shape(value, &b[key], &format!("{at}.{key}"));
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            if let (Some(first), Some(example)) = (a.first(), b.first()) {
                assert_same_shape(first, example, &format!("{at}[0]"));
            } else {
                assert!(
                    b.is_empty() || !a.is_empty(),
                    "empty array at {at}, the example has elements"
                );
            }
        }
        _ => {}
    }
}

/// Writes `bytes` to a temporary file and returns (codec, duration in seconds) from ffprobe.
pub fn ffprobe(bytes: &[u8]) -> Result<(String, f64)> {
    let mut file = tempfile::Builder::new().suffix(".mp3").tempfile()?;
    file.write_all(bytes)?;
    let output = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=codec_name:format=duration",
            "-of",
            "json",
        ])
        .arg(file.path())
        .output()?;
    if !output.status.success() {
        bail!(
            "ffprobe refused the file: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let report: Value = serde_json::from_slice(&output.stdout)?;
    let codec = report["streams"][0]["codec_name"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let duration = report["format"]["duration"]
        .as_str()
        .and_then(|d| d.parse().ok())
        .ok_or_else(|| anyhow!("no duration in {report}"))?;
    Ok((codec, duration))
}

/// Decodes to 16 kHz mono 16-bit PCM with ffmpeg.
pub fn decode(mp3: &[u8]) -> Result<Vec<i16>> {
    let mut child = Command::new("ffmpeg")
        .args([
            "-v", "error", "-f", "mp3", "-i", "pipe:0", "-f", "s16le", "-ac", "1", "-ar", "16000",
            "pipe:1",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    let mut stdin = child.stdin.take().ok_or_else(|| anyhow!("no stdin"))?;
    let input = mp3.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let output = child.wait_with_output()?;
    writer.join().map_err(|_| anyhow!("writer panicked"))??;
    if !output.status.success() {
        bail!("ffmpeg failed");
    }
    Ok(output
        .stdout
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect())
}

/// Onsets in seconds of 1 kHz bursts: Goertzel power over 4 ms windows; the first window of each
/// run above a quarter of the strongest.
pub fn beep_onsets(pcm: &[i16]) -> Vec<f64> {
    const WINDOW: usize = 64;
    let coefficient = 2.0 * (std::f64::consts::TAU * 1000.0 / 16000.0).cos();
    let powers: Vec<f64> = pcm
        .chunks_exact(WINDOW)
        .map(|chunk| {
            let (mut s1, mut s2) = (0.0, 0.0);
            for sample in chunk {
                let s0 = f64::from(*sample) + coefficient * s1 - s2;
                s2 = s1;
                s1 = s0;
            }
            s1 * s1 + s2 * s2 - coefficient * s1 * s2
        })
        .collect();
    let peak = powers.iter().copied().fold(0.0, f64::max);
    let mut onsets = Vec::new();
    let mut inside = false;
    for (i, power) in powers.iter().enumerate() {
        let loud = *power > peak / 4.0;
        if loud && !inside {
            onsets.push((i * WINDOW) as f64 / 16000.0);
        }
        inside = loud;
    }
    onsets
}

/// What a webhook receiver got: headers and raw body of each POST.
pub type Received = Arc<Mutex<Vec<(HeaderMap, Bytes)>>>;

/// A plain-HTTP webhook receiver on loopback that refuses (500) its first `fail_first` POSTs.
pub struct Receiver {
    pub url: String,
    pub received: Received,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Receiver {
    pub async fn start(fail_first: usize) -> Result<Receiver> {
        let received: Received = Arc::default();
        let failures = Arc::new(Mutex::new(fail_first));
        let store = Arc::clone(&received);
        let router = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: Bytes| {
                let store = Arc::clone(&store);
                let failures = Arc::clone(&failures);
                async move {
                    let mut failures = failures.lock().unwrap_or_else(|p| p.into_inner());
                    if *failures > 0 {
                        *failures -= 1;
                        return StatusCode::INTERNAL_SERVER_ERROR;
                    }
                    store
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push((headers, body));
                    StatusCode::NO_CONTENT
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://127.0.0.1:{}/hook", listener.local_addr()?.port());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Ok(Receiver {
            url,
            received,
            task,
        })
    }

    /// The bodies received so far, parsed.
    pub fn bodies(&self) -> Vec<Value> {
        self.received
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter_map(|(_, body)| serde_json::from_slice(body).ok())
            .collect()
    }

    /// Waits until `predicate` holds for the bodies received (or `timeout`).
    pub async fn wait_for(
        &self,
        timeout: Duration,
        predicate: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let bodies = self.bodies();
            if predicate(&bodies) || tokio::time::Instant::now() >= deadline {
                return bodies;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Registers a webhook for `resource` (all events, org-wide) pointing at `url` with `secret`.
pub async fn register(h: &Harness, resource: &str, url: &str, secret: &str) -> Result<Value> {
    let response = h
        .client
        .post(h.url("/webhooks"))
        .bearer_auth(&h.token)
        .json(&serde_json::json!({
            "name": format!("test {resource}"),
            "targetUrl": url,
            "resource": resource,
            "event": "all",
            "secret": secret,
            "ownedBy": "org",
        }))
        .send()
        .await?;
    if response.status() != StatusCode::OK {
        bail!("webhook registration: {}", response.status());
    }
    Ok(response.json().await?)
}
