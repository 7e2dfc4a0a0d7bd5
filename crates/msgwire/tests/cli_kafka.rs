//! `msgwire kafka produce` and `consume` against a real broker (Tansu): JSON lines
//! round trip through MessagePack records, consumer groups resume, records that are
//! not MessagePack are printed (not a crash), errors exit non-zero with a message.
#![allow(clippy::unwrap_used, clippy::expect_used)]
// common and the broker helper both include tests/support/peer_programs.rs.
#![allow(clippy::duplicate_mod)]

mod common;
#[path = "../../msgwire-kafka/tests/support/mod.rs"]
mod kafka_support;

use std::io::Write;
use std::process::{Output, Stdio};
use std::sync::mpsc;

use common::{msgwire, run, stderr, stdout, PATIENCE};
use kafka_support::Broker;
use serde_json::{json, Value};

/// `msgwire ARGS` with `input` on stdin, to completion (killed past PATIENCE).
fn msgwire_with_input(args: &[&str], input: &str) -> Output {
    let mut child = msgwire()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let out = child.wait_with_output();
        let _ = tx.send(());
        out
    });
    if rx.recv_timeout(PATIENCE).is_err() {
        common::signal(pid, "KILL");
        panic!("msgwire {args:?} did not finish within {PATIENCE:?}");
    }
    waiter.join().unwrap().unwrap()
}

fn msgwire_args(args: &[&str]) -> Output {
    let mut cmd = msgwire();
    cmd.args(args);
    run(cmd)
}

fn json_lines(out: &Output) -> Vec<Value> {
    stdout(out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect()
}

#[test]
fn produce_then_consume_round_trips_json_lines() {
    let broker = Broker::start();
    let brokers = broker.brokers();
    let values = [
        json!({"id": 1, "user_id": 42, "type": "login", "timestamp": 1_700_000_000_000_i64}),
        json!({"id": 2, "user_id": 7, "type": "profile_update", "timestamp": 1_700_000_000_001_i64,
               "data": {"name": "Zoë", "tags": ["a", "b"], "ratio": 0.25, "none": null}}),
        json!({"user_id": "u-9", "blob": {"$bin": "AAEC/w=="}, "big": 18_446_744_073_709_551_615_u64, "neg": -5}),
        json!([1, "two", false]),
    ];
    let mut input = String::new();
    for v in &values {
        input.push_str(&v.to_string());
        input.push('\n');
    }
    input.push('\n'); // blank lines are skipped
    let out = msgwire_with_input(
        &[
            "kafka",
            "produce",
            "cli.events",
            "--brokers",
            &brokers,
            "--key-field",
            "user_id",
            "--timestamp-field",
            "timestamp",
            "-v",
        ],
        &input,
    );
    assert!(out.status.success(), "produce: {}", stderr(&out));
    assert_eq!(stdout(&out), "0 0\n0 1\n0 2\n0 3\n");

    let out = msgwire_args(&[
        "kafka",
        "consume",
        "cli.events",
        "--brokers",
        &brokers,
        "--from-beginning",
        "--count",
        "4",
    ]);
    assert!(out.status.success(), "consume: {}", stderr(&out));
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 4, "{lines:?}");
    for (i, (line, value)) in lines.iter().zip(&values).enumerate() {
        assert_eq!(line["value"], *value, "line {i}");
        assert_eq!(line["partition"], json!(0));
        assert_eq!(line["offset"], json!(i));
        assert!(line.get("error").is_none(), "{line}");
    }
    assert_eq!(lines[0]["key"], json!("42"));
    assert_eq!(lines[1]["key"], json!("7"));
    assert_eq!(lines[2]["key"], json!("u-9"));
    assert_eq!(lines[3]["key"], Value::Null);
    assert_eq!(lines[0]["timestamp"], json!(1_700_000_000_000_i64));
    assert_eq!(lines[1]["timestamp"], json!(1_700_000_000_001_i64));

    // --exit stops at the end with the same lines; the broker from the environment.
    let mut cmd = msgwire();
    cmd.args([
        "kafka",
        "consume",
        "cli.events",
        "--from-beginning",
        "--exit",
    ])
    .env("MSGWIRE_KAFKA", &brokers);
    let again = run(cmd);
    assert!(again.status.success(), "consume --exit: {}", stderr(&again));
    assert_eq!(json_lines(&again), lines);
}

#[test]
fn a_group_goes_on_where_it_stopped() {
    let broker = Broker::start();
    let brokers = broker.brokers();
    let input = "{\"n\": 1}\n{\"n\": 2}\n{\"n\": 3}\n";
    let out = msgwire_with_input(
        &[
            "kafka",
            "produce",
            "cli.group",
            "--brokers",
            &brokers,
            "--key",
            "k",
        ],
        input,
    );
    assert!(out.status.success(), "produce: {}", stderr(&out));
    assert_eq!(stdout(&out), "", "without -v nothing is printed");

    let consume = |count: &str| {
        msgwire_args(&[
            "kafka",
            "consume",
            "cli.group",
            "--brokers",
            &brokers,
            "--group",
            "cli-g",
            "--from-beginning",
            "--count",
            count,
        ])
    };
    let first = consume("2");
    assert!(first.status.success(), "{}", stderr(&first));
    let values: Vec<Value> = json_lines(&first)
        .iter()
        .map(|l| l["value"].clone())
        .collect();
    assert_eq!(values, [json!({"n": 1}), json!({"n": 2})]);
    let second = consume("1");
    assert!(second.status.success(), "{}", stderr(&second));
    let values: Vec<Value> = json_lines(&second)
        .iter()
        .map(|l| l["value"].clone())
        .collect();
    assert_eq!(values, [json!({"n": 3})]);
    assert_eq!(json_lines(&second)[0]["key"], json!("k"));
}

#[test]
fn a_record_that_is_not_messagepack_is_printed_with_an_error() {
    let broker = Broker::start();
    let brokers = broker.brokers();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let log = msgwire_kafka::KafkaEventLog::connect(msgwire_kafka::KafkaConfig {
            brokers: brokers.clone(),
            topic: "cli.raw".into(),
            ..msgwire_kafka::KafkaConfig::default()
        })
        .await
        .unwrap();
        // 0xc1 is never used in MessagePack; then a good value after it.
        log.append("x", &[0xc1, 0x01]).await.unwrap();
        log.append("x", &[0x93, 0x01, 0x02, 0x03]).await.unwrap();
        // Two values back to back: not one MessagePack value.
        log.append("x", &[0x01, 0x02]).await.unwrap();
    });
    let out = msgwire_args(&[
        "kafka",
        "consume",
        "cli.raw",
        "--brokers",
        &brokers,
        "--from-beginning",
        "--exit",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert_eq!(lines[0]["value"], json!({"$bin": "wQE="}));
    assert!(
        lines[0]["error"]
            .as_str()
            .unwrap()
            .contains("not MessagePack"),
        "{}",
        lines[0]
    );
    assert_eq!(lines[1]["value"], json!([1, 2, 3]));
    assert!(lines[1].get("error").is_none());
    assert_eq!(lines[2]["value"], json!({"$bin": "AQI="}));
    assert!(lines[2].get("error").is_some());
}

#[test]
fn errors_say_what_went_wrong_and_exit_non_zero() {
    let broker = Broker::start();
    let brokers = broker.brokers();

    // A line that is not JSON: the lines before it were acknowledged.
    let out = msgwire_with_input(
        &["kafka", "produce", "cli.bad", "--brokers", &brokers, "-v"],
        "{\"ok\": 1}\nnot json\n{\"ok\": 2}\n",
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("line 2 is not a JSON value"),
        "{}",
        stderr(&out)
    );
    assert_eq!(stdout(&out), "0 0\n");

    // A topic that does not exist.
    let out = msgwire_args(&[
        "kafka",
        "consume",
        "no.such.topic",
        "--brokers",
        &brokers,
        "--exit",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("does not exist"), "{}", stderr(&out));

    // A broker that is not there: a message naming it, within the timeout.
    let down = format!("127.0.0.1:{}", kafka_support::free_port());
    let out = msgwire_with_input(
        &[
            "kafka",
            "produce",
            "cli.down",
            "--brokers",
            &down,
            "--timeout-ms",
            "2000",
        ],
        "{\"n\": 1}\n",
    );
    assert!(!out.status.success());
    assert!(stderr(&out).contains(&down), "{}", stderr(&out));
    let out = msgwire_args(&[
        "kafka",
        "consume",
        "cli.down",
        "--brokers",
        &down,
        "--timeout-ms",
        "2000",
        "--exit",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains(&down), "{}", stderr(&out));

    // --help explains itself.
    let help = msgwire_args(&["kafka", "consume", "--help"]);
    assert!(help.status.success());
    for needle in [
        "--from-beginning",
        "--group",
        "--count",
        "--exit",
        "--timeout-ms",
        "Examples",
    ] {
        assert!(
            stdout(&help).contains(needle),
            "{needle} missing from:\n{}",
            stdout(&help)
        );
    }
}
