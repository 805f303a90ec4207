//! Downloads one URL with `musicd_media::fetch::fetch` into a staging directory, allowing
//! loopback, for the fetch throughput benchmark.
//!
//! ```sh
//! cargo run --release -p musicd-media --example fetch -- URL STAGING_DIR
//! ```

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use musicd_media::fetch::{FetchOptions, fetch};
use tokio_util::sync::CancellationToken;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, staging] = args.as_slice() else {
        eprintln!("usage: fetch URL STAGING_DIR");
        return ExitCode::from(2);
    };
    let opts = FetchOptions {
        allow_ips: vec![
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(Ipv6Addr::LOCALHOST),
        ],
        max_bytes: 8 << 30,
        ..Default::default()
    };
    let started = Instant::now();
    let cancel = CancellationToken::new();
    match fetch(url, &PathBuf::from(staging), &opts, &|_| {}, &cancel).await {
        Ok(f) => {
            let secs = started.elapsed().as_secs_f64();
            println!(
                "{} bytes in {secs:.3} s ({:.0} MB/s)",
                f.bytes,
                f.bytes as f64 / secs / 1e6
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{url}: {e}");
            ExitCode::FAILURE
        }
    }
}
