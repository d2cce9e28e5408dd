//! The one inference pipeline. Every inference route (chat on every surface, the JSON endpoints,
//! audio, `count_tokens`, model listing, every pass-through) runs through [`drive`], whose phases are:
//!
//! 1. **start** (`finish::ObsHandle::start`): the observation that becomes the log row, metrics and
//!    spans is opened, and armed to finish however the request ends;
//! 2. **identify** (`admit::identify`): the caller's virtual key is found and checked (401/403), or
//!    found unnecessary; one config snapshot is taken; the body is read once, within the route's limit;
//! 3. the **route** reads its request (once) into a [`CallSpec`] and calls, in this order, phases whose
//!    types chain so that none can be skipped:
//!    - **admit** ([`Incoming::admit`] → [`Admitted`]): the caller's limits are checked and reserved
//!      with an estimate from the parsed request;
//!    - **plan** ([`Admitted::plan`] / [`Admitted::plan_with`] → [`GovernedPlan`]): routing plus the
//!      caller's restrictions. `GovernedPlan` has no public constructor, and
//!    - **dispatch** ([`Admitted::dispatch`]) accepts nothing else, so an ungoverned upstream call does
//!      not compile;
//!    - **cache** (`cache`, between the plan's inputs and dispatch): a hit answers here, with no
//!      upstream call and cost 0; a miss goes on, and its successful answer is stored after respond;
//!    - **respond** (`respond`): the answer in the client's protocol, JSON or relayed stream;
//! 4. **finish** (`finish`): when the body has been sent or dropped, usage and cost settle the caller's
//!    reservation, and one log row, the metrics and the spans are written.
//!
//! A route adds only what is its own: how to read its request, how to build the upstream request for a
//! target ([`dispatch::UpstreamRequest`]) and how to render the answer.

pub mod admit;
pub mod attempt;
pub(crate) mod cache;
mod cache_embed;
pub mod dispatch;
pub mod finish;
pub mod guard;
pub mod guard_stream;
pub mod plan;
pub mod relay;
pub mod respond;

use std::future::Future;
use std::sync::Arc;

use axum::extract::Request;
use axum::response::{IntoResponse, Response};

pub use admit::{Admitted, CallSpec, Incoming};
pub use plan::GovernedPlan;

use crate::ingress::Ingress;
use switchyard_runtime::error::ApiError;
use switchyard_runtime::state::AppState;

/// How a route enters the pipeline.
#[derive(Clone, Copy, Debug)]
pub struct RouteSpec {
    /// The surface, and so the client's protocol (errors answer in its shape).
    pub ingress: Ingress,
    /// The largest body the route takes; `None`: the server's limit. The smaller of the two applies.
    pub body_limit: Option<usize>,
}

impl RouteSpec {
    pub const fn on(ingress: Ingress) -> RouteSpec {
        RouteSpec {
            ingress,
            body_limit: None,
        }
    }
}

/// The pipeline's identify step alone, for routes that reach no model provider (the MCP gateway's
/// `/mcp` and `/v1/mcp/tool/execute`): the same credentials, key states and `401`/`403` answers, the
/// same body limit; no request-log row (those routes record each tool call themselves).
pub async fn identify(state: &Arc<AppState>, spec: RouteSpec, req: Request) -> Result<Incoming, ApiError> {
    let (parts, body) = req.into_parts();
    admit::identify(state, parts, body, spec, &finish::ObsHandle::detached()).await
}

/// The driver: runs `route` inside the pipeline's phases (module docs) and returns its answer, observed.
pub async fn drive<F, Fut>(state: Arc<AppState>, spec: RouteSpec, req: Request, route: F) -> Response
where
    F: FnOnce(Incoming) -> Fut,
    Fut: Future<Output = Result<Response, ApiError>>,
{
    let (parts, body) = req.into_parts();
    let obs = finish::ObsHandle::start(&parts);
    state.metrics.in_flight().inc();
    let resp = match admit::identify(&state, parts, body, spec, &obs).await {
        Ok(incoming) => route(incoming).await.unwrap_or_else(IntoResponse::into_response),
        Err(rejection) => rejection.into_response(),
    };
    finish::observed(state, obs, resp)
}
