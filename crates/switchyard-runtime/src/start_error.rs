//! Why the gateway could not start.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot create app dir {path}: {source}")]
    AppDir { path: PathBuf, source: std::io::Error },
    #[error(
        "the app dir {path} is not writable by this process ({source}); in a container, run with \
         --user \"$(id -u):$(id -g)\" for a bind-mounted directory, or chown it"
    )]
    AppDirNotWritable { path: PathBuf, source: std::io::Error },
    #[error("cannot open config store: {0}")]
    Store(#[from] switchyard_store::StoreError),
    #[error("cannot open the request log store: {0}")]
    Logs(String),
    #[error("invalid config file: {0}")]
    ConfigFile(String),
    #[error("cannot connect to Redis for governance counters: {0}")]
    Redis(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: String, source: std::io::Error },
    #[error(
        "refusing to listen on {host} without admin credentials: anyone who can reach it could read and \
         change providers and keys. Set SWITCHYARD_ADMIN_TOKENS (or --admin-tokens-file) or \
         SWITCHYARD_ADMIN_PASSWORD / SWITCHYARD_ADMIN_PASSWORD_HASH, bind to 127.0.0.1, or pass \
         --insecure-no-admin-auth to run open anyway"
    )]
    AdminCredentialsRequired { host: String },
    #[error("{0}")]
    Security(String),
    #[error("cannot open the response cache: {0}")]
    Cache(String),
}
