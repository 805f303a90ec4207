//! A TCP proxy on loopback between the browser and the daemon, which a test can cut (every
//! open connection dropped, new ones refused) and throttle (bytes per second from the
//! browser): how the tests drop an event stream or interrupt an upload for real.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// The proxy's controls.
#[derive(Clone)]
pub struct Proxy {
    /// `http://127.0.0.1:<port>`: open the app through this.
    pub base: String,
    down: Arc<AtomicBool>,
    /// Upload rate limit in bytes per second (0 = none).
    rate: Arc<AtomicU64>,
    /// Bumped by `cut`: live connections end when it changes.
    epoch: watch::Sender<u64>,
    /// Bytes the browser sent through.
    pub sent: Arc<AtomicU64>,
}

impl Proxy {
    /// Starts forwarding a free loopback port to `target` (`127.0.0.1:port`).
    pub async fn start(target: &str) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (epoch, _) = watch::channel(0u64);
        let me = Self {
            base: format!("http://127.0.0.1:{port}"),
            down: Arc::default(),
            rate: Arc::default(),
            epoch,
            sent: Arc::default(),
        };
        let target = target.to_string();
        let p = me.clone();
        tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                if p.down.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let p = p.clone();
                let target = target.clone();
                tokio::spawn(async move {
                    if let Ok(outbound) = TcpStream::connect(&target).await {
                        p.pipe(inbound, outbound).await;
                    }
                });
            }
        });
        me
    }

    async fn pipe(&self, inbound: TcpStream, outbound: TcpStream) {
        let mut cut = self.epoch.subscribe();
        let (mut ri, mut wi) = inbound.into_split();
        let (mut ro, mut wo) = outbound.into_split();
        let rate = self.rate.clone();
        let sent = self.sent.clone();
        let up = async move {
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                let n = match ri.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                let r = rate.load(Ordering::SeqCst);
                if r > 0 {
                    tokio::time::sleep(Duration::from_secs_f64(n as f64 / r as f64)).await;
                }
                sent.fetch_add(n as u64, Ordering::SeqCst);
                if wo.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
            let _ = wo.shutdown().await;
        };
        let down = async move {
            let _ = tokio::io::copy(&mut ro, &mut wi).await;
            let _ = wi.shutdown().await;
        };
        tokio::select! {
            _ = async { tokio::join!(up, down) } => {}
            _ = cut.changed() => {}
        }
    }

    /// Drops every open connection and refuses new ones until [`Proxy::restore`].
    pub fn cut(&self) {
        self.down.store(true, Ordering::SeqCst);
        self.epoch.send_modify(|e| *e += 1);
    }

    /// Accepts connections again.
    pub fn restore(&self) {
        self.down.store(false, Ordering::SeqCst);
    }

    /// Limits what the browser sends to `bytes_per_sec` (0 lifts the limit).
    pub fn throttle(&self, bytes_per_sec: u64) {
        self.rate.store(bytes_per_sec, Ordering::SeqCst);
    }
}
