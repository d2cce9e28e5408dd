//! Reading LiteLLM's `config.yaml` (the YAML part; the mapping is `switchyard_core::litellm::config_yaml`).

use std::path::Path;

use switchyard_core::litellm::config_yaml::{import, Imported};

/// Parses YAML text and converts it; errors name the line and column (syntax) or the field.
pub fn import_yaml(text: &str) -> Result<Imported, String> {
    let doc: serde_json::Value = serde_norway::from_str(text).map_err(|e| match e.location() {
        Some(l) => format!("{}:{}: YAML syntax error: {e}", l.line(), l.column()),
        None => format!("YAML error: {e}"),
    })?;
    import(&doc).map_err(|e| format!("error at {}: {}", e.field, e.message))
}

/// Reads and converts a `config.yaml` file.
pub fn import_file(path: &Path) -> Result<Imported, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    import_yaml(&text).map_err(|e| {
        // `file:line:col: ...` for syntax errors, `file: error at field: ...` otherwise.
        let sep = if e.starts_with(|c: char| c.is_ascii_digit()) {
            ":"
        } else {
            ": "
        };
        format!("{}{sep}{e}", path.display())
    })
}
