//! `switchyard config import-litellm FILE [--out FILE]`, run as the real binary: mittwald's LiteLLM
//! `config.yaml` becomes a `config.json` that `switchyard config validate` accepts; what is not carried
//! over is named on stderr; a literal master key is never printed; mistakes point at their place.

use std::process::Command;

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

const GUIDE_YAML: &str = r#"
model_list:
  - model_name: gpt-oss-120b
    litellm_params:
      model: openai/gpt-oss-120b
      api_base: https://your-company.llm.aihosting.mittwald.de
      api_key: os.environ/MITTWALD_API_KEY
      rpm: 60
litellm_settings:
  drop_params: true
general_settings:
  master_key: sk-1234-literal-master
"#;

#[test]
fn the_guides_config_yaml_imports_and_validates() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = dir.path().join("config.yaml");
    let json = dir.path().join("config.json");
    std::fs::write(&yaml, GUIDE_YAML).unwrap();
    let (code, stdout, stderr) = run(&[
        "config",
        "import-litellm",
        yaml.to_str().unwrap(),
        "--out",
        json.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    for name in [
        "model_list[0].litellm_params.rpm",
        "litellm_settings.drop_params",
        "general_settings.master_key",
    ] {
        assert!(stderr.contains(name), "{name}: {stderr}");
    }
    let written = std::fs::read_to_string(&json).unwrap();
    for text in [&stderr, &written] {
        assert!(!text.contains("sk-1234-literal-master"), "{text}");
    }
    let config: serde_json::Value = serde_json::from_str(&written).unwrap();
    let key = &config["providers"]["gpt-oss-120b"]["keys"][0];
    assert_eq!(key["value"], "env.MITTWALD_API_KEY");
    assert_eq!(key["models"], serde_json::json!(["gpt-oss-120b"]));
    let (code, _, stderr) = run(&["config", "validate", json.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
}

#[test]
fn mistakes_exit_one_with_their_place() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = dir.path().join("config.yaml");
    std::fs::write(&yaml, "model_list: [\n  - bad").unwrap();
    let (code, _, stderr) = run(&["config", "import-litellm", yaml.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(stderr.contains(":2:3: YAML syntax error"), "{stderr}");
    std::fs::write(
        &yaml,
        "model_list:\n  - model_name: a\n    litellm_params: {model: anthropic/claude, api_key: k}\n",
    )
    .unwrap();
    let (code, _, stderr) = run(&["config", "import-litellm", yaml.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("error at model_list[0].litellm_params.model"),
        "{stderr}"
    );
}
