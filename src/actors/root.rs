//! `RootSupervisor`: the top of the actor tree. It starts the phone supervisor (and, as
//! they are built, the webhook dispatcher and the cache actor) and starts a child again
//! if it fails, so one broken subsystem never takes the gateway down.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef, SupervisionEvent};

use super::Shared;
use super::supervisor::{PhoneSupervisor, SupervisorMsg};

/// How long the tree waits for children to stop at shutdown.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

pub enum RootMsg {
    /// Start the phone supervisor (again).
    StartPhones,
}

pub struct RootSupervisor;

pub struct RootArgs {
    pub shared: Arc<Shared>,
    /// Where the current phone supervisor is published for the gateway.
    pub phone_supervisor: Arc<RwLock<Option<ActorRef<SupervisorMsg>>>>,
}

impl Actor for RootSupervisor {
    type Msg = RootMsg;
    type State = RootArgs;
    type Arguments = RootArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<RootMsg>,
        args: RootArgs,
    ) -> Result<RootArgs, ActorProcessingErr> {
        start_phones(&myself, &args).await?;
        Ok(args)
    }

    async fn handle(
        &self,
        myself: ActorRef<RootMsg>,
        msg: RootMsg,
        state: &mut RootArgs,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            RootMsg::StartPhones => {
                if let Err(err) = start_phones(&myself, state).await {
                    tracing::error!(error = %err, "cannot start the phone supervisor; retrying");
                    myself.send_after(Duration::from_secs(1), || RootMsg::StartPhones);
                }
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<RootMsg>,
        event: SupervisionEvent,
        _state: &mut RootArgs,
    ) -> Result<(), ActorProcessingErr> {
        if let SupervisionEvent::ActorFailed(_, err) = event {
            tracing::error!(error = %err, "the phone supervisor failed; starting it again");
            myself.send_after(Duration::from_millis(100), || RootMsg::StartPhones);
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        myself: ActorRef<RootMsg>,
        _state: &mut RootArgs,
    ) -> Result<(), ActorProcessingErr> {
        myself
            .stop_children_and_wait(Some("shutdown".into()), Some(STOP_TIMEOUT))
            .await;
        Ok(())
    }
}

async fn start_phones(
    myself: &ActorRef<RootMsg>,
    args: &RootArgs,
) -> Result<(), ActorProcessingErr> {
    let (supervisor, _) = Actor::spawn_linked(
        None,
        PhoneSupervisor,
        Arc::clone(&args.shared),
        myself.get_cell(),
    )
    .await?;
    *args
        .phone_supervisor
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(supervisor);
    Ok(())
}

/// Stops the whole tree, children first, waiting for sessions to close.
pub async fn shut_down(root: &ActorRef<RootMsg>) {
    let _ = root
        .stop_and_wait(Some("shutdown".into()), Some(STOP_TIMEOUT * 2))
        .await;
}
