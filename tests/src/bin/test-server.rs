//! The Capture server as a child process for tests that kill it: binds `127.0.0.1:PORT` (0 when
//! no second argument is given: a free port, for a first start), prints
//! `READY <port>` on stdout, and serves with the configuration of `capture-server run` (file from
//! `CAPTURE_CONFIG`, `CAPTURE_*` variables) and the data directory given as its argument.

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::Context as _;
use capture_server::config::{Config, Overrides, Settings};

fn main() -> anyhow::Result<()> {
    let data_dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .context("usage: test-server DATA_DIR [PORT]")?,
    );
    let port: u16 = match std::env::args().nth(2) {
        Some(port) => port.parse().context("PORT")?,
        None => 0,
    };
    let config_file = std::env::var_os("CAPTURE_CONFIG").map(PathBuf::from);
    let overrides = Overrides {
        listen: None,
        data_dir: Some(data_dir),
    };
    let settings = Settings::from_config(Config::load(config_file.as_deref(), &overrides)?)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let listener = std::net::TcpListener::bind(("127.0.0.1", port))?;
        let port = listener.local_addr()?.port();
        let mut stdout = std::io::stdout();
        writeln!(stdout, "READY {port}")?;
        stdout.flush()?;
        capture_server::run(settings, listener, std::future::pending()).await?;
        Ok(())
    })
}
