//! The shared backends of `msgwire serve`: with `--redis`, the cache and the bus (chat
//! rooms, live events) on Redis, shared by every process on that Redis; with
//! `--kafka`, the event log on a Kafka topic, so that `subscribeEvents` with a
//! `start_time` replays what outlived the process.
//!
//! ```text
//!              ┌────────── msgwire serve ───────────┐
//!  getUser ──► │ cache ──────────────► RedisCache ───┼──► redis  GET/SET users:1 (MessagePack)
//!  chat    ──► │ hub ─ local members  RedisBus ──────┼──► redis  PUBLISH chat:<room>
//!  events  ──► │ store ─ bus ─────────┘              │
//!              │        └ log ─► Kafka topic ────────┼──► broker (key = user id)
//!              └─────────────────────────────────────┘
//! ```
//!
//! Nothing here waits for a backend at start: a server whose Redis or broker is down
//! starts degraded (its `/health` says which) and connects when they come.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use futures::{FutureExt, StreamExt};
use msgwire_http::app::{AppConfig, Check};
use msgwire_kafka::{Health, KafkaConfig, KafkaEventLog};
use msgwire_redis::{RedisBus, RedisBusConfig, RedisCache, RedisCacheConfig};
use msgwire_services::bus::Bus;
use msgwire_services::cache::Cache;
use msgwire_services::events::{read_record, topic, EventStore};
use msgwire_services::Services;

/// The backend flags of `msgwire serve`.
#[derive(Debug, Args)]
pub(crate) struct BackendArgs {
    /// Share the cache and the bus through the Redis at URL
    /// (redis://[user:password@]host:port[/db]): getUser's cache, chat rooms and live
    /// events then span every `msgwire serve` on that Redis. Values are MessagePack
    /// under their keys (users:1); chat and events travel on pub/sub channels
    /// (chat:<room>, events:<user_id>). Redis down: /health is degraded, the cache
    /// computes, chat goes on within the process; all reconnects by itself.
    #[arg(long, env = "MSGWIRE_REDIS", value_name = "URL")]
    redis: Option<String>,

    /// Put this before every Redis key and channel, to share one Redis between
    /// deployments (e.g. "prod:").
    #[arg(
        long,
        env = "MSGWIRE_REDIS_PREFIX",
        value_name = "PREFIX",
        default_value = "",
        requires = "redis"
    )]
    redis_prefix: String,

    /// Append every event to a Kafka topic on these brokers (host:port[,host:port…]),
    /// as MessagePack with the user id as key, and answer publishEvent once the broker
    /// acknowledged it: subscribeEvents with a start_time then replays from the topic,
    /// so history outlives the process. Without --redis, each process also follows the
    /// topic in a consumer group of its own (--kafka-group plus its id), so that live
    /// events span processes. Broker down: /health is degraded, publishEvent answers
    /// UNAVAILABLE (14); all reconnects by itself.
    #[arg(long, env = "MSGWIRE_KAFKA", value_name = "BROKERS")]
    kafka: Option<String>,

    /// The Kafka topic of the events (created if missing).
    #[arg(long, env = "MSGWIRE_KAFKA_TOPIC", value_name = "TOPIC",
          default_value = msgwire_kafka::DEFAULT_TOPIC, requires = "kafka")]
    kafka_topic: String,

    /// The consumer group prefix of the live follower: each process joins
    /// "<GROUP>-<its id>", so that every process sees every event.
    #[arg(
        long,
        env = "MSGWIRE_KAFKA_GROUP",
        value_name = "GROUP",
        default_value = "msgwire-serve",
        requires = "kafka"
    )]
    kafka_group: String,
}

/// The backends `msgwire serve` was asked for, made.
pub(crate) struct Backends {
    cache: Option<Arc<dyn Cache>>,
    bus: Option<Arc<dyn Bus>>,
    log: Option<(KafkaEventLog, String)>,
    checks: Vec<(String, Check)>,
    described: Vec<String>,
}

impl BackendArgs {
    /// Makes the backends (without waiting for them to answer). Errors only for
    /// settings that can never work: a malformed URL, say.
    pub(crate) async fn open(&self, cache_ttl: Duration) -> anyhow::Result<Backends> {
        let mut backends = Backends {
            cache: None,
            bus: None,
            log: None,
            checks: Vec::new(),
            described: Vec::new(),
        };
        if let Some(url) = &self.redis {
            let cache = RedisCache::new(RedisCacheConfig {
                key_prefix: self.redis_prefix.clone(),
                default_ttl: cache_ttl,
                ..RedisCacheConfig::new(url.clone())
            })
            .with_context(|| format!("--redis {url}"))?;
            let bus = RedisBus::new(RedisBusConfig {
                channel_prefix: self.redis_prefix.clone(),
                // Headroom for bursts: a chat hub's own listener gets its batches back.
                capacity: BUS_CAPACITY,
                ..RedisBusConfig::new(url.clone())
            })
            .with_context(|| format!("--redis {url}"))?;
            let shown = redacted(url);
            let checked = bus.clone();
            let detail = shown.clone();
            let check: Check = Arc::new(move || {
                let bus = checked.clone();
                let detail = detail.clone();
                async move {
                    bus.check()
                        .await
                        .map(|()| detail)
                        .map_err(|e| e.to_string())
                }
                .boxed()
            });
            backends.checks.push(("redis".into(), check));
            backends
                .described
                .push(format!("redis {shown} (cache, chat, events)"));
            backends.cache = Some(Arc::new(cache));
            backends.bus = Some(Arc::new(bus));
        }
        if let Some(brokers) = &self.kafka {
            let log = KafkaEventLog::connect(
                KafkaConfig::new(brokers.clone()).with_topic(self.kafka_topic.clone()),
            )
            .await
            .with_context(|| format!("--kafka {brokers}"))?;
            let checked = log.clone();
            let topic = self.kafka_topic.clone();
            let check: Check = Arc::new(move || {
                let log = checked.clone();
                let topic = topic.clone();
                async move {
                    match log.check().await {
                        Ok(Health {
                            brokers,
                            partitions: Some(partitions),
                        }) => Ok(format!(
                            "{brokers} broker(s), topic {topic} with {partitions} partition(s)"
                        )),
                        Ok(Health { brokers, .. }) => {
                            Err(format!("{brokers} broker(s), but no topic {topic} yet"))
                        }
                        Err(e) => Err(e.to_string()),
                    }
                }
                .boxed()
            });
            backends.checks.push(("kafka".into(), check));
            backends.described.push(format!(
                "kafka {brokers} (event log, topic {})",
                self.kafka_topic
            ));
            backends.log = Some((log, self.kafka_group.clone()));
        }
        Ok(backends)
    }
}

impl Backends {
    /// The bus events and chat rooms go on: a shared one, or `None` for in-process.
    pub(crate) fn bus(&self) -> Option<Arc<dyn Bus>> {
        self.bus.clone()
    }

    /// `services` reading through the shared cache and writing events to the log, as
    /// far as there are such; with a log but no shared bus, a task that follows the log
    /// and publishes other processes' events on the services' in-process bus.
    pub(crate) fn apply(&self, services: Services) -> Services {
        let mut services = match &self.cache {
            Some(cache) => services.with_cache(Arc::clone(cache)),
            None => services,
        };
        if let Some((log, group)) = &self.log {
            services = services.with_event_log(Arc::new(log.clone()));
            if self.bus.is_none() {
                let store = Arc::clone(services.events());
                let group = format!("{group}-{:016x}", store.origin());
                tokio::spawn(follow(log.clone(), group, store));
            }
        }
        services
    }

    /// `config` with a `/health` check of each backend.
    pub(crate) fn checked(&self, config: AppConfig) -> AppConfig {
        self.checks.iter().fold(config, |config, (name, check)| {
            config.with_check(name.clone(), Arc::clone(check))
        })
    }

    /// One line per backend, for the start-up banner (passwords hidden).
    pub(crate) fn described(&self) -> &[String] {
        &self.described
    }
}

/// Follows the event log in consumer group `group` for as long as the process runs,
/// publishing every event another process recorded on `store`'s bus, where this
/// process's subscribers are. Joins again, after a pause, whenever the stream fails.
async fn follow(log: KafkaEventLog, group: String, store: Arc<EventStore>) {
    let mut pause = FOLLOW_PAUSE_MIN;
    loop {
        match log.live(&group).await {
            Ok(mut records) => {
                pause = FOLLOW_PAUSE_MIN;
                while let Some(record) = records.next().await {
                    let record = match record {
                        Ok(record) => record,
                        Err(e) => {
                            tracing::warn!("event log: following {group}: {e}");
                            break;
                        }
                    };
                    let Some(payload) = record.payload else {
                        continue;
                    };
                    let Some((event, origin)) = read_record(&payload) else {
                        tracing::debug!("event log: offset {} is not an event", record.offset);
                        continue;
                    };
                    // This process's own events reached its bus when they were published.
                    if origin == store.origin() {
                        continue;
                    }
                    if let Err(e) = store.bus().publish(&topic(event.user_id), payload).await {
                        tracing::warn!("event log: cannot deliver event {}: {e}", event.id);
                    }
                }
            }
            Err(e) => tracing::warn!("event log: cannot follow in group {group}: {e}"),
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(FOLLOW_PAUSE_MAX);
    }
}

/// Payloads buffered per topic for this process's subscribers of the Redis bus (a
/// few dozen bytes a slot, for topics with subscribers only).
const BUS_CAPACITY: usize = 64;

/// The first pause before the follower joins again: 200 ms …
const FOLLOW_PAUSE_MIN: Duration = Duration::from_millis(200);
/// … doubled after each failure up to this.
const FOLLOW_PAUSE_MAX: Duration = Duration::from_secs(5);

/// `url` with any password replaced by `***`, for logs and `/health`.
fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.split_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
            format!("{scheme}://{user}:***@{host}")
        }
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::redacted;

    #[test]
    fn passwords_are_hidden() {
        assert_eq!(redacted("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
        assert_eq!(
            redacted("redis://app:s3cret@cache:6379/2"),
            "redis://app:***@cache:6379/2"
        );
        assert_eq!(redacted("redis://:s3cret@cache"), "redis://:***@cache");
        assert_eq!(redacted("not a url"), "not a url");
    }
}
