//! The benchmark "floor": the least a reverse proxy can do on this stack.
//!
//! It accepts HTTP/1.1 on 127.0.0.1, forwards method, path, headers and the body (streamed) to one
//! fixed plain-HTTP upstream over a pooled hyper-util legacy client, and streams the response back.
//! There is no routing, no parsing of bodies and no logging on the hot path, so whatever Switchyard
//! costs above this binary is the cost of its own logic.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use clap::Parser;
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderName};
use hyper::http::uri::{Authority, PathAndQuery, Scheme};
use hyper::{Request, Response, StatusCode, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};

#[global_allocator]
static GLOBAL: switchyard_alloc::Mimalloc = switchyard_alloc::Mimalloc;

#[derive(Parser, Debug)]
#[command(
    name = "floor-proxy",
    about = "Minimal streaming reverse proxy used as the benchmark floor"
)]
struct Args {
    /// Port to listen on (always bound on 127.0.0.1).
    #[arg(long)]
    port: u16,
    /// Upstream as HOST:PORT, plain HTTP (e.g. 127.0.0.1:8081).
    #[arg(long)]
    upstream: String,
}

type ProxyBody = Either<Incoming, Full<Bytes>>;
type UpstreamClient = Client<HttpConnector, Incoming>;

/// Headers that describe one hop and must not be forwarded (RFC 9110 section 7.6.1).
const HOP_BY_HOP: [HeaderName; 7] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::UPGRADE,
];

fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // Names listed in `Connection` are hop-by-hop too.
    let listed: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in listed.iter().chain(HOP_BY_HOP.iter()) {
        headers.remove(name);
    }
    // The framing of the next hop is decided by hyper from the body's size hint.
    headers.remove(header::TRANSFER_ENCODING);
}

fn error_response(status: StatusCode, msg: &'static str) -> Response<ProxyBody> {
    let mut resp = Response::new(Either::Right(Full::new(Bytes::from_static(msg.as_bytes()))));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain"),
    );
    resp
}

async fn forward(
    client: UpstreamClient,
    upstream: Authority,
    req: Request<Incoming>,
) -> Result<Response<ProxyBody>, Infallible> {
    let (mut parts, body) = req.into_parts();
    let path_and_query = parts
        .uri
        .path_and_query()
        .cloned()
        .unwrap_or_else(|| PathAndQuery::from_static("/"));
    let uri = Uri::builder()
        .scheme(Scheme::HTTP)
        .authority(upstream)
        .path_and_query(path_and_query)
        .build();
    parts.uri = match uri {
        Ok(uri) => uri,
        Err(_) => return Ok(error_response(StatusCode::BAD_REQUEST, "bad request target\n")),
    };
    strip_hop_by_hop(&mut parts.headers);

    match client.request(Request::from_parts(parts, body)).await {
        Ok(resp) => {
            let (mut parts, body) = resp.into_parts();
            strip_hop_by_hop(&mut parts.headers);
            Ok(Response::from_parts(parts, Either::Left(body)))
        }
        Err(_) => Ok(error_response(
            StatusCode::BAD_GATEWAY,
            "upstream request failed\n",
        )),
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let upstream: Authority = args
        .upstream
        .parse()
        .map_err(|e| format!("invalid --upstream {:?}: {e}", args.upstream))?;

    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_keepalive(Some(Duration::from_secs(60)));
    let client: UpstreamClient = Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .build(connector);

    let addr = SocketAddr::from(([127, 0, 0, 1], args.port));
    // The same accept queue as switchyard and the mock (tokio's `bind` asks for 128).
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    let listener = socket.listen(4096)?;
    println!("floor-proxy listening on http://{addr}");

    loop {
        let (stream, _) = match listener.accept().await {
            Ok(conn) => conn,
            Err(err) => {
                // Typically EMFILE under overload: back off briefly instead of spinning.
                eprintln!("floor-proxy: accept failed: {err}");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let client = client.clone();
        let upstream = upstream.clone();
        tokio::spawn(async move {
            let service =
                hyper::service::service_fn(move |req| forward(client.clone(), upstream.clone(), req));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
