//! `msgwire kafka`: JSON lines in and out of a Kafka topic, MessagePack on the wire
//! (like kcat, for msgwire's event log and any topic of MessagePack values).

use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use futures::stream::{FuturesOrdered, StreamExt};
use msgwire_http::json::{bin, decode_msgpack, from_json, to_json};
use msgwire_kafka::{
    Acked, ConsumeOptions, KafkaConfig, KafkaError, KafkaEventLog, Record, StartAt,
};
use serde_json::{json, Value as Json};
use tokio::io::AsyncBufReadExt;

/// Options of `msgwire kafka`.
#[derive(Debug, Args)]
pub struct KafkaArgs {
    #[command(subcommand)]
    pub command: KafkaCommand,
}

/// `msgwire kafka produce` / `consume`.
#[derive(Debug, Subcommand)]
pub enum KafkaCommand {
    /// Append JSON lines from stdin to TOPIC, each as one MessagePack record.
    ///
    /// Each non-empty line is one JSON value, encoded as MessagePack
    /// ({"$bin": "<base64>"} for binary, {"$ext": ...} for extension types). A line
    /// counts once the broker acknowledged it (acks=all); -v prints "PARTITION
    /// OFFSET" for each. The topic is created when it does not exist. Exit status 0
    /// when every line was acknowledged; 1 on a line that is not JSON or that the
    /// broker did not acknowledge in time (the lines before it were); 2 when the
    /// options are wrong.
    ///
    /// Examples:
    ///   echo '{"id": 1, "user_id": 42, "type": "login", "timestamp": 1700000000000}' \
    ///     | msgwire kafka produce msgwire.events --key-field user_id --timestamp-field timestamp -v
    ///   msgwire kafka produce measurements --brokers 10.0.0.5:9092 --key sensor-7 < values.jsonl
    Produce(ProduceArgs),
    /// Print TOPIC's records as JSON lines.
    ///
    /// Each line is {"partition", "offset", "key", "timestamp", "value"}: key as a
    /// string (or {"$bin": ...} when it is not UTF-8, null when there is none),
    /// timestamp in milliseconds since the Unix epoch, value decoded from MessagePack
    /// ({"$bin": ...} for binary). A record whose value is not MessagePack is printed
    /// with "value": {"$bin": "<base64 of the bytes>"} and an "error" saying why.
    ///
    /// Without --group every partition is read alone and nothing is committed; with
    /// --group the consumer joins that group and commits what it printed, so the next
    /// run in the group goes on after it. Starts at the end (only new records)
    /// unless --from-beginning. Stops after --count records, or with --exit at the
    /// end of every partition, else runs until Ctrl-C (exit status 130). Exit status
    /// 1 when the broker cannot be reached or the topic does not exist.
    ///
    /// Examples:
    ///   msgwire kafka consume msgwire.events --from-beginning --exit
    ///   msgwire kafka consume msgwire.events --group audit --count 10
    Consume(ConsumeArgs),
}

/// What both take: where the broker is and how long to wait for it.
#[derive(Debug, Args)]
pub struct BrokerArgs {
    /// The topic.
    #[arg(value_name = "TOPIC")]
    pub topic: String,

    /// Bootstrap brokers, HOST:PORT[,HOST:PORT...].
    #[arg(
        long,
        value_name = "BROKERS",
        env = "MSGWIRE_KAFKA",
        default_value = msgwire_kafka::DEFAULT_BROKERS
    )]
    pub brokers: String,

    /// Bound on each wait for the broker, in milliseconds: a metadata or offset
    /// request, a group join, a record's acknowledgement (retrying meanwhile).
    #[arg(long, value_name = "MS", default_value_t = 10_000)]
    pub timeout_ms: u64,
}

impl BrokerArgs {
    fn config(&self) -> KafkaConfig {
        let timeout = Duration::from_millis(self.timeout_ms.max(1));
        KafkaConfig {
            brokers: self.brokers.clone(),
            topic: self.topic.clone(),
            client_id: "msgwire-cli".into(),
            request_timeout: timeout,
            delivery_timeout: timeout,
            session_timeout: Duration::from_secs(6),
            ..KafkaConfig::default()
        }
    }
}

/// Options of `msgwire kafka produce`.
#[derive(Debug, Args)]
pub struct ProduceArgs {
    #[command(flatten)]
    pub broker: BrokerArgs,

    /// The key of every record.
    #[arg(long, value_name = "KEY", conflicts_with = "key_field")]
    pub key: Option<String>,

    /// Take each record's key from this field of the line's JSON object (a string
    /// as it is, a number in decimal); lines without it get no key.
    #[arg(long, value_name = "FIELD")]
    pub key_field: Option<String>,

    /// Take each record's timestamp from this integer field (milliseconds since the
    /// Unix epoch) of the line's JSON object; else the time it is sent.
    #[arg(long, value_name = "FIELD")]
    pub timestamp_field: Option<String>,

    /// Partitions when the topic is created.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub partitions: i32,

    /// Print "PARTITION OFFSET" for each acknowledged line.
    #[arg(short, long)]
    pub verbose: bool,
}

/// Options of `msgwire kafka consume`.
#[derive(Debug, Args)]
pub struct ConsumeArgs {
    #[command(flatten)]
    pub broker: BrokerArgs,

    /// Start at the first record kept (with --group: where the group has no
    /// committed offset yet), instead of the end.
    #[arg(long)]
    pub from_beginning: bool,

    /// Consume as a member of this consumer group, committing what was printed.
    #[arg(long, value_name = "GROUP")]
    pub group: Option<String>,

    /// Stop after this many records.
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,

    /// Stop at the end of every partition instead of waiting for more.
    #[arg(long)]
    pub exit: bool,
}

/// Runs `msgwire kafka …`; the exit status.
pub async fn run(args: KafkaArgs) -> anyhow::Result<u8> {
    match args.command {
        KafkaCommand::Produce(args) => produce(args).await,
        KafkaCommand::Consume(args) => consume(args).await,
    }
}

/// A line's key: --key, or its --key-field.
fn key_of(args: &ProduceArgs, json: &Json) -> Option<Vec<u8>> {
    if let Some(key) = &args.key {
        return Some(key.clone().into_bytes());
    }
    let field = json.get(args.key_field.as_deref()?)?;
    match field {
        Json::String(s) => Some(s.clone().into_bytes()),
        Json::Number(n) => Some(n.to_string().into_bytes()),
        Json::Bool(b) => Some(b.to_string().into_bytes()),
        _ => None,
    }
}

async fn produce(args: ProduceArgs) -> anyhow::Result<u8> {
    let config = KafkaConfig {
        partitions: args.partitions.max(1),
        ..args.broker.config()
    };
    let log = KafkaEventLog::connect(config).await?;
    let topic = args.broker.topic.clone();
    log.ensure_topic()
        .await
        .with_context(|| format!("cannot use topic {topic:?}"))?;
    let stdin = tokio::io::BufReader::new(tokio::io::stdin());
    let mut lines = stdin.lines();
    // Up to this many records in flight at once; acknowledgements are reported in
    // line order (librdkafka keeps the order within a partition).
    const IN_FLIGHT: usize = 32;
    let mut pending = FuturesOrdered::new();
    let mut number = 0u64;
    let mut input_error = None;
    loop {
        while pending.len() >= IN_FLIGHT {
            if let Some(done) = pending.next().await {
                if !report(done, args.verbose)? {
                    return Ok(1);
                }
            }
        }
        let line = match lines.next_line().await {
            Ok(Some(line)) => line,
            Ok(None) => break,
            Err(e) => {
                input_error = Some(format!("reading stdin: {e}"));
                break;
            }
        };
        number += 1;
        if line.trim().is_empty() {
            continue;
        }
        let encoded = serde_json::from_str::<Json>(&line)
            .map_err(|e| e.to_string())
            .and_then(|json| {
                let value = from_json(&json)?;
                let mut bytes = Vec::new();
                rmpv::encode::write_value(&mut bytes, &value).map_err(|e| e.to_string())?;
                let timestamp = args
                    .timestamp_field
                    .as_deref()
                    .and_then(|f| json.get(f))
                    .and_then(Json::as_i64);
                Ok((key_of(&args, &json), bytes, timestamp))
            });
        let (key, bytes, timestamp) = match encoded {
            Ok(record) => record,
            Err(e) => {
                input_error = Some(format!("line {number} is not a JSON value: {e}"));
                break;
            }
        };
        let log = log.clone();
        pending.push_back(async move {
            let acked = log.append_record(key.as_deref(), &bytes, timestamp).await;
            (number, acked)
        });
    }
    while let Some(done) = pending.next().await {
        if !report(done, args.verbose)? {
            return Ok(1);
        }
    }
    if let Some(error) = input_error {
        eprintln!("msgwire kafka produce: {error}");
        return Ok(1);
    }
    Ok(0)
}

/// Prints one line's outcome; false when it was not acknowledged.
fn report(done: (u64, Result<Acked, KafkaError>), verbose: bool) -> anyhow::Result<bool> {
    match done {
        (_, Ok(acked)) => {
            if verbose {
                crate::print_line(&format!("{} {}", acked.partition, acked.offset))?;
            }
            Ok(true)
        }
        (number, Err(e)) => {
            eprintln!("msgwire kafka produce: line {number}: {e}");
            Ok(false)
        }
    }
}

/// A record as its JSON line.
fn record_json(record: &Record) -> Json {
    let key = match &record.key {
        None => Json::Null,
        Some(k) => match std::str::from_utf8(k) {
            Ok(text) => Json::String(text.to_owned()),
            Err(_) => bin(k),
        },
    };
    let mut line = json!({
        "partition": record.partition,
        "offset": record.offset,
        "key": key,
        "timestamp": record.timestamp,
    });
    let (value, error) = match &record.payload {
        None => (Json::Null, None),
        Some(bytes) => match decode_msgpack(bytes) {
            Ok(value) => (to_json(&value), None),
            Err(e) => (bin(bytes), Some(e)),
        },
    };
    line["value"] = value;
    if let Some(error) = error {
        line["error"] = Json::String(error);
    }
    line
}

async fn consume(args: ConsumeArgs) -> anyhow::Result<u8> {
    let mut interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .map_err(|e| anyhow::anyhow!("cannot listen for Ctrl-C: {e}"))?;
    let config = KafkaConfig {
        create_topic: false,
        ..args.broker.config()
    };
    let request_timeout = config.request_timeout;
    let log = KafkaEventLog::connect(config).await?;
    if args.count == Some(0) {
        return Ok(0);
    }
    let topic = &args.broker.topic;
    let options = ConsumeOptions {
        group: args.group.clone(),
        start: if args.from_beginning {
            StartAt::Beginning
        } else {
            StartAt::End
        },
        stop_at_end: args.exit,
    };
    let opened = tokio::select! {
        opened = log.consume(options) => opened,
        _ = interrupt.recv() => return Ok(130),
    };
    let mut records = match opened {
        Ok(records) => records,
        Err(e) => {
            eprintln!("msgwire kafka consume: cannot read topic {topic:?}: {e}");
            return Ok(1);
        }
    };
    let mut printed = 0u64;
    let status = loop {
        if args.count.is_some_and(|n| printed >= n) {
            break 0;
        }
        let next = tokio::select! {
            next = records.next() => next,
            _ = interrupt.recv() => break 130,
        };
        match next {
            None => break 0,
            Some(Ok(record)) => {
                crate::print_line(&record_json(&record).to_string())?;
                printed += 1;
            }
            Some(Err(e)) => {
                eprintln!("msgwire kafka consume: {e}");
                break 1;
            }
        }
    };
    if args.group.is_some() {
        if let Err(e) = records.commit(request_timeout).await {
            eprintln!("msgwire kafka consume: committing the group's offsets: {e}");
            return Ok(if status == 0 { 1 } else { status });
        }
    }
    Ok(status)
}
