//! Capture's benchmark runner: `cargo run --release -p capture-tests --bin bench -- NAME [--seconds N]`.
//!
//! Each benchmark prints what it does as it goes and, as its last line, `RESULT {json}` with its
//! figures (units in the key names). BENCHMARKS.md lists every NAME and the latest figures.

mod agent;
mod backfill;
mod player;
mod recorder;
mod scn;
mod search;
mod spool;
mod stitch;
mod tray;
mod webhooks;

use anyhow::{Context as _, bail};

const USAGE: &str = "usage: bench NAME [--seconds N] [--mb N] [--rate N] [--recordings N] [--concurrency N] [--agents N] [--webhooks N]\n\
names:\n  \
scn-append    SCN append throughput with each fsync policy (screen-stream record mix)\n  \
scn-recover   recovery scan of a large SCN file with a torn tail (default 1024 MB)\n  \
webhooks      signed Webex webhooks over loopback TLS at --rate per second (default 1000) for --seconds (default 60)\n  \
agent-office  the real agent on Xvfb 1920x1080 with a scripted CRM page in chromium, --seconds (default 300)\n  \
agent-static  the real agent on a still Xvfb 1920x1080 desktop, --seconds (default 300)\n  \
agent-office-wine, agent-static-wine  the same with the Windows agent (capture-agent.exe) under Wine (GDI)\n  \
tray-idle     the tray and its agent idle beside a headless agent, Xvfb + trayer, --seconds (default 600)\n  \
backfill      --recordings (default 10000) from the Webex emulator under a 30 % storm with --concurrency (default 256); webhook and poll latency\n  \
stitch        a 1 h two-monitor interaction from its last input to an archived, verified file; A/V offset\n  \
search        1,000 replay searches over --recordings (default 100000) interactions through the HTTPS API\n  \
player        the replay page in Chromium on a 1 h two-monitor interaction: open → playing, seek → playing\n  \
recorder-load --agents (default 2500) fake agents over TLS streaming real 1080p H.264 at 2 fps to a test-server process for --seconds (default 60); --webhooks N: the webhooks benchmark's traffic at N/s beside it\n  \
spool-replay  the real agent (synthetic 1080p office desktop) cut off mid-call for --seconds (default 300), then reconnected: spool drain time and rate";

/// Flags shared by the benchmarks.
pub struct Options {
    /// `--seconds`: how long (0: the benchmark's default).
    pub seconds: u64,
    /// `--mb`: file size for `scn-recover`.
    pub mb: u64,
    /// `--rate`: requests per second for `webhooks`.
    pub rate: u64,
    /// `--recordings`: how many for `backfill` (0: its default).
    pub recordings: usize,
    /// `--concurrency`: fetches at a time for `backfill`.
    pub concurrency: u32,
    /// `--agents`: connected agents for `recorder-load` (0: its default).
    pub agents: usize,
    /// `--webhooks`: webhook deliveries per second beside `recorder-load`'s stream (default 0).
    pub webhooks: u64,
}

fn main() -> anyhow::Result<()> {
    // The in-process server's log, when asked for (`RUST_LOG=capture_server=debug,sqlx=debug`).
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    let mut args = std::env::args().skip(1);
    let name = args.next().context(USAGE)?;
    let mut options = Options {
        seconds: 0,
        mb: 1024,
        rate: 1000,
        recordings: 0,
        concurrency: 256,
        agents: 0,
        webhooks: 0,
    };
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--seconds" => options.seconds = value.parse().context("--seconds")?,
            "--mb" => options.mb = value.parse().context("--mb")?,
            "--rate" => options.rate = value.parse().context("--rate")?,
            "--recordings" => options.recordings = value.parse().context("--recordings")?,
            "--concurrency" => options.concurrency = value.parse().context("--concurrency")?,
            "--agents" => options.agents = value.parse().context("--agents")?,
            "--webhooks" => options.webhooks = value.parse().context("--webhooks")?,
            _ => bail!("unknown flag {flag}\n{USAGE}"),
        }
    }
    let result = match name.as_str() {
        "scn-append" => scn::append(&options)?,
        "scn-recover" => scn::recover(&options)?,
        "webhooks" => webhooks::run(&options)?,
        "agent-office" => agent::run(&options, agent::Workload::Office, agent::Platform::Native)?,
        "agent-static" => agent::run(&options, agent::Workload::Static, agent::Platform::Native)?,
        "agent-office-wine" => {
            agent::run(&options, agent::Workload::Office, agent::Platform::Wine)?
        }
        "agent-static-wine" => {
            agent::run(&options, agent::Workload::Static, agent::Platform::Wine)?
        }
        "tray-idle" => tray::run(&options)?,
        "backfill" => backfill::run(&options)?,
        "stitch" => stitch::run(&options)?,
        "search" => search::run(&options)?,
        "player" => player::run(&options)?,
        "recorder-load" => recorder::run(&options)?,
        "spool-replay" => spool::run(&options)?,
        _ => bail!("unknown benchmark {name:?}\n{USAGE}"),
    };
    println!("RESULT {result}");
    Ok(())
}

/// The median (NaN for no values).
pub fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// `value` rounded to `digits` decimals.
pub fn round(value: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (value * scale).round() / scale
}
