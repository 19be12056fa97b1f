//! Prometheus metrics, served as text at `GET /metrics`. Ids (agents, calls, contacts) are span
//! fields in logs, never metric labels: label values here come from small fixed sets.

use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of HTTP request metrics: the route template (not the raw path) and the status class.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct HttpLabels {
    /// The matched route (`/healthz`), or `unmatched`.
    pub route: String,
    /// `2xx`, `4xx`, ...
    pub status: String,
}

/// Labels of the build-info gauge.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct BuildLabels {
    version: String,
}

/// Labels of the request-duration histogram.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct RouteLabels {
    /// The matched route.
    pub route: String,
}

/// Labels of the webhook counter.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct WebhookLabels {
    outcome: String,
}

/// Every metric the server exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Mutex<Registry>,
    http_requests: Family<HttpLabels, Counter>,
    http_seconds: Family<RouteLabels, Histogram>,
    webhooks: Family<WebhookLabels, Counter>,
    /// Agent sessions ended for a protocol violation.
    pub agent_violations: Counter,
    /// Video frames queued for the call buffer.
    pub agent_frames: Counter,
    /// Bytes of video frames queued for the call buffer.
    pub agent_frame_bytes: Counter,
    /// Webex recordings stored (audio on disk, filed into an interaction).
    pub recordings_stored: Counter,
    /// Recording fetch attempts that failed and will be retried.
    pub recording_retries: Counter,
    /// Recordings parked for an operator.
    pub recordings_parked: Counter,
    /// Bytes of recording audio stored.
    pub recording_bytes: Counter,
    /// Polls of Webex's recording list that failed.
    pub poll_failures: Counter,
    /// Interactions whose stitching failed too often, parked for an operator.
    pub interactions_parked: Gauge,
    /// 1 while the call buffer's disk is full or failing (new contacts refused), else 0.
    pub buffer_disk_full: Gauge,
    /// Contacts whose screen the recorder refused because its disk was full or failing.
    pub contacts_refused: Counter,
    /// Seconds from a frame's arrival to its sync on disk.
    pub frame_to_disk: Histogram,
    /// The frame-rate cap the recorder asks of agents under load (0: none).
    pub fps_cap: Gauge<f64, std::sync::atomic::AtomicU64>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("capture");
        let build = Family::<BuildLabels, Gauge>::default();
        build
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION").to_owned(),
            })
            .set(1);
        registry.register("build_info", "Build information (always 1)", build);

        let start = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        start.set(now.as_secs_f64());
        registry.register(
            "process_start_time_seconds",
            "When the server started, Unix seconds",
            start,
        );

        let http_requests = Family::<HttpLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered",
            http_requests.clone(),
        );
        let http_seconds = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.000_25, 2.0, 16))
        });
        registry.register(
            "http_request_duration_seconds",
            "Time to answer HTTP requests",
            http_seconds.clone(),
        );
        let webhooks = Family::<WebhookLabels, Counter>::default();
        registry.register(
            "webhooks",
            "Webex webhook deliveries received, by outcome",
            webhooks.clone(),
        );
        let agent_violations = Counter::default();
        registry.register(
            "agent_protocol_violations",
            "Agent sessions refused and closed for a protocol violation",
            agent_violations.clone(),
        );
        let agent_frames = Counter::default();
        registry.register(
            "agent_frames",
            "Screen frames received and queued for the call buffer",
            agent_frames.clone(),
        );
        let agent_frame_bytes = Counter::default();
        registry.register(
            "agent_frame_bytes",
            "Bytes of screen frames received and queued for the call buffer",
            agent_frame_bytes.clone(),
        );
        let counter = |registry: &mut Registry, name: &str, help: &str| {
            let counter = Counter::default();
            registry.register(name, help, counter.clone());
            counter
        };
        let recordings_stored = counter(
            &mut registry,
            "recordings_stored",
            "Webex recordings stored with their audio and filed into an interaction",
        );
        let recording_retries = counter(
            &mut registry,
            "recording_retries",
            "Recording fetch attempts that failed and will be retried",
        );
        let recordings_parked = counter(
            &mut registry,
            "recordings_parked",
            "Recordings parked for an operator after failing",
        );
        let recording_bytes = counter(
            &mut registry,
            "recording_audio_bytes",
            "Bytes of recording audio stored",
        );
        let poll_failures = counter(
            &mut registry,
            "recording_poll_failures",
            "Polls of the Webex recording list that failed",
        );
        let interactions_parked = Gauge::default();
        registry.register(
            "interactions_parked",
            "Interactions whose stitching failed too often, parked for an operator",
            interactions_parked.clone(),
        );
        let buffer_disk_full = Gauge::default();
        registry.register(
            "recorder_buffer_disk_full",
            "1 while the call buffer's disk is full or failing and new contacts are refused",
            buffer_disk_full.clone(),
        );
        let contacts_refused = Counter::default();
        registry.register(
            "recorder_contacts_refused",
            "Contacts whose screen was refused because the call buffer's disk was full or failing",
            contacts_refused.clone(),
        );
        let frame_to_disk = Histogram::new(exponential_buckets(0.001, 2.0, 14));
        registry.register(
            "recorder_frame_to_disk_seconds",
            "Time from a frame's arrival to its sync in the contact's SCN file",
            frame_to_disk.clone(),
        );
        let fps_cap = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        registry.register(
            "recorder_fps_cap",
            "Frame-rate cap asked of agents because frames reach the disk too slowly (0: none)",
            fps_cap.clone(),
        );
        Metrics {
            interactions_parked,
            frame_to_disk,
            fps_cap,
            buffer_disk_full,
            contacts_refused,
            recordings_stored,
            recording_retries,
            recordings_parked,
            recording_bytes,
            poll_failures,
            registry: Mutex::new(registry),
            http_requests,
            http_seconds,
            webhooks,
            agent_violations,
            agent_frames,
            agent_frame_bytes,
        }
    }

    /// Counts one answered request.
    pub fn observe_http(&self, route: &str, status: u16, elapsed: Duration) {
        let status = format!("{}xx", status / 100);
        self.http_requests
            .get_or_create(&HttpLabels {
                route: route.to_owned(),
                status,
            })
            .inc();
        self.http_seconds
            .get_or_create(&RouteLabels {
                route: route.to_owned(),
            })
            .observe(elapsed.as_secs_f64());
    }

    /// Counts one webhook delivery (`stored`, `duplicate`, `bad_signature`, ...).
    pub fn observe_webhook(&self, outcome: &str) {
        self.webhooks
            .get_or_create(&WebhookLabels {
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    /// The OpenMetrics text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let registry = self
            .registry
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Err(error) = prometheus_client::encoding::text::encode(&mut out, &registry) {
            tracing::warn!(%error, "encoding metrics failed");
        }
        out
    }
}
