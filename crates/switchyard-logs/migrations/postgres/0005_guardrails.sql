-- Guardrails (issue #20): which guardrails matched the call and what each decided, as a JSON array
-- [{"guardrail": name, "decision": "block"|"redact"|"log"|"allow_on_error"|"block_on_error"}]; never
-- the matched text. NULL when none matched.
ALTER TABLE logs ADD COLUMN guardrails TEXT;
