//! `PhoneSupervisor`: starts one `PhoneSession` per phone and restarts a failed one with
//! exponential backoff and jitter. More than `phones.max_restarts` failures within
//! `phones.restart_window` mark the phone `failed` until a person connects it again. A
//! failed `pre_start` counts as one more failure; nothing a child does stops the supervisor.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};
use rand::Rng;

use super::phone::{PhoneArgs, PhoneSession};
use super::{PhoneError, Reply, Shared};
use crate::domain::{PhoneNumber, PhoneStatus};

pub enum SupervisorMsg {
    /// Start the phone's session if it is not running (a person's connect resets the
    /// phone's failure history).
    Start {
        phone: PhoneNumber,
        reply: Option<Reply<()>>,
    },
    /// Start a session again: after a crash (`delay` is the backoff), or at start-up (no delay).
    /// Phones that were online log in again within `phones.resume_concurrency`.
    Restart { phone: PhoneNumber, delay: Duration },
    /// Stop the phone's session for good (the phone is being deleted).
    Stop {
        phone: PhoneNumber,
        reply: RpcReplyPort<()>,
    },
}

pub struct PhoneSupervisor;

pub struct SupervisorState {
    shared: Arc<Shared>,
    children: HashMap<ractor::ActorId, PhoneNumber>,
    failures: HashMap<PhoneNumber, VecDeque<Instant>>,
    stopping: HashMap<PhoneNumber, Vec<RpcReplyPort<()>>>,
    /// Phones with a restart scheduled.
    restarting: HashSet<PhoneNumber>,
}

impl Actor for PhoneSupervisor {
    type Msg = SupervisorMsg;
    type State = SupervisorState;
    type Arguments = Arc<Shared>;

    async fn pre_start(
        &self,
        myself: ActorRef<SupervisorMsg>,
        shared: Arc<Shared>,
    ) -> Result<SupervisorState, ActorProcessingErr> {
        // Every known phone gets its session; those that were online log in again, as many
        // at once as `phones.resume_concurrency` allows.
        for phone in shared.directory.phones() {
            let Some(entry) = shared.directory.get(&phone) else {
                continue;
            };
            if entry.state.status == PhoneStatus::Failed {
                continue;
            }
            myself.cast(SupervisorMsg::Restart {
                phone,
                delay: Duration::ZERO,
            })?;
        }
        Ok(SupervisorState {
            shared,
            children: HashMap::new(),
            failures: HashMap::new(),
            stopping: HashMap::new(),
            restarting: HashSet::new(),
        })
    }

    async fn post_stop(
        &self,
        myself: ActorRef<SupervisorMsg>,
        _state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        // Sessions close cleanly (flushing their keys) before the process goes.
        myself
            .stop_children_and_wait(Some("shutdown".into()), Some(Duration::from_secs(10)))
            .await;
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<SupervisorMsg>,
        msg: SupervisorMsg,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            SupervisorMsg::Start { phone, reply } => {
                state.failures.remove(&phone);
                let result = if state.shared.registry.get(&phone).is_some() {
                    Ok(())
                } else {
                    state.spawn(&myself, phone, None).await
                };
                if let Some(reply) = reply {
                    let _ = reply.send(result);
                }
            }
            SupervisorMsg::Restart { phone, delay } => {
                state.restarting.remove(&phone);
                let wanted = state.shared.directory.get(&phone).is_some() && !state.stopping.contains_key(&phone);
                if wanted && state.shared.registry.get(&phone).is_none() {
                    let _ = state.spawn(&myself, phone, Some(delay)).await;
                }
            }
            SupervisorMsg::Stop { phone, reply } => match state.shared.registry.get(&phone) {
                Some(actor) => {
                    state.stopping.entry(phone).or_default().push(reply);
                    actor.stop(Some("phone deleted".into()));
                }
                None => {
                    state.failures.remove(&phone);
                    let _ = reply.send(());
                }
            },
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<SupervisorMsg>,
        event: SupervisionEvent,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        match event {
            SupervisionEvent::ActorTerminated(cell, _, _) => {
                if let Some(phone) = state.children.remove(&cell.get_id()) {
                    state.shared.registry.remove_if(&phone, cell.get_id());
                    state.finish_stop(&phone);
                }
            }
            SupervisionEvent::ActorFailed(cell, err) => {
                if let Some(phone) = state.children.remove(&cell.get_id()) {
                    state.shared.registry.remove_if(&phone, cell.get_id());
                    if state.stopping.contains_key(&phone) {
                        state.finish_stop(&phone);
                    } else {
                        state.on_failure(&myself, phone, err.to_string()).await;
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }
}

impl SupervisorState {
    async fn spawn(
        &mut self,
        myself: &ActorRef<SupervisorMsg>,
        phone: PhoneNumber,
        resume_after: Option<Duration>,
    ) -> Result<(), PhoneError> {
        let args = PhoneArgs {
            phone: phone.clone(),
            shared: Arc::clone(&self.shared),
            resume_after,
        };
        match Actor::spawn_linked(None, PhoneSession, args, myself.get_cell()).await {
            Ok((actor, _)) => {
                self.children.insert(actor.get_id(), phone.clone());
                self.shared.registry.insert(phone, actor);
                Ok(())
            }
            Err(err) => {
                let reason = err.to_string();
                self.on_failure(myself, phone, reason).await;
                Err(PhoneError::Restarting)
            }
        }
    }

    fn finish_stop(&mut self, phone: &PhoneNumber) {
        self.failures.remove(phone);
        for reply in self.stopping.remove(phone).unwrap_or_default() {
            let _ = reply.send(());
        }
    }

    async fn on_failure(&mut self, myself: &ActorRef<SupervisorMsg>, phone: PhoneNumber, reason: String) {
        let config = &self.shared.config.phones;
        let now = Instant::now();
        let history = self.failures.entry(phone.clone()).or_default();
        history.push_back(now);
        while history
            .front()
            .is_some_and(|t| now.duration_since(*t) > config.restart_window)
        {
            history.pop_front();
        }
        let failures = u32::try_from(history.len()).unwrap_or(u32::MAX);
        let Some(mut entry) = self.shared.directory.get(&phone) else {
            return;
        };
        if failures > config.max_restarts {
            tracing::error!(%phone, failures, %reason, "the session keeps failing; giving up until a person connects it");
            entry.state.status = PhoneStatus::Failed;
            entry.state.connected_at = None;
            entry.state.last_error = Some(format!(
                "the session failed {failures} times within {}; connect to try again (last error: {reason})",
                humantime::format_duration(config.restart_window)
            ));
            self.failures.remove(&phone);
            self.shared.publish(&phone, entry.state, None).await;
            return;
        }
        let backoff = backoff(config.restart_backoff_min, config.restart_backoff_max, failures);
        tracing::warn!(%phone, failures, %reason, backoff_ms = backoff.as_millis() as u64, "the session failed; restarting");
        self.shared.restarts.fetch_add(1, Ordering::Relaxed);
        self.shared.metrics.session_restarts.inc();
        // Until the new session says otherwise, the phone is on its way back.
        if entry.state.status.resumes() {
            entry.state.status = PhoneStatus::Reconnecting;
        }
        entry.state.last_error = Some(format!(
            "the session failed and restarts in {} ms: {reason}",
            backoff.as_millis()
        ));
        self.shared.publish(&phone, entry.state, None).await;
        self.restarting.insert(phone.clone());
        myself.send_after(backoff, move || SupervisorMsg::Restart {
            phone,
            delay: Duration::ZERO,
        });
    }
}

/// `min · 2^(n-1)`, capped at `max`, then ±25 % jitter so that phones failing together
/// do not come back together.
pub fn backoff(min: Duration, max: Duration, failures: u32) -> Duration {
    let exp = failures.saturating_sub(1).min(20);
    let base = min.saturating_mul(1u32 << exp).min(max);
    let jitter = rand::rng().random_range(0.75..=1.25);
    base.mul_f64(jitter).min(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        let min = Duration::from_millis(100);
        let max = Duration::from_secs(2);
        for _ in 0..100 {
            let first = backoff(min, max, 1);
            assert!(first >= Duration::from_millis(75) && first <= Duration::from_millis(125));
            let third = backoff(min, max, 3);
            assert!(third >= Duration::from_millis(300) && third <= Duration::from_millis(500));
            assert!(backoff(min, max, 30) <= max);
        }
    }
}
