//! [`FaultProxy`]: a loopback TCP proxy that breaks connections on command, for the faults a
//! bot cannot stage itself: a TCP reset, a silent half-open connection, a server that stops
//! reading, an endpoint that trickles its answer or never gives one.
//!
//! Put it between a client and a [`TestBot`](crate::TestBot) (or any TCP server): connect the
//! client to [`FaultProxy::addr`] instead of the server. New and existing connections follow
//! the current [`Fault`].
//!
//! ```
//! use std::time::Duration;
//! use pipecat_testkit::{BotTransport, Fault, FaultProxy, TestBot};
//!
//! # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let bot = TestBot::builder().transports([BotTransport::WebSocket]).start().await?;
//! let proxy = FaultProxy::start(bot.addr()).await?;
//! let ws_url = format!("ws://{}/ws-client", proxy.addr());
//! // ... connect a client to ws_url, then:
//! proxy.set(Fault::Stall); // both directions stop; the sockets stay open
//! proxy.set(Fault::Reset); // every connection is reset (RST)
//! # drop(ws_url);
//! # bot.shutdown().await;
//! # Ok(())
//! # }
//! ```

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::TestkitError;

/// What the proxy does to its connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Fault {
    /// Forward both ways (the default).
    #[default]
    None,
    /// Forward nothing either way, and keep the sockets open: a silent half-open connection
    /// (a peer that vanished without a FIN), or an endpoint that never answers.
    Stall,
    /// Stop reading from the client; the server's data still reaches it. The client's
    /// writes back up once the socket buffers are full.
    StopReadingClient,
    /// Forward the server's data one byte per interval (an endpoint that trickles).
    Trickle(Duration),
    /// Reset every connection (TCP RST, no FIN) and each new one at once.
    Reset,
}

/// A loopback TCP proxy to one target; stopped (every connection dropped) when dropped.
#[derive(Debug)]
pub struct FaultProxy {
    addr: SocketAddr,
    fault: watch::Sender<Fault>,
    tasks: JoinSet<()>,
}

impl FaultProxy {
    /// Listens on `127.0.0.1:<free port>` and forwards to `target`.
    ///
    /// # Errors
    /// [`TestkitError::Bind`] if the listener cannot be bound.
    pub async fn start(target: SocketAddr) -> Result<FaultProxy, TestkitError> {
        let listener =
            TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.map_err(TestkitError::Bind)?;
        let addr = listener.local_addr().map_err(TestkitError::Bind)?;
        let (fault, _) = watch::channel(Fault::None);
        let mut tasks = JoinSet::new();
        let faults = fault.clone();
        tasks.spawn(async move {
            let mut connections = JoinSet::new();
            while let Ok((client, _)) = listener.accept().await {
                connections.retain_finished();
                connections.spawn(proxy_connection(client, target, faults.subscribe()));
            }
        });
        Ok(FaultProxy { addr, fault, tasks })
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Applies `fault` to every connection, existing and new.
    pub fn set(&self, fault: Fault) {
        self.fault.send_replace(fault);
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.tasks.abort_all();
    }
}

/// Drops finished tasks of a set (keeps a long-running proxy bounded).
trait RetainFinished {
    fn retain_finished(&mut self);
}

impl RetainFinished for JoinSet<()> {
    fn retain_finished(&mut self) {
        while self.try_join_next().is_some() {}
    }
}

/// One proxied connection, until either side closes or a reset.
async fn proxy_connection(
    client: TcpStream,
    target: SocketAddr,
    mut fault: watch::Receiver<Fault>,
) {
    if *fault.borrow() == Fault::Reset {
        reset(client);
        return;
    }
    let Ok(server) = TcpStream::connect(target).await else { return };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    // The pumps borrow the halves, so a reset can put the client's socket back together and
    // close it abortively (a task owning a half would close it with a FIN when aborted).
    let reset_now = {
        let up = pump(&mut client_read, &mut server_write, fault.clone(), Direction::Up);
        let down = pump(&mut server_read, &mut client_write, fault.clone(), Direction::Down);
        tokio::select! {
            () = up => false,
            () = down => false,
            reset = async { fault.wait_for(|f| *f == Fault::Reset).await.is_ok() } => reset,
        }
    };
    if reset_now && let Ok(client) = client_read.reunite(client_write) {
        reset(client);
    }
}

/// Closes with a TCP RST: a zero linger time makes the close abortive (and immediate, so
/// the drop does not block).
fn reset(stream: TcpStream) {
    let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
    drop(stream);
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Direction {
    /// Client to server.
    Up,
    /// Server to client.
    Down,
}

/// Copies one direction, obeying the fault; returns at end of stream, on an error or reset.
async fn pump<R, W>(
    from: &mut R,
    to: &mut W,
    mut fault: watch::Receiver<Fault>,
    direction: Direction,
) where
    R: AsyncReadExt + Unpin,
    W: AsyncWriteExt + Unpin,
{
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        let current = *fault.borrow_and_update();
        let blocked = match current {
            Fault::Stall | Fault::Reset => true,
            Fault::StopReadingClient => direction == Direction::Up,
            Fault::None | Fault::Trickle(_) => false,
        };
        if blocked {
            // Read nothing until the fault changes (the socket stays open).
            if fault.changed().await.is_err() {
                return;
            }
            continue;
        }
        let read = tokio::select! {
            read = from.read(&mut buffer) => read,
            changed = fault.changed() => {
                if changed.is_err() {
                    return;
                }
                continue;
            }
        };
        let n = match read {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let written = match current {
            Fault::Trickle(interval) if direction == Direction::Down => {
                trickle(to, &buffer[..n], interval).await
            }
            _ => to.write_all(&buffer[..n]).await,
        };
        if written.is_err() {
            return;
        }
    }
}

async fn trickle<W: AsyncWriteExt + Unpin>(
    to: &mut W,
    bytes: &[u8],
    interval: Duration,
) -> std::io::Result<()> {
    for byte in bytes {
        to.write_all(std::slice::from_ref(byte)).await?;
        to.flush().await?;
        tokio::time::sleep(interval).await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An echo server on loopback.
    async fn echo_server() -> SocketAddr {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let (mut r, mut w) = socket.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        addr
    }

    async fn read_some(stream: &mut TcpStream, wait: Duration) -> std::io::Result<Vec<u8>> {
        let mut buffer = [0u8; 64];
        match tokio::time::timeout(wait, stream.read(&mut buffer)).await {
            Ok(Ok(n)) => Ok(buffer[..n].to_vec()),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "nothing")),
        }
    }

    #[tokio::test]
    async fn forwards_stalls_and_resets() {
        let proxy = FaultProxy::start(echo_server().await).await.unwrap();
        let mut client = TcpStream::connect(proxy.addr()).await.unwrap();
        client.write_all(b"hello").await.unwrap();
        assert_eq!(read_some(&mut client, Duration::from_secs(5)).await.unwrap(), b"hello");

        proxy.set(Fault::Stall);
        tokio::time::sleep(Duration::from_millis(50)).await;
        client.write_all(b"lost?").await.unwrap();
        let stalled = read_some(&mut client, Duration::from_millis(300)).await;
        assert_eq!(stalled.unwrap_err().kind(), std::io::ErrorKind::TimedOut);

        // Back to forwarding: what was held goes through.
        proxy.set(Fault::None);
        assert_eq!(read_some(&mut client, Duration::from_secs(5)).await.unwrap(), b"lost?");

        proxy.set(Fault::Reset);
        let reset = read_some(&mut client, Duration::from_secs(5)).await;
        assert_eq!(reset.unwrap_err().kind(), std::io::ErrorKind::ConnectionReset);
        // New connections are reset at once.
        let mut again = TcpStream::connect(proxy.addr()).await.unwrap();
        assert!(
            read_some(&mut again, Duration::from_secs(5))
                .await
                .is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionReset
                    || e.kind() == std::io::ErrorKind::UnexpectedEof)
        );
    }

    #[tokio::test]
    async fn trickles_the_servers_data() {
        let proxy = FaultProxy::start(echo_server().await).await.unwrap();
        proxy.set(Fault::Trickle(Duration::from_millis(20)));
        let mut client = TcpStream::connect(proxy.addr()).await.unwrap();
        client.write_all(b"abcdef").await.unwrap();
        let first = read_some(&mut client, Duration::from_secs(5)).await.unwrap();
        assert_eq!(first.len(), 1, "one byte at a time: {first:?}");
    }
}
