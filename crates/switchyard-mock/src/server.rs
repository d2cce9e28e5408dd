//! Accept loop and per-connection serving.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify};
use tokio::task::JoinSet;

use crate::handlers::{handle, Reply};
use crate::state::Shared;

pub(crate) async fn serve(listener: TcpListener, shared: Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    let builder = Arc::new(Builder::new(TokioExecutor::new()));
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            biased;
            // Resolves on an explicit shutdown and when the `MockUpstream` (the sender) is dropped.
            _ = shutdown.changed() => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    conns.spawn(serve_connection(stream, builder.clone(), shared.clone()));
                }
                // E.g. out of file descriptors: back off a little instead of spinning.
                Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
            },
        }
    }
    drop(listener);
    // Aborts every connection (dropping in-flight responses) and waits until they are gone.
    conns.shutdown().await;
}

async fn serve_connection(stream: TcpStream, builder: Arc<Builder<TokioExecutor>>, shared: Arc<Shared>) {
    // Notified by a `reset*` request: the connection is dropped without writing a response.
    let kill = Arc::new(Notify::new());
    let svc_kill = kill.clone();
    let service = service_fn(move |req| {
        let shared = shared.clone();
        let kill = svc_kill.clone();
        async move {
            match handle(shared, req).await {
                Reply::Response(resp) => Ok::<_, Infallible>(resp),
                Reply::Reset => {
                    kill.notify_one();
                    std::future::pending().await
                }
            }
        }
    });
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    tokio::select! {
        _ = conn => {}
        _ = kill.notified() => {}
    }
}
