//! `ordo events tail`: a small NATS JetStream client that prints Ordo's events, one CloudEvent
//! JSON per line, so an integrator can subscribe without the `nats` CLI. With `--durable` it
//! uses a durable consumer that acknowledges each event once printed and resumes where it left
//! off; without, an ordered ephemeral one.

use async_nats::jetstream::{self, consumer};
use futures::StreamExt;
use std::io::Write;
use std::time::Duration;

pub struct Tail {
    pub nats_url: String,
    pub stream: String,
    pub subject: String,
    pub from_start: bool,
    pub durable: Option<String>,
    pub count: Option<u64>,
    pub idle_timeout: Option<Duration>,
}

pub async fn tail(t: Tail) -> Result<(), String> {
    let client = async_nats::ConnectOptions::new()
        .name("ordo-events-tail")
        .connection_timeout(Duration::from_secs(5))
        .connect(t.nats_url.as_str())
        .await
        .map_err(|e| format!("cannot connect to NATS at {}: {e}", t.nats_url))?;
    let js = jetstream::new(client);
    let stream = js.get_stream(&t.stream).await.map_err(|e| {
        format!(
            "no JetStream stream {} ({e}); `ordo serve --nats-url …` creates it on its first event",
            t.stream
        )
    })?;
    let deliver_policy = if t.from_start {
        consumer::DeliverPolicy::All
    } else {
        consumer::DeliverPolicy::New
    };
    let mut out = std::io::stdout().lock();
    let mut seen = 0u64;
    let done = |seen: u64| t.count.is_some_and(|c| seen >= c);
    let idle = t.idle_timeout.unwrap_or(Duration::MAX);
    match &t.durable {
        Some(name) => {
            let consumer = stream
                .get_or_create_consumer(
                    name,
                    consumer::pull::Config {
                        durable_name: Some(name.clone()),
                        filter_subject: t.subject.clone(),
                        deliver_policy,
                        ack_policy: consumer::AckPolicy::Explicit,
                        ..Default::default()
                    },
                )
                .await
                .map_err(|e| format!("cannot create the durable consumer {name}: {e}"))?;
            let mut messages = consumer.messages().await.map_err(|e| e.to_string())?;
            while !done(seen) {
                let Ok(next) = tokio::time::timeout(idle, messages.next()).await else {
                    break;
                };
                let Some(m) = next else { break };
                let m = m.map_err(|e| e.to_string())?;
                writeln!(out, "{}", String::from_utf8_lossy(&m.payload))
                    .map_err(|e| e.to_string())?;
                out.flush().map_err(|e| e.to_string())?;
                m.ack().await.map_err(|e| e.to_string())?;
                seen += 1;
            }
        }
        None => {
            let consumer = stream
                .create_consumer(consumer::pull::OrderedConfig {
                    filter_subject: t.subject.clone(),
                    deliver_policy,
                    ..Default::default()
                })
                .await
                .map_err(|e| format!("cannot create a consumer: {e}"))?;
            let mut messages = consumer.messages().await.map_err(|e| e.to_string())?;
            while !done(seen) {
                let Ok(next) = tokio::time::timeout(idle, messages.next()).await else {
                    break;
                };
                let Some(m) = next else { break };
                let m = m.map_err(|e| e.to_string())?;
                writeln!(out, "{}", String::from_utf8_lossy(&m.payload))
                    .map_err(|e| e.to_string())?;
                out.flush().map_err(|e| e.to_string())?;
                seen += 1;
            }
        }
    }
    Ok(())
}
