//! `switchyard-mock [--port 9000] [--latency-ms 0] [--api-key KEY] [--no-record]`
//! `switchyard-mock --hostile [--port 9000] [--api-key KEY] [--hostile-mb 64]` (`switchyard_mock::hostile`)

use std::io::Write;
use std::time::Duration;

use clap::Parser;

#[global_allocator]
static GLOBAL: switchyard_alloc::Mimalloc = switchyard_alloc::Mimalloc;

/// Deterministic mock LLM upstream (OpenAI / mittwald AI Hosting, Anthropic and Gemini APIs) on 127.0.0.1.
#[derive(Parser, Debug)]
#[command(name = "switchyard-mock", version, about)]
struct Args {
    /// Port to listen on (0 = ephemeral; the chosen port is printed).
    #[arg(long, env = "SWITCHYARD_MOCK_PORT", default_value_t = 9000)]
    port: u16,
    /// Delay in milliseconds added before every response.
    #[arg(long, env = "SWITCHYARD_MOCK_LATENCY_MS", default_value_t = 0)]
    latency_ms: u64,
    /// Require the key on /v1 and /v1beta routes (`Authorization: Bearer <KEY>`; Anthropic routes also
    /// take `x-api-key`, Gemini routes `x-goog-api-key` or `?key=`).
    #[arg(long, env = "SWITCHYARD_MOCK_API_KEY")]
    api_key: Option<String>,
    /// Do not record request details (for benchmarks).
    #[arg(long, env = "SWITCHYARD_MOCK_NO_RECORD")]
    no_record: bool,
    /// Misbehave on purpose instead (huge answers, endless events, echoed keys, 1xx/3xx, resets), chosen
    /// by the request's model; see `switchyard_mock::hostile`.
    #[arg(long)]
    hostile: bool,
    /// With --hostile: MiB sent by the huge answers and the never-ending event.
    #[arg(long, default_value_t = 64)]
    hostile_mb: usize,
    /// With --hostile: seconds the endless and never-finishing streams stay open.
    #[arg(long, default_value_t = 5)]
    hostile_hold_seconds: u64,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    if args.hostile {
        let sizes = switchyard_mock::hostile::HostileSizes {
            json: args.hostile_mb << 20,
            event: args.hostile_mb << 20,
            hold: Duration::from_secs(args.hostile_hold_seconds),
        };
        let key = args.api_key.as_deref().unwrap_or("sk-hostile-mock");
        let up = switchyard_mock::hostile::start_hostile(args.port, key, sizes).await?;
        let signal = wait_for_signal();
        println!("switchyard-mock listening on {}", up.base_url());
        signal.await;
        return Ok(());
    }
    let mock = switchyard_mock::start(switchyard_mock::MockOptions {
        port: args.port,
        latency: Duration::from_millis(args.latency_ms),
        api_key: args.api_key,
        record: !args.no_record,
        models: None,
    })
    .await?;
    // Listen for SIGTERM before announcing the address: whoever reads the line may stop us at once.
    let signal = wait_for_signal();

    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "switchyard-mock listening on http://{}", mock.addr())?;
        out.flush()?;
    }

    signal.await;
    mock.shutdown().await;
    Ok(())
}

/// Registers the handlers now (synchronously) and returns the future that waits for a signal.
#[cfg(unix)]
fn wait_for_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{signal, SignalKind};
    let term = signal(SignalKind::terminate());
    async move {
        match term {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
}

#[cfg(not(unix))]
fn wait_for_signal() -> impl std::future::Future<Output = ()> {
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}
