//! `switchyard config validate FILE`: checks a config file without starting anything.

use std::path::Path;
use std::process::ExitCode;

use switchyard_gateway::config_source::read_config_file;

/// Prints what the file holds (or exactly where it is wrong) and returns the process exit code:
/// 0 when the file is valid, 1 when it is not.
pub fn validate(path: &Path) -> ExitCode {
    match read_config_file(path) {
        Ok(file) => {
            for w in &file.warnings {
                eprintln!("{}: warning: {w}", path.display());
            }
            let keys: usize = file.providers.iter().map(|p| p.keys.len()).sum();
            let mode = if !file.config_store_enabled {
                "file only (read-only)"
            } else if file.source_of_truth == switchyard_core::config_file::SourceOfTruth::File {
                "reconcile, the file wins (source_of_truth: config.json)"
            } else {
                "seed what the store lacks (source_of_truth: split)"
            };
            println!(
                "{}: ok: {} provider(s), {keys} key(s); {mode}{}{}",
                path.display(),
                file.providers.len(),
                if file.client.is_some() {
                    "; client block"
                } else {
                    ""
                },
                match &file.governance {
                    Some(g) => format!(
                        "; governance: {} virtual key(s), {} team(s), {} customer(s)",
                        g.virtual_keys.len(),
                        g.teams.len(),
                        g.customers.len()
                    ),
                    None => String::new(),
                },
            );
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("{message}");
            ExitCode::FAILURE
        }
    }
}
