//! The metrics' recording helpers that do more than one add: a request's duration under its
//! route, a store command, an event's deliveries, a resume.

use super::labels::{OpKindLabel, OpLabel, RouteLabel};
use super::Metrics;

/// Routes labelled at most (the router has about a hundred).
const MAX_ROUTES: usize = 512;

impl Metrics {
    /// Counts an HTTP request's duration under its matched route (`None`: no route matched).
    pub fn http_observed(&self, route: Option<&str>, status: u16, took: std::time::Duration) {
        let class = match status {
            100..=199 => "1xx",
            200..=299 => "2xx",
            300..=399 => "3xx",
            400..=499 => "4xx",
            _ => "5xx",
        };
        let route = route.map_or("unmatched", |r| self.route_label(r));
        self.http_duration
            .get_or_create(&RouteLabel { route, class })
            .observe(took);
    }

    /// The route as a label of its own; routes are the router's, a few hundred at most.
    fn route_label(&self, route: &str) -> &'static str {
        if let Some(r) = self.routes.get(route) {
            return *r;
        }
        if self.routes.len() >= MAX_ROUTES {
            return "other";
        }
        let leaked: &'static str = Box::leak(route.into());
        *self.routes.entry(route.into()).or_insert(leaked)
    }

    /// Counts a store command: its op, how long it took, and how it failed if it did.
    pub fn store_command(
        &self,
        op: &'static str,
        took: std::time::Duration,
        failed: Option<&'static str>,
    ) {
        let label = OpLabel { op };
        self.redis_commands.get_or_create(&label).inc();
        self.redis_duration.get_or_create(&label).observe(took);
        match failed {
            None => {
                self.redis_connection_status.set(1);
            }
            Some(kind) => {
                self.redis_failed
                    .get_or_create(&OpKindLabel { op, kind })
                    .inc();
                if kind != "error" {
                    self.redis_connection_status.set(0);
                }
            }
        }
    }

    /// Counts an event frame queued for `n` connections: deliveries, frames and bytes, once
    /// per event whatever `n` is.
    pub fn delivered(&self, n: u64, frame_len: u64) {
        self.deliveries.inc_by(n);
        self.frames_events.inc_by(n);
        self.bytes_out.inc_by(n * frame_len);
    }

    /// Counts a resume (a subscribe or stream that `asked` for a seq): whether it could start
    /// there.
    pub fn resumed(&self, asked: bool, recovered: bool) {
        match (asked, recovered) {
            (false, _) => {}
            (true, true) => {
                self.resumes_recovered.inc();
            }
            (true, false) => {
                self.resumes_unrecoverable.inc();
            }
        }
    }
}
