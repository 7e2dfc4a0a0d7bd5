//! `msgwire gateway` in front of two separate `msgwire serve` processes — users in one,
//! orders in the other, the gateway in a third (issue 8, acceptance 1): every route
//! answers through it; the users process killed mid-test gives 502 and a degraded
//! `/health` at once while orders keep answering; started again on its port, the
//! gateway finds it by itself, without a restart.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Stdio};
use std::time::Instant;

use common::{http_request, msgwire, parse_listening, signal, wait_until, HttpAnswer, Serve};
use serde_json::json;

/// A running `msgwire gateway`, killed when dropped.
struct Gateway {
    child: Child,
    http: SocketAddr,
}

impl Gateway {
    fn start(upstreams: &[(&str, SocketAddr)]) -> Gateway {
        let mut cmd = msgwire();
        cmd.args([
            "gateway",
            "--http",
            "127.0.0.1:0",
            "--connect-timeout-ms",
            "300",
        ]);
        for (name, addr) in upstreams {
            cmd.args(["--upstream", &format!("{name}={addr}")]);
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let prefix = "msgwire gateway: http listening on ";
        let line = lines
            .by_ref()
            .map(Result::unwrap)
            .find(|l| l.starts_with(prefix))
            .expect("the gateway printed no HTTP address");
        // Keep draining stdout so the gateway never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        Gateway {
            child,
            http: parse_listening(&line, prefix),
        }
    }

    fn get(&self, path: &str, accept: &str) -> HttpAnswer {
        http_request(self.http, "GET", path, &[("Accept", accept)], &[])
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn msgpack_json(answer: &HttpAnswer) -> serde_json::Value {
    assert_eq!(answer.header("content-type"), Some("application/x-msgpack"));
    let value = rmpv::decode::read_value(&mut &answer.body[..]).unwrap();
    serde_json::to_value(&value).unwrap()
}

#[test]
fn a_gateway_over_two_services_survives_one_going_away() {
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let users = Serve::start(&["--data-dir", dirs[0].path().to_str().unwrap()]);
    let orders = Serve::start(&["--data-dir", dirs[1].path().to_str().unwrap()]);
    let users_addr = users.addr;
    let gateway = Gateway::start(&[("users", users_addr), ("orders", orders.addr)]);

    let alice = gateway.get("/api/users/1", "application/json");
    assert_eq!(alice.status, 200);
    assert_eq!(alice.json()["name"], "Alice");
    let packed = gateway.get("/api/msgpack/users/2", "application/x-msgpack");
    assert_eq!(msgpack_json(&packed)["name"], "Bob");
    let order = gateway.get("/orders/1001", "application/x-msgpack");
    assert_eq!(msgpack_json(&order)["id"], 1001);
    let dashboard = gateway.get("/api/dashboard/1", "application/json").json();
    assert_eq!(dashboard["user"]["name"], "Alice");
    assert!(dashboard["orders"]
        .as_array()
        .unwrap()
        .iter()
        .all(|o| o["userId"] == 1));
    let rpc = http_request(
        gateway.http,
        "POST",
        "/rpc/getOrder",
        &[("Content-Type", "application/json")],
        br#"{"id": 1002}"#,
    );
    assert_eq!(rpc.json()["id"], 1002);
    let health = gateway.get("/health", "application/json");
    assert_eq!(
        health.status,
        200,
        "{}",
        String::from_utf8_lossy(&health.body)
    );
    let body = health.json();
    assert_eq!(body["status"], "ok");
    assert_eq!(body["role"], "gateway");
    let names: Vec<_> = body["dependencies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].clone())
        .collect();
    assert_eq!(names, [json!("upstream orders"), json!("upstream users")]);

    // The users service dies.
    signal(users.pid(), "KILL");
    drop(users);
    let killed = Instant::now();
    let gone = gateway.get("/api/users/1", "application/json");
    println!(
        "first answer after the kill: {} in {:?}",
        gone.status,
        killed.elapsed()
    );
    assert_eq!(gone.status, 502);
    assert_eq!(gone.json()["code"], 14);
    let health = gateway.get("/health", "application/json");
    assert_eq!(health.status, 503);
    let body = health.json();
    assert_eq!(body["status"], "degraded");
    let states: Vec<_> = body["dependencies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["status"].clone())
        .collect();
    assert_eq!(states, [json!("ok"), json!("down")]);
    println!("degraded health {:?} after the kill", killed.elapsed());
    // Orders never noticed; the dashboard needs both and says which is missing.
    assert_eq!(
        msgpack_json(&gateway.get("/orders/1003", "application/x-msgpack"))["id"],
        1003
    );
    let dashboard = gateway.get("/api/dashboard/1", "application/json");
    assert_eq!(dashboard.status, 502);
    assert!(dashboard.json()["error"]
        .as_str()
        .unwrap()
        .contains("users"));

    // Back on the same port: the gateway reconnects by itself.
    let again = Serve::start(&[
        "--rpc",
        &users_addr.to_string(),
        "--data-dir",
        dirs[0].path().to_str().unwrap(),
    ]);
    assert_eq!(again.addr, users_addr);
    let back = wait_until(
        "the users service to answer through the gateway again",
        || {
            let answer = gateway.get("/api/users/3", "application/json");
            (answer.status == 200).then_some(answer)
        },
    );
    assert_eq!(back.json()["name"], "Charlie");
    let health = gateway.get("/health", "application/json");
    assert_eq!(health.status, 200);
    assert_eq!(health.json()["status"], "ok");
}
