//! `WebhookDispatcher`: drains the outbox. Deliveries wait in lanes, one lane per
//! (webhook, phone); a lane sends its oldest delivery and only moves on when it is
//! delivered or given up, so each phone's events arrive in order, while lanes run side by
//! side. Failures retry with exponential backoff and jitter for `webhooks.give_up_after`
//! (and at most `webhooks.max_attempts` times, when set).
//! Every delivery is in the database before it is dispatched, so a crash or `kill -9`
//! only delays delivery: at start-up each lane with pending deliveries is found and read.
//! A lane holds at most `webhooks.held_per_lane` deliveries in memory; beyond that (a
//! receiver down for days) the rest wait in the database only, and the lane reads its
//! next page, oldest first, once half of what it holds has drained. One stuck receiver
//! never holds back another lane.
//! Delivered marks are written in short batches; a crash before a batch is written means
//! a delivery is sent again, with the same id.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};

use super::Shared;
use super::outbox::signature;
use super::supervisor::backoff;
use crate::db::webhooks::{self, delivery};
use crate::net;

/// How long delivered marks are gathered before they are written together.
const FLUSH_EVERY: Duration = Duration::from_millis(20);
/// How soon a page is read again after the database failed to give one.
const REFILL_RETRY: Duration = Duration::from_secs(1);

pub type LaneKey = (String, Option<String>);

pub enum DispatcherMsg {
    /// Deliveries just committed (or put back by a person).
    Deliver(Vec<delivery::Model>),
    /// An attempt finished (internal).
    Attempted { lane: LaneKey, id: i64, outcome: Outcome },
    /// A lane's retry time came (internal).
    Wake(LaneKey),
    /// Write the delivered marks gathered so far (internal).
    Flush,
    /// Read the next page of deliveries that wait only in the database (internal).
    Refill,
    /// A test ping, recorded by [`Outbox::record_ping`](super::outbox::Outbox::record_ping):
    /// one attempt, logged, and its outcome and duration answered; never retried.
    Ping {
        row: delivery::Model,
        reply: RpcReplyPort<(Outcome, Duration)>,
    },
}

#[derive(Debug, Clone)]
pub enum Outcome {
    Delivered(u16),
    Failed {
        code: Option<u16>,
        error: String,
    },
    /// The webhook was deleted meanwhile.
    Gone,
}

pub struct WebhookDispatcher;

#[derive(Default)]
struct Lane {
    queue: VecDeque<delivery::Model>,
    /// An attempt is running, or a retry is scheduled.
    busy: bool,
    /// While some of the lane's pending deliveries are only in the database: those with
    /// an id up to this one are held (or done); the rest are read from here on.
    backlog: Option<i64>,
}

pub struct DispatcherState {
    shared: Arc<Shared>,
    client: net::Outbound,
    lanes: HashMap<LaneKey, Lane>,
    /// Deliveries queued or in flight, so a delivery is never queued twice.
    known: HashSet<i64>,
    delivered: Vec<(i64, i32, u16)>,
    in_flight: usize,
    /// Lanes ready to send but held back by `webhooks.max_in_flight`.
    waiting: VecDeque<LaneKey>,
    /// Lanes that may need their next page read from the database.
    refill: HashSet<LaneKey>,
    /// A page read is scheduled after a database error.
    refill_scheduled: bool,
}

impl Actor for WebhookDispatcher {
    type Msg = DispatcherMsg;
    type State = DispatcherState;
    type Arguments = Arc<Shared>;

    async fn pre_start(
        &self,
        myself: ActorRef<DispatcherMsg>,
        shared: Arc<Shared>,
    ) -> Result<DispatcherState, ActorProcessingErr> {
        let config = &shared.config;
        let client = net::Outbound::new(
            net::UrlPolicy::from_config(&config.network),
            config.proxy().as_ref(),
            config.network.connect_timeout,
            config.webhooks.timeout,
        )?;
        let mut state = DispatcherState {
            shared,
            client,
            lanes: HashMap::new(),
            known: HashSet::new(),
            delivered: Vec::new(),
            in_flight: 0,
            waiting: VecDeque::new(),
            refill: HashSet::new(),
            refill_scheduled: false,
        };
        for (webhook_id, phone, first) in webhooks::pending_lanes(&state.shared.db).await? {
            let key = (webhook_id, phone);
            let lane = Lane {
                backlog: Some(first.saturating_sub(1)),
                ..Lane::default()
            };
            state.lanes.insert(key.clone(), lane);
            state.refill.insert(key);
        }
        state.refill(&myself).await;
        if !state.known.is_empty() {
            tracing::info!(pending = state.known.len(), "resuming webhook deliveries");
        }
        Ok(state)
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<DispatcherMsg>,
        state: &mut DispatcherState,
    ) -> Result<(), ActorProcessingErr> {
        state.flush().await;
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<DispatcherMsg>,
        msg: DispatcherMsg,
        state: &mut DispatcherState,
    ) -> Result<(), ActorProcessingErr> {
        state.handle(&myself, msg).await;
        state.refill(&myself).await;
        let pending = state.known.len() as u64;
        state
            .shared
            .outbox
            .pending
            .store(pending, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }
}

impl DispatcherState {
    async fn handle(&mut self, myself: &ActorRef<DispatcherMsg>, msg: DispatcherMsg) {
        let state = self;
        match msg {
            DispatcherMsg::Deliver(rows) => state.enqueue(myself, rows),
            DispatcherMsg::Attempted { lane, id, outcome } => state.attempted(myself, lane, id, outcome).await,
            DispatcherMsg::Wake(lane) => {
                if let Some(entry) = state.lanes.get_mut(&lane) {
                    entry.busy = false;
                }
                state.kick(myself, lane);
            }
            DispatcherMsg::Flush => state.flush().await,
            DispatcherMsg::Refill => state.refill_scheduled = false,
            DispatcherMsg::Ping { row, reply } => state.ping(row, reply),
        }
    }

    /// Reads the next page of every lane that has drained to half of what it may hold.
    async fn refill(&mut self, myself: &ActorRef<DispatcherMsg>) {
        if self.refill_scheduled || self.refill.is_empty() {
            return;
        }
        let per_lane = self.shared.config.webhooks.held_per_lane;
        let mut keys: VecDeque<LaneKey> = std::mem::take(&mut self.refill).into_iter().collect();
        while let Some(key) = keys.pop_front() {
            let Some(lane) = self.lanes.get(&key) else { continue };
            let Some(after) = lane.backlog.filter(|_| lane.queue.len() <= per_lane / 2) else {
                continue;
            };
            let room = per_lane.saturating_sub(lane.queue.len());
            let page =
                match webhooks::pending_in_lane(&self.shared.db, &key.0, key.1.as_deref(), after, room as u64).await {
                    Ok(page) => page,
                    Err(err) => {
                        tracing::warn!(error = %err, "cannot read waiting webhook deliveries; retrying");
                        // This lane and every one not read yet are tried again.
                        self.refill.insert(key);
                        self.refill.extend(keys);
                        self.refill_scheduled = true;
                        myself.send_after(REFILL_RETRY, || DispatcherMsg::Refill);
                        return;
                    }
                };
            let Some(lane) = self.lanes.get_mut(&key) else { continue };
            lane.backlog = match page.last() {
                Some(last) if page.len() == room => Some(last.id),
                _ => None,
            };
            for row in page {
                if self.known.insert(row.id) {
                    lane.queue.push_back(row);
                }
            }
            self.kick(myself, key);
        }
    }

    fn enqueue(&mut self, myself: &ActorRef<DispatcherMsg>, rows: Vec<delivery::Model>) {
        let per_lane = self.shared.config.webhooks.held_per_lane;
        let mut touched = Vec::new();
        for row in rows {
            if self.known.contains(&row.id) {
                continue;
            }
            let key = (row.webhook_id.clone(), row.phone.clone());
            let lane = self.lanes.entry(key.clone()).or_default();
            if lane.backlog.is_some() || lane.queue.len() >= per_lane {
                // It waits in the database; the lane's next page starts at or before it.
                let before = row.id.saturating_sub(1);
                lane.backlog = Some(lane.backlog.map_or(before, |cursor| cursor.min(before)));
                self.refill.insert(key);
                continue;
            }
            self.known.insert(row.id);
            lane.queue.push_back(row);
            touched.push(key);
        }
        for key in touched {
            self.kick(myself, key);
        }
    }

    /// Starts the lane's next attempt if it is idle, due and under the in-flight cap.
    fn kick(&mut self, myself: &ActorRef<DispatcherMsg>, key: LaneKey) {
        let max_in_flight = self.shared.config.webhooks.max_in_flight;
        let Some(lane) = self.lanes.get_mut(&key) else { return };
        if lane.busy {
            return;
        }
        let Some(head) = lane.queue.front() else {
            if lane.backlog.is_some() {
                self.refill.insert(key);
            } else {
                self.lanes.remove(&key);
            }
            return;
        };
        let wait = (head.next_attempt_at - Utc::now()).to_std().unwrap_or(Duration::ZERO);
        if !wait.is_zero() {
            lane.busy = true;
            let wake = key.clone();
            myself.send_after(wait, move || DispatcherMsg::Wake(wake));
            return;
        }
        if self.in_flight >= max_in_flight {
            if !self.waiting.contains(&key) {
                self.waiting.push_back(key);
            }
            return;
        }
        lane.busy = true;
        self.in_flight += 1;
        let row = head.clone();
        let target = self.shared.outbox.target(&row.webhook_id);
        let client = self.client.clone();
        let myself = myself.clone();
        tokio::spawn(async move {
            let outcome = match target {
                Some(target) => attempt(&client, &target.url, &target.secret, &row).await,
                None => Outcome::Gone,
            };
            let _ = myself.cast(DispatcherMsg::Attempted {
                lane: key,
                id: row.id,
                outcome,
            });
        });
    }

    async fn attempted(&mut self, myself: &ActorRef<DispatcherMsg>, key: LaneKey, id: i64, outcome: Outcome) {
        self.in_flight = self.in_flight.saturating_sub(1);
        let config = self.shared.config.webhooks.clone();
        if let Some(lane) = self.lanes.get_mut(&key) {
            lane.busy = false;
            if lane.backlog.is_some() {
                self.refill.insert(key.clone());
            }
            if let Some(mut head) = lane.queue.pop_front().filter(|h| h.id == id) {
                let attempts = head.attempts + 1;
                let next = next_attempt(&config, &head, attempts);
                let metric = match &outcome {
                    Outcome::Delivered(_) => "delivered",
                    Outcome::Gone => "dropped",
                    Outcome::Failed { .. } if next.is_none() => "given_up",
                    Outcome::Failed { .. } => "failed",
                };
                self.shared
                    .metrics
                    .webhook_deliveries
                    .get_or_create(&crate::metrics::OutcomeLabels { outcome: metric })
                    .inc();
                match outcome {
                    Outcome::Delivered(code) => {
                        // Still known until its mark is written, so that a page read
                        // meanwhile does not take it for pending.
                        if self.delivered.is_empty() {
                            myself.send_after(FLUSH_EVERY, || DispatcherMsg::Flush);
                        }
                        self.delivered.push((id, attempts, code));
                    }
                    Outcome::Gone => {
                        self.known.remove(&id);
                    }
                    Outcome::Failed { code, error } => {
                        if let Err(err) =
                            webhooks::record_failure(&self.shared.db, id, attempts, code, &error, next).await
                        {
                            tracing::warn!(error = %err, "cannot record a failed webhook attempt");
                        }
                        if let Some(next) = next {
                            tracing::debug!(id, attempts, %error, "webhook delivery failed; retrying");
                            head.attempts = attempts;
                            head.next_attempt_at = next;
                            lane.queue.push_front(head);
                        } else {
                            tracing::warn!(id, attempts, %error, "webhook delivery failed for good");
                            self.known.remove(&id);
                        }
                    }
                }
            }
        }
        self.kick(myself, key);
        while self.in_flight < config.max_in_flight {
            let Some(next) = self.waiting.pop_front() else { break };
            self.kick(myself, next);
        }
    }

    /// Sends a test ping beside the lanes (it is not a phone's event, and the person
    /// waits for it) and logs how it went before answering.
    fn ping(&self, row: delivery::Model, reply: RpcReplyPort<(Outcome, Duration)>) {
        let target = self.shared.outbox.target(&row.webhook_id);
        let client = self.client.clone();
        let shared = Arc::clone(&self.shared);
        tokio::spawn(async move {
            let started = std::time::Instant::now();
            let outcome = match target {
                Some(target) => attempt(&client, &target.url, &target.secret, &row).await,
                None => Outcome::Gone,
            };
            let took = started.elapsed();
            let (logged, metric) = match &outcome {
                Outcome::Delivered(code) => (
                    webhooks::mark_delivered(&shared.db, &[(row.id, 1, *code)]).await,
                    "delivered",
                ),
                Outcome::Failed { code, error } => (
                    webhooks::record_failure(&shared.db, row.id, 1, *code, error, None).await,
                    "given_up",
                ),
                Outcome::Gone => (Ok(()), "dropped"),
            };
            if let Err(err) = logged {
                tracing::warn!(error = %err, "cannot log a webhook test ping");
            }
            shared
                .metrics
                .webhook_deliveries
                .get_or_create(&crate::metrics::OutcomeLabels { outcome: metric })
                .inc();
            let _ = reply.send((outcome, took));
        });
    }

    async fn flush(&mut self) {
        if self.delivered.is_empty() {
            return;
        }
        let done = std::mem::take(&mut self.delivered);
        if let Err(err) = webhooks::mark_delivered(&self.shared.db, &done).await {
            // They stay pending in the database and are sent again after a restart.
            tracing::warn!(error = %err, count = done.len(), "cannot mark webhook deliveries delivered");
        }
        for (id, _, _) in &done {
            self.known.remove(id);
        }
    }
}

/// When to try a failed delivery again after its `attempts`-th attempt, or `None` to give
/// up: the backoff, but never past `give_up_after` from the start of its run of attempts
/// (the last try is made right then), and never beyond `max_attempts` when that is set.
fn next_attempt(
    config: &crate::config::WebhooksConfig,
    row: &delivery::Model,
    attempts: i32,
) -> Option<chrono::DateTime<Utc>> {
    let attempts = attempts.unsigned_abs();
    if config.max_attempts > 0 && attempts >= config.max_attempts {
        return None;
    }
    let now = Utc::now();
    let next = now + backoff(config.backoff_min, config.backoff_max, attempts);
    // A give-up time beyond what a date can hold is no give-up time.
    let Some(give_up_at) = chrono::TimeDelta::from_std(config.give_up_after)
        .ok()
        .and_then(|after| row.tried_since().checked_add_signed(after))
    else {
        return Some(next);
    };
    (now < give_up_at).then(|| next.min(give_up_at))
}

/// How much of a receiver's answer is read: enough to keep the connection reusable for an
/// ordinary reply, never an unbounded body held in memory (the request's timeout bounds
/// the time).
const MAX_ANSWER: usize = 64 * 1024;

/// One signed POST of a delivery's payload. The URL is checked against the rules of now,
/// not those it was accepted under (the rules may have been tightened since; an IP
/// literal never meets the guarded resolver).
pub async fn attempt(client: &net::Outbound, url: &str, secret: &str, row: &delivery::Model) -> Outcome {
    if let Err(err) = client.check(url).await {
        return Outcome::Failed {
            code: None,
            error: format!("the webhook URL is refused by the current network rules: {err}"),
        };
    }
    let timestamp = Utc::now().timestamp();
    let body = row.payload.clone().into_bytes();
    let signature = signature(secret, timestamp, &body);
    let result = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header("X-Wagate-Event", &row.event)
        .header("X-Wagate-Delivery", &row.event_id)
        .header("X-Wagate-Timestamp", timestamp.to_string())
        .header("X-Wagate-Signature", signature)
        .body(body)
        .send()
        .await;
    match result {
        Ok(mut resp) => {
            let code = resp.status().as_u16();
            // Read a short answer so the connection can be reused; past the cap the
            // response is dropped, which closes the connection.
            let mut read = 0;
            while read <= MAX_ANSWER {
                match resp.chunk().await {
                    Ok(Some(chunk)) => read += chunk.len(),
                    _ => break,
                }
            }
            if (200..300).contains(&code) {
                Outcome::Delivered(code)
            } else {
                Outcome::Failed {
                    code: Some(code),
                    error: format!("the receiver answered HTTP {code}"),
                }
            }
        }
        Err(err) => Outcome::Failed {
            code: None,
            error: net::describe(&err),
        },
    }
}
