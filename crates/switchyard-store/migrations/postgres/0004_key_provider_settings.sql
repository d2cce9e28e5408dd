-- Provider-specific key settings (Bifrost's azure_key_config / bedrock_key_config), as in the SQLite
-- store: one JSON object {"azure_key_config": ..., "bedrock_key_config": ...}; NULL for ordinary keys.
ALTER TABLE provider_keys ADD COLUMN provider_settings JSONB;
