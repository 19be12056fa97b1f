//! `POST /webhooks/webex`: verifies the signature, stores the raw delivery durably, then answers.
//!
//! Accepted deliveries go through one writer task that commits whatever arrived meanwhile in one
//! transaction (group commit): each request is answered only after its delivery is on disk, and
//! a burst costs one fsync, not one per request. The same transaction applies the deliveries to
//! the agents' machines when nothing older waits ([`Processor::intake`]), so a Ringing reaches
//! its agent as a `Start` one commit after it arrived. The channel's capacity bounds the requests
//! waiting for a commit; past it, callers wait (Webex retries slow answers, never loses them).

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use sha2::{Digest as _, Sha256};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::processor::Processor;
use crate::clock::Clock;
use crate::metrics::Metrics;
use crate::store::{Inserted, NewDelivery, StoreError};
use crate::webex::signature::{self, SIGNATURE_HEADER};
use crate::webex::webhook::Envelope;

/// Requests waiting for the writer at most.
pub const WRITER_QUEUE: usize = 4096;

/// Most deliveries committed in one transaction.
pub const WRITER_BATCH: usize = 512;

type Reply = oneshot::Sender<Result<Inserted, String>>;

/// What the route needs.
#[derive(Debug, Clone)]
pub struct Receiver {
    secret: Arc<[u8]>,
    writer: mpsc::Sender<(NewDelivery, Reply)>,
    clock: Clock,
    metrics: Arc<Metrics>,
}

impl Receiver {
    /// Starts the writer task (ends with `cancel` once its queue is drained) and returns the
    /// route's state.
    pub fn spawn(
        processor: Processor,
        secret: Arc<[u8]>,
        clock: Clock,
        metrics: Arc<Metrics>,
        tasks: &tokio_util::task::TaskTracker,
        cancel: CancellationToken,
    ) -> Receiver {
        let (writer, queue) = mpsc::channel(WRITER_QUEUE);
        tasks.spawn(write_loop(processor, queue, cancel));
        Receiver {
            secret,
            writer,
            clock,
            metrics,
        }
    }
}

async fn write_loop(
    processor: Processor,
    mut queue: mpsc::Receiver<(NewDelivery, Reply)>,
    cancel: CancellationToken,
) {
    let mut batch = Vec::with_capacity(WRITER_BATCH);
    loop {
        tokio::select! {
            biased;
            count = queue.recv_many(&mut batch, WRITER_BATCH) => if count == 0 { return },
            () = cancel.cancelled() => { queue.close(); continue }
        }
        if batch.is_empty() {
            continue;
        }
        let deliveries: Vec<NewDelivery> = batch.iter().map(|(d, _)| d.clone()).collect();
        let result: Result<Vec<Inserted>, StoreError> = processor.intake(&deliveries).await;
        match result {
            Ok(inserted) => {
                for ((_, reply), outcome) in batch.drain(..).zip(inserted) {
                    let _ = reply.send(Ok(outcome));
                }
            }
            Err(error) => {
                tracing::error!(%error, count = batch.len(), "storing webhook deliveries failed");
                for (_, reply) in batch.drain(..) {
                    let _ = reply.send(Err(error.to_string()));
                }
            }
        }
    }
}

fn refuse(status: StatusCode, code: &'static str, message: String) -> Response {
    (status, Json(json!({ "code": code, "message": message }))).into_response()
}

/// The route handler. The body arrives already limited to `MAX_WEBHOOK_BYTES` (413 beyond).
pub async fn receive(
    State(receiver): State<Receiver>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let metrics = &receiver.metrics;
    let Some(signature) = headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok()) else {
        metrics.observe_webhook("missing_signature");
        return refuse(
            StatusCode::UNAUTHORIZED,
            "missing_signature",
            format!("the {SIGNATURE_HEADER} header is required"),
        );
    };
    if !signature::verify(&receiver.secret, &body, signature) {
        metrics.observe_webhook("bad_signature");
        return refuse(
            StatusCode::UNAUTHORIZED,
            "bad_signature",
            "the signature does not match the body".into(),
        );
    }
    let envelope = match Envelope::parse(&body) {
        Ok(envelope) => envelope,
        Err(error) => {
            metrics.observe_webhook("malformed");
            return refuse(
                StatusCode::BAD_REQUEST,
                "not_a_webex_envelope",
                error.to_string(),
            );
        }
    };
    let delivery = NewDelivery {
        body_sha256: hex::encode(Sha256::digest(&body)),
        received_at_ms: receiver.clock.now_ms(),
        resource: envelope.resource,
        event: envelope.event,
        body: body.to_vec(),
    };
    let (reply, stored) = oneshot::channel();
    if receiver.writer.send((delivery, reply)).await.is_err() {
        metrics.observe_webhook("unavailable");
        return refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting_down",
            "the server is shutting down".into(),
        );
    }
    match stored.await {
        Ok(Ok(Inserted::New(seq))) => {
            metrics.observe_webhook("stored");
            (
                StatusCode::OK,
                Json(json!({ "status": "stored", "seq": seq })),
            )
                .into_response()
        }
        Ok(Ok(Inserted::Duplicate)) => {
            metrics.observe_webhook("duplicate");
            (StatusCode::OK, Json(json!({ "status": "duplicate" }))).into_response()
        }
        Ok(Err(message)) => {
            metrics.observe_webhook("store_failed");
            refuse(StatusCode::SERVICE_UNAVAILABLE, "store_failed", message)
        }
        Err(_) => {
            metrics.observe_webhook("unavailable");
            refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                "shutting_down",
                "the server is shutting down".into(),
            )
        }
    }
}
