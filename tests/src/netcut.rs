//! A TCP relay the test can cut, as an operator pulls a cable: while cut, bytes on open
//! connections stop flowing both ways (nothing is closed or reset: the peers find out by their
//! own timeouts) and new connections are accepted but lead nowhere; restoring closes what was
//! held and relays new connections again.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A running relay; dropping it stops it.
pub struct Relay {
    /// Where it listens (loopback).
    pub addr: SocketAddr,
    /// The generation of the network: odd while cut; each cut or restore moves it on.
    state: Arc<watch::Sender<u64>>,
    task: JoinHandle<()>,
}

impl Relay {
    /// Relays `127.0.0.1:<port>` to `target`.
    pub async fn start(target: SocketAddr) -> anyhow::Result<Relay> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(watch::Sender::new(0u64));
        let accepting = state.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let generation = *accepting.borrow();
                let changes = accepting.subscribe();
                tokio::spawn(connection(client, target, generation, changes));
            }
        });
        Ok(Relay { addr, state, task })
    }

    /// Cuts the network.
    pub fn cut(&self) {
        self.state.send_modify(|g| {
            if g.is_multiple_of(2) {
                *g += 1;
            }
        });
    }

    /// Restores it.
    pub fn restore(&self) {
        self.state.send_modify(|g| {
            if !g.is_multiple_of(2) {
                *g += 1;
            }
        });
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Relays one connection while its generation lasts; then holds both ends, silent, until the
/// network is restored, and closes them.
async fn connection(
    client: TcpStream,
    target: SocketAddr,
    generation: u64,
    mut changes: watch::Receiver<u64>,
) {
    let up = generation.is_multiple_of(2);
    let server = if up {
        TcpStream::connect(target).await.ok()
    } else {
        None
    };
    if let Some(server) = server {
        let (mut client_read, mut client_write) = client.into_split();
        let (mut server_read, mut server_write) = server.into_split();
        let upstream = async {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = client_read.read(&mut buf).await?;
                if n == 0 {
                    return Ok::<_, std::io::Error>(());
                }
                server_write.write_all(&buf[..n]).await?;
            }
        };
        let downstream = async {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = server_read.read(&mut buf).await?;
                if n == 0 {
                    return Ok::<_, std::io::Error>(());
                }
                client_write.write_all(&buf[..n]).await?;
            }
        };
        tokio::select! {
            _ = upstream => return,
            _ = downstream => return,
            _ = changes.wait_for(|g| *g != generation) => {}
        }
        // Cut: the halves stay open and silent until the network is back.
        let _ = changes
            .wait_for(|g| g.is_multiple_of(2) && *g != generation)
            .await;
        drop((client_read, client_write, server_read, server_write));
    } else {
        let _ = changes.wait_for(|g| g.is_multiple_of(2)).await;
        drop(client);
    }
}
