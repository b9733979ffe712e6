//! `grpc.health.v1` for a socket: one handle that flips every served name at once.

use std::sync::Arc;

use tokio::sync::watch;
use tonic_health::ServingStatus;
use tonic_health::pb::health_server::{Health as HealthCheck, HealthServer};
use tonic_health::server::{HealthReporter, health_reporter};

/// The health handle of one server: the overall status (`""`) plus one per service.
#[derive(Clone, Debug)]
pub struct Health {
    reporter: HealthReporter,
    services: Vec<String>,
    serving: Arc<watch::Sender<bool>>,
}

impl Health {
    /// A handle for these fully qualified service names, initially NOT_SERVING, and
    /// the health service that reports them.
    pub async fn new<I, S>(services: I) -> (Self, HealthServer<impl HealthCheck>)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let (reporter, service) = health_reporter();
        let health = Self {
            reporter,
            services: services.into_iter().map(Into::into).collect(),
            serving: Arc::new(watch::Sender::new(false)),
        };
        health.set(ServingStatus::NotServing).await;
        (health, service)
    }

    /// Marks the server and every service SERVING.
    pub async fn set_serving(&self) {
        self.set(ServingStatus::Serving).await;
    }

    /// Marks the server and every service NOT_SERVING (on shutdown, or when a
    /// backend the server depends on is gone).
    pub async fn set_not_serving(&self) {
        self.set(ServingStatus::NotServing).await;
    }

    /// Whether the server is SERVING (for HTTP readiness probes).
    pub fn is_serving(&self) -> bool {
        *self.serving.borrow()
    }

    async fn set(&self, status: ServingStatus) {
        self.serving.send_replace(status == ServingStatus::Serving);
        self.reporter.set_service_status("", status).await;
        for name in &self.services {
            self.reporter.set_service_status(name, status).await;
        }
    }
}
