//! `switchyard config import-litellm config.yaml [--out config.json]`: LiteLLM's `config.yaml` as
//! Switchyard's `config.json`; every setting not carried over is reported by name on stderr.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use switchyard_core::litellm::config_yaml::MasterKeySource;
use switchyard_gateway::admin::litellm::config_yaml::import_file;

pub fn import(path: &Path, out: Option<&PathBuf>) -> ExitCode {
    let imported = match import_file(path) {
        Ok(i) => i,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::FAILURE;
        }
    };
    for w in &imported.warnings {
        eprintln!("{}: warning: {w}", path.display());
    }
    match &imported.master_key {
        Some(MasterKeySource::Env(var)) => eprintln!(
            "{}: general_settings.master_key: start Switchyard with SWITCHYARD_MASTER_KEY=\"${var}\"",
            path.display()
        ),
        Some(MasterKeySource::Literal) => eprintln!(
            "{}: general_settings.master_key: not copied; set SWITCHYARD_MASTER_KEY to it",
            path.display()
        ),
        None => {}
    }
    let text = format!("{:#}", imported.config);
    match out {
        Some(file) => {
            if let Err(e) = std::fs::write(file, text + "\n") {
                eprintln!("{}: {e}", file.display());
                return ExitCode::FAILURE;
            }
        }
        None => println!("{text}"),
    }
    ExitCode::SUCCESS
}
