#!/usr/bin/env python3
"""Derives Switchyard's embedded price table from LiteLLM's model price table (MIT, see
crates/switchyard-core/data/PRICES-NOTICE.md), keeping only what the gateway needs: per-token USD prices
of chat, completion, responses and embedding models of the providers Switchyard speaks to.

Usage: python3 scripts/derive-prices.py ../shared/data/model-prices.json > crates/switchyard-core/data/prices.json
"""
import json
import sys

# LiteLLM provider names -> Switchyard's built-in provider names.
PROVIDERS = {
    "openai": "openai", "text-completion-openai": "openai", "anthropic": "anthropic", "gemini": "gemini",
    "mistral": "mistral", "groq": "groq", "deepseek": "deepseek", "xai": "xai", "cerebras": "cerebras",
    "together_ai": "together", "fireworks_ai": "fireworks", "openrouter": "openrouter",
    "perplexity": "perplexity", "cohere_chat": "cohere", "cohere": "cohere", "nebius": "nebius",
}
MODES = {"chat", "completion", "responses", "embedding"}
FIELDS = {
    "input_cost_per_token": "input",
    "output_cost_per_token": "output",
    "cache_read_input_token_cost": "cache_read",
    "cache_creation_input_token_cost": "cache_write",
}

def main(path):
    table = json.load(open(path))
    out = {}
    for key, entry in sorted(table.items()):
        if not isinstance(entry, dict) or entry.get("mode") not in MODES:
            continue
        provider = PROVIDERS.get(entry.get("litellm_provider"))
        if provider is None or "input_cost_per_token" not in entry:
            continue
        model = key.split("/", 1)[1] if key.startswith(provider + "/") or key.startswith(entry["litellm_provider"] + "/") else key
        prices = {short: entry[field] for field, short in FIELDS.items() if isinstance(entry.get(field), (int, float))}
        out.setdefault(provider, {})[model] = prices
    json.dump(out, sys.stdout, separators=(",", ":"), sort_keys=True)
    sys.stdout.write("\n")

if __name__ == "__main__":
    main(sys.argv[1])
