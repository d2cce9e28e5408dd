//! The page at `/`: configured providers and keys (redacted), and whether each key works.
//!
//! Server-rendered HTML with a few lines of script that probe each key through the management API, so
//! the page shows instantly and the checks fill in as they answer. The full web UI comes later.

use std::fmt::Write;
use std::sync::Arc;

use axum::extract::State;
use axum::response::Html;

use crate::api::ProviderView;
use crate::state::AppState;

fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

pub async fn index(State(state): State<Arc<AppState>>) -> Html<String> {
    let snap = state.config.snapshot();
    let mut rows = String::new();
    for p in &snap.providers {
        let v = ProviderView::of(p, &state.health);
        let kind = match &v.custom_provider_config {
            Some(c) => format!("custom ({})", c.base_provider_type.as_str()),
            None => "built-in".to_owned(),
        };
        let _ = write!(
            rows,
            "<section class=\"provider\" data-provider=\"{name}\"><h2>{name} <small>{kind}</small></h2>\
             <p>Base URL: <code class=\"base-url\">{url}</code> · timeout {t} s · retries {r}</p>",
            name = esc(&v.name),
            kind = esc(&kind),
            url = esc(&v.network_config.base_url),
            t = v.network_config.default_request_timeout_in_seconds,
            r = v.network_config.max_retries,
        );
        if v.keys.is_empty() {
            rows.push_str("<p class=\"warn\">No keys: add one with POST /api/providers/");
            rows.push_str(&esc(&v.name));
            rows.push_str("/keys</p>");
        } else {
            rows.push_str(
                "<table><thead><tr><th>Key</th><th>Value</th><th>Models</th><th>Weight</th><th>State</th><th>Works?</th></tr></thead><tbody>",
            );
            for k in &v.keys {
                let models = if k.models.is_empty() {
                    "(none)".to_owned()
                } else {
                    k.models.join(", ")
                };
                let mut state_text = match &k.status_reason {
                    Some(r) => format!("{}: {}", k.status, r),
                    None => k.status.to_owned(),
                };
                if k.health.state != "healthy" {
                    state_text.push_str(&format!(" · {}", k.health.state));
                    if let Some(ms) = k.health.retry_in_ms {
                        state_text.push_str(&format!(" (probe in {} s)", ms.div_ceil(1000)));
                    }
                }
                let _ = write!(
                    rows,
                    "<tr class=\"key\" data-key-id=\"{id}\"><td>{name}</td><td><code>{value}</code></td><td>{models}</td>\
                     <td>{weight}</td><td class=\"state {status}\">{state}</td><td class=\"check\">{check}</td></tr>",
                    id = esc(&k.id),
                    name = esc(&k.name),
                    value = esc(&k.value),
                    models = esc(&models),
                    weight = k.weight,
                    status = k.status,
                    state = esc(&state_text),
                    check = if k.enabled { "checking…" } else { "—" },
                );
            }
            rows.push_str("</tbody></table>");
        }
        rows.push_str("</section>");
    }
    if snap.providers.is_empty() {
        rows.push_str(
            "<p>No providers yet. Register one with <code>POST /api/providers</code>, then add a key with \
             <code>POST /api/providers/{provider}/keys</code>.</p>",
        );
    }
    Html(format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Switchyard</title>
<style>
body{{font:15px/1.45 system-ui,sans-serif;margin:0 auto;max-width:1100px;padding:1rem;color:#1b1f24}}
h1{{font-size:1.4rem}} h2{{font-size:1.1rem;margin:1.4rem 0 .3rem}} small{{color:#57606a;font-weight:normal}}
table{{border-collapse:collapse;width:100%}} th,td{{text-align:left;padding:.35rem .5rem;border-bottom:1px solid #d0d7de;vertical-align:top}}
code{{font-size:.9em;word-break:break-all}} .ok{{color:#1a7f37}} .bad,.error{{color:#cf222e}} .disabled,.warn{{color:#9a6700}}
@media (max-width:700px){{table,thead,tbody,tr,td,th{{display:block}} thead{{display:none}} tr{{border-bottom:2px solid #d0d7de}}}}
</style></head>
<body><h1>Switchyard</h1><p>Providers and keys as the gateway routes them. Key values are redacted.</p>
<main id="providers">{rows}</main>
<script>
for (const row of document.querySelectorAll('tr.key')) {{
  const cell = row.querySelector('.check');
  if (cell.textContent === '—') continue;
  const p = row.closest('section').dataset.provider, k = row.dataset.keyId;
  fetch(`/api/providers/${{encodeURIComponent(p)}}/keys/${{encodeURIComponent(k)}}/check`, {{method: 'POST'}})
    .then(r => r.json())
    .then(j => {{
      cell.textContent = (j.ok === true ? '✔ ' : j.ok === false ? '✘ ' : '') + (j.message || '') + (j.latency_ms !== undefined ? ` (${{j.latency_ms}} ms)` : '');
      cell.className = 'check ' + (j.ok === true ? 'ok' : j.ok === false ? 'bad' : '');
    }})
    .catch(e => {{ cell.textContent = 'check failed: ' + e; cell.className = 'check bad'; }});
}}
</script></body></html>"#
    ))
}
