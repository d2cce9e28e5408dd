//! Parsing the `model` string of a request (Bifrost's rule).

/// What a request's `model` names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModelRef<'a> {
    /// `provider/model` where `provider` is a known provider name.
    Qualified { provider: &'a str, model: &'a str },
    /// No known provider prefix: routed by which keys serve the model.
    Bare(&'a str),
}

/// Splits on the first `/` only when the prefix is a known provider (built-in or registered), so
/// `meta-llama/Llama-3.1-8B` stays a bare model and `openrouter/meta-llama/x` goes to `openrouter`.
pub fn parse_model<'a>(model: &'a str, is_known_provider: impl Fn(&str) -> bool) -> ModelRef<'a> {
    match model.split_once('/') {
        Some((provider, rest)) if !rest.is_empty() && is_known_provider(provider) => ModelRef::Qualified {
            provider,
            model: rest,
        },
        _ => ModelRef::Bare(model),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(m: &str) -> ModelRef<'_> {
        parse_model(m, |p| ["openai", "openrouter", "mittwald"].contains(&p))
    }

    #[test]
    fn bifrost_examples() {
        assert_eq!(
            parse("openai/gpt-4o-mini"),
            ModelRef::Qualified {
                provider: "openai",
                model: "gpt-4o-mini"
            }
        );
        assert_eq!(
            parse("openrouter/meta-llama/llama-3-8b"),
            ModelRef::Qualified {
                provider: "openrouter",
                model: "meta-llama/llama-3-8b"
            }
        );
        assert_eq!(
            parse("meta-llama/Llama-3.1-8B"),
            ModelRef::Bare("meta-llama/Llama-3.1-8B")
        );
        assert_eq!(
            parse("mittwald/gpt-oss-120b"),
            ModelRef::Qualified {
                provider: "mittwald",
                model: "gpt-oss-120b"
            }
        );
        assert_eq!(parse("gpt-4o-mini"), ModelRef::Bare("gpt-4o-mini"));
        assert_eq!(parse("openai/"), ModelRef::Bare("openai/"));
    }
}
