//! Model discovery: what each endpoint says it serves (`GET /v1/models`), as an input to routing.
//!
//! The lists are read at the edge (the gateway fetches them in the background and on demand) and passed
//! in as [`ModelLists`]; the decision here is pure. A provider with `"model_discovery": true` and a
//! usable list (read without error, not empty) gets a bare model through a `*` key only if its list
//! has it; then it ranks above plain `*` providers and below explicit listings and aliases. A failed or
//! empty listing (a dedicated endpoint still provisioning) leaves today's behaviour: `*` serves all.

use std::collections::HashMap;

use serde::Serialize;

/// One provider's last listing.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ModelList {
    /// The ids the upstream listed (empty when the read failed or the endpoint lists nothing yet).
    pub models: Vec<String>,
    /// When the list was read, Unix milliseconds.
    pub read_at_ms: i64,
    /// Why the read failed, if it did.
    pub error: Option<String>,
}

impl ModelList {
    /// Whether routing may rely on the list: read without error and not empty.
    pub fn usable(&self) -> bool {
        self.error.is_none() && !self.models.is_empty()
    }
}

/// The listings of every provider that has one, by provider name.
#[derive(Clone, Debug, Default)]
pub struct ModelLists {
    by_provider: HashMap<String, ModelList>,
}

/// What a provider's listing says about a model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Listed {
    /// The list has it.
    Yes,
    /// The list is usable and does not have it.
    No,
    /// No discovery, or no usable list: routing goes by the keys alone.
    Unknown,
}

impl ModelLists {
    pub fn get(&self, provider: &str) -> Option<&ModelList> {
        self.by_provider.get(provider)
    }

    /// A copy with `provider`'s list replaced.
    pub fn with(&self, provider: &str, list: ModelList) -> ModelLists {
        let mut by_provider = self.by_provider.clone();
        by_provider.insert(provider.to_owned(), list);
        ModelLists { by_provider }
    }

    /// A copy keeping only the providers `keep` accepts (deleted ones, discovery switched off).
    pub fn retain(&self, keep: impl Fn(&str) -> bool) -> ModelLists {
        let by_provider = self
            .by_provider
            .iter()
            .filter(|(p, _)| keep(p))
            .map(|(p, l)| (p.clone(), l.clone()))
            .collect();
        ModelLists { by_provider }
    }

    /// Whether `provider`'s usable list has `model` (`fold_case`: ignoring ASCII case).
    pub fn listed(&self, provider: &str, model: &str, fold_case: bool) -> Listed {
        match self.by_provider.get(provider) {
            Some(list) if list.usable() => {
                let same = |m: &String| m == model || (fold_case && m.eq_ignore_ascii_case(model));
                if list.models.iter().any(same) {
                    Listed::Yes
                } else {
                    Listed::No
                }
            }
            _ => Listed::Unknown,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(models: &[&str], error: Option<&str>) -> ModelList {
        ModelList {
            models: models.iter().map(|m| m.to_string()).collect(),
            read_at_ms: 1,
            error: error.map(str::to_owned),
        }
    }

    #[test]
    fn only_a_usable_list_decides() {
        let lists = ModelLists::default()
            .with("a", list(&["gpt-oss-120b"], None))
            .with("b", list(&[], None))
            .with("c", list(&["x"], Some("401")));
        assert_eq!(lists.listed("a", "gpt-oss-120b", false), Listed::Yes);
        assert_eq!(lists.listed("a", "GPT-OSS-120B", false), Listed::No);
        assert_eq!(lists.listed("a", "GPT-OSS-120B", true), Listed::Yes);
        assert_eq!(
            lists.listed("b", "anything", false),
            Listed::Unknown,
            "still provisioning"
        );
        assert_eq!(lists.listed("c", "x", false), Listed::Unknown, "read failed");
        assert_eq!(lists.listed("d", "x", false), Listed::Unknown);
        assert!(lists.retain(|p| p != "a").get("a").is_none());
    }
}
