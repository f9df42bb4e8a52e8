//! What survives a `kill -9`: the gateway runs as its own process here, so it can be killed.

use std::collections::{HashMap, HashSet};

use serde_json::json;

use crate::fixtures::Receiver;
use crate::helpers::{DEADLINE, eventually, free_port, fresh_database};
use crate::process::Process;

const A: &str = "+12015550101";
const ALICE: &str = "+12015550150";

#[tokio::test]
async fn events_survive_a_dead_receiver_and_a_killed_gateway() {
    wagate::app::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let (database_url, _guard) = fresh_database().await;
    let port = free_port();
    let receiver_port = free_port();
    // However long the 200 posts below take on this machine, the deliveries keep being
    // retried: the harness gives them a day (`webhooks.give_up_after`), not a count.
    let mut gateway = Process::start(port, dir.path(), &database_url, &[]).await;
    gateway.log_in(true).await;
    gateway
        .post("/api/v1/sandbox/accounts", json!({"phone": ALICE, "name": "Alice"}))
        .await
        .assert_status(201);
    gateway.pair(A).await;
    // The receiver is down: nothing listens on its port yet.
    let hook_url = format!("http://127.0.0.1:{receiver_port}/hook");
    gateway
        .post(
            "/api/v1/user/webhooks",
            json!({"url": hook_url, "services": ["message.received"]}),
        )
        .await
        .assert_status(201);
    let mut ids = Vec::new();
    for i in 0..200 {
        let resp = gateway
            .post(
                &format!("/api/v1/sandbox/phones/{A}/inbound"),
                json!({"from": ALICE, "message": format!("n{i}")}),
            )
            .await;
        resp.assert_status(200);
        assert_eq!(resp.body["delivered"], true, "stored before the answer");
        ids.push(resp.body["id"].as_str().unwrap().to_owned());
    }
    gateway.signal("-KILL");
    gateway.child.wait().unwrap();

    let receiver = Receiver::start_on(&format!("127.0.0.1:{receiver_port}")).await;
    let gateway = Process::start(port, dir.path(), &database_url, &[]).await;
    let hits = eventually(DEADLINE, || async {
        let hits = receiver.hits();
        let distinct: HashSet<&str> = hits.iter().map(|h| h.header("x-wagate-delivery")).collect();
        match distinct.len() {
            200.. => Ok(hits.clone()),
            n => Err(format!("only {n} of 200 events delivered")),
        }
    })
    .await;
    // Every message exactly once by delivery id (retries reuse the id), in order.
    let mut text_of_delivery: HashMap<String, String> = HashMap::new();
    let mut order = Vec::new();
    for hit in &hits {
        let body = hit.json();
        let text = body["data"]["text"].as_str().unwrap().to_owned();
        let delivery = hit.header("x-wagate-delivery").to_owned();
        let previous = text_of_delivery.insert(delivery, text.clone());
        assert!(
            previous.is_none() || previous.as_ref() == Some(&text),
            "a delivery id names one event"
        );
        if !order.contains(&text) {
            order.push(text);
        }
    }
    let expected: Vec<String> = (0..200).map(|i| format!("n{i}")).collect();
    assert_eq!(order, expected, "all 200, in order");
    let message_ids: HashSet<String> = hits
        .iter()
        .map(|h| h.json()["data"]["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(message_ids, ids.into_iter().collect::<HashSet<_>>());
    drop(gateway);
}
