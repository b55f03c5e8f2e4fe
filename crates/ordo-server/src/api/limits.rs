//! Abuse limits: a token bucket per client IP (every route) and per token subject (after the
//! token is verified; never for the mobile app's shared client credential, which all its shoppers
//! use — their IPs are limited instead). Over the limit: 429 with `Retry-After` and the
//! `RateLimit-*` headers; within it, the headers say what is left.

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;

type Keyed<K> = RateLimiter<K, DefaultKeyedStateStore<K>, DefaultClock, StateInformationMiddleware>;

/// The process's limiters (a limit of 0 turns one off).
pub struct RateLimits {
    per_ip: Option<(Keyed<IpAddr>, u32)>,
    per_subject: Option<(Keyed<String>, u32)>,
}

fn limiter<K: std::hash::Hash + Eq + Clone>(per_second: u32) -> Option<(Keyed<K>, u32)> {
    let rate = NonZeroU32::new(per_second)?;
    let burst = NonZeroU32::new(per_second.saturating_mul(2)).unwrap_or(rate);
    Some((
        RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst))
            .with_middleware::<StateInformationMiddleware>(),
        burst.get(),
    ))
}

/// What a check decided: go on (with the headers to add) or refuse.
pub enum Verdict {
    Allowed { limit: u32, remaining: u32 },
    Refused { limit: u32, retry_after_secs: u64 },
    Unlimited,
}

impl RateLimits {
    pub fn new(per_ip: u32, per_subject: u32) -> Arc<Self> {
        let limits = Arc::new(RateLimits {
            per_ip: limiter(per_ip),
            per_subject: limiter(per_subject),
        });
        // Forget idle keys now and then, so the tables do not grow without bound.
        let weak = Arc::downgrade(&limits);
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
                loop {
                    tick.tick().await;
                    let Some(l) = weak.upgrade() else { return };
                    if let Some((k, _)) = &l.per_ip {
                        k.retain_recent();
                    }
                    if let Some((k, _)) = &l.per_subject {
                        k.retain_recent();
                    }
                }
            });
        }
        limits
    }

    fn check<K: std::hash::Hash + Eq + Clone>(l: &Option<(Keyed<K>, u32)>, key: &K) -> Verdict {
        let Some((limiter, burst)) = l else {
            return Verdict::Unlimited;
        };
        match limiter.check_key(key) {
            Ok(snapshot) => Verdict::Allowed {
                limit: *burst,
                remaining: snapshot.remaining_burst_capacity(),
            },
            Err(not_until) => {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                Verdict::Refused {
                    limit: *burst,
                    retry_after_secs: wait.as_secs() + u64::from(wait.subsec_nanos() > 0),
                }
            }
        }
    }

    pub fn check_ip(&self, ip: IpAddr) -> Verdict {
        Self::check(&self.per_ip, &ip)
    }

    pub fn check_subject(&self, tenant: &str, subject: &str) -> Verdict {
        Self::check(&self.per_subject, &format!("{tenant}\u{0}{subject}"))
    }
}

fn set(headers: &mut HeaderMap, name: &'static str, v: impl ToString) {
    if let Ok(v) = HeaderValue::from_str(&v.to_string()) {
        headers.insert(name, v);
    }
}

/// Adds the `RateLimit-*` headers of `verdict` to `res` (the tighter limit wins when both apply).
pub fn annotate(res: &mut Response, verdict: &Verdict) {
    if let Verdict::Allowed { limit, remaining } = verdict {
        let h = res.headers_mut();
        let tighter = h
            .get("ratelimit-remaining")
            .and_then(|v| v.to_str().ok()?.parse::<u32>().ok())
            .is_none_or(|prev| *remaining < prev);
        if tighter {
            set(h, "ratelimit-limit", limit);
            set(h, "ratelimit-remaining", remaining);
            set(h, "ratelimit-reset", 1);
        }
    }
}

/// The 429 problem for a refused request.
pub fn refused(limit: u32, retry_after_secs: u64, whose: &str) -> Response {
    let p = super::problem::problem(
        StatusCode::TOO_MANY_REQUESTS,
        "rate-limited",
        "Too many requests",
        format!(
            "the request rate of this {whose} is over its limit; retry after the Retry-After delay"
        ),
    );
    let mut res = super::problem::problem_response(p);
    let h = res.headers_mut();
    set(h, header::RETRY_AFTER.as_str(), retry_after_secs.max(1));
    set(h, "ratelimit-limit", limit);
    set(h, "ratelimit-remaining", 0);
    set(h, "ratelimit-reset", retry_after_secs.max(1));
    res
}

/// The per-IP limit, for every route.
pub async fn limit_per_ip(
    State(limits): State<Arc<RateLimits>>,
    req: Request,
    next: Next,
) -> Response {
    let ip = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let verdict = match ip {
        Some(ip) => limits.check_ip(ip),
        None => Verdict::Unlimited,
    };
    if let Verdict::Refused {
        limit,
        retry_after_secs,
    } = verdict
    {
        return refused(limit, retry_after_secs, "client address");
    }
    let mut res = next.run(req).await;
    annotate(&mut res, &verdict);
    res
}
