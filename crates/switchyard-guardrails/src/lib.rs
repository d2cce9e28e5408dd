//! Guardrails, pure: what a guardrail is and how it is validated (`config`), the detectors
//! (`detect`: e-mail, phone numbers, IBAN, credit cards, secrets, custom regexes), scanning and
//! redaction of whole texts and streams (`scan`), the compiled set and what applies to a request
//! (`set`), where a body's text is (`texts`), and the Generic Guardrail API's bodies (`webhook`).
//! No I/O: the pipeline's guard phase (`switchyard-proxy`'s `pipeline::guard`) does the calls.

pub mod config;
pub mod detect;
pub mod scan;
pub mod set;
pub mod texts;
pub mod webhook;

pub use config::{Guardrail, GuardrailInput, Kind, OnError, Scope, Stage};
pub use detect::Entity;
pub use scan::{Action, Findings, StreamScan};
pub use set::{Applicable, GuardrailSet};
pub use texts::{text_slots, BodyShape};
