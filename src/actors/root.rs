//! `RootSupervisor`: the top of the actor tree. It starts the cache actor and the phone
//! supervisor and the webhook dispatcher, and starts a child again if it
//! fails, so one broken subsystem never takes the gateway down.

use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef, SupervisionEvent};

use super::cache::CacheActor;
use super::supervisor::{PhoneSupervisor, SupervisorMsg};
use super::webhook::WebhookDispatcher;
use super::{Shared, Slot};

/// How long the tree waits for children to stop at shutdown.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// The children of the root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Child {
    Phones,
    Cache,
    Webhooks,
}

pub enum RootMsg {
    /// Start a child (again).
    Start(Child),
}

pub struct RootSupervisor;

pub struct RootArgs {
    pub shared: Arc<Shared>,
    /// Where the current phone supervisor is published for the gateway.
    pub phone_supervisor: Slot<SupervisorMsg>,
}

pub struct RootState {
    args: RootArgs,
    children: Vec<(ractor::ActorId, Child)>,
}

impl Actor for RootSupervisor {
    type Msg = RootMsg;
    type State = RootState;
    type Arguments = RootArgs;

    async fn pre_start(&self, myself: ActorRef<RootMsg>, args: RootArgs) -> Result<RootState, ActorProcessingErr> {
        let mut state = RootState {
            args,
            children: Vec::new(),
        };
        // The cache and the webhook dispatcher first: phone sessions feed both.
        state.start(&myself, Child::Cache).await?;
        state.start(&myself, Child::Webhooks).await?;
        state.start(&myself, Child::Phones).await?;
        Ok(state)
    }

    async fn handle(
        &self,
        myself: ActorRef<RootMsg>,
        msg: RootMsg,
        state: &mut RootState,
    ) -> Result<(), ActorProcessingErr> {
        let RootMsg::Start(child) = msg;
        if let Err(err) = state.start(&myself, child).await {
            tracing::error!(error = %err, ?child, "cannot start a child actor; retrying");
            myself.send_after(Duration::from_secs(1), move || RootMsg::Start(child));
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<RootMsg>,
        event: SupervisionEvent,
        state: &mut RootState,
    ) -> Result<(), ActorProcessingErr> {
        if let SupervisionEvent::ActorFailed(cell, err) = event
            && let Some(index) = state.children.iter().position(|(id, _)| *id == cell.get_id())
        {
            let (_, child) = state.children.remove(index);
            tracing::error!(error = %err, ?child, "a child actor failed; starting it again");
            myself.send_after(Duration::from_millis(100), move || RootMsg::Start(child));
        }
        Ok(())
    }

    async fn post_stop(&self, myself: ActorRef<RootMsg>, _state: &mut RootState) -> Result<(), ActorProcessingErr> {
        myself
            .stop_children_and_wait(Some("shutdown".into()), Some(STOP_TIMEOUT))
            .await;
        Ok(())
    }
}

impl RootState {
    async fn start(&mut self, myself: &ActorRef<RootMsg>, child: Child) -> Result<(), ActorProcessingErr> {
        let shared = Arc::clone(&self.args.shared);
        let id = match child {
            Child::Phones => {
                let (actor, _) = Actor::spawn_linked(None, PhoneSupervisor, shared, myself.get_cell()).await?;
                let id = actor.get_id();
                publish(&self.args.phone_supervisor, actor);
                id
            }
            Child::Webhooks => {
                let (actor, _) = Actor::spawn_linked(None, WebhookDispatcher, shared, myself.get_cell()).await?;
                let id = actor.get_id();
                publish(&self.args.shared.outbox.dispatcher, actor);
                id
            }
            Child::Cache => {
                let (actor, _) = Actor::spawn_linked(None, CacheActor, shared, myself.get_cell()).await?;
                let id = actor.get_id();
                publish(&self.args.shared.cache, actor);
                id
            }
        };
        self.children.push((id, child));
        Ok(())
    }
}

fn publish<M>(slot: &Slot<M>, actor: ActorRef<M>) {
    *slot.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(actor);
}

/// Stops the whole tree, children first, waiting for sessions to close.
pub async fn shut_down(root: &ActorRef<RootMsg>) {
    let _ = root
        .stop_and_wait(Some("shutdown".into()), Some(STOP_TIMEOUT * 2))
        .await;
}
