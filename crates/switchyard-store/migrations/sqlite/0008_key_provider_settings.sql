-- Provider-specific key settings (issue #8): Bifrost's azure_key_config / bedrock_key_config, stored
-- as one JSON object {"azure_key_config": ..., "bedrock_key_config": ...}. NULL for ordinary keys.
ALTER TABLE provider_keys ADD COLUMN provider_settings TEXT;
