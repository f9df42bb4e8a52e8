//! Resource figures for `/api/v1/health/resources`: a background task refreshes CPU and
//! memory readings on the blocking pool at a fixed interval, so a request only reads the
//! latest snapshot and never waits on the operating system.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System};
use tokio_util::sync::CancellationToken;

use crate::ticker::Every;

/// One reading of the machine and of this process.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub taken_at: Option<DateTime<Utc>>,
    pub cpu_cores: usize,
    pub cpu_usage_percent: f32,
    pub load_average: [f64; 3],
    pub memory_total_bytes: u64,
    pub memory_used_bytes: u64,
    pub memory_available_bytes: u64,
    pub process_rss_bytes: u64,
    pub process_virtual_bytes: u64,
    pub process_cpu_percent: f32,
}

pub struct Monitor {
    started: Instant,
    started_at: DateTime<Utc>,
    latest: RwLock<Snapshot>,
}

impl Monitor {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            started: Instant::now(),
            started_at: Utc::now(),
            latest: RwLock::new(Snapshot::default()),
        })
    }

    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    pub fn started_at(&self) -> DateTime<Utc> {
        self.started_at
    }

    pub fn snapshot(&self) -> Snapshot {
        self.latest
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Refreshes the snapshot every `interval` until `stop` fires.
    pub fn spawn(self: &Arc<Self>, interval: Duration, stop: CancellationToken) {
        let monitor = Arc::clone(self);
        tokio::spawn(async move {
            let Ok(system) = System::new() else {
                tracing::warn!("system information is not available on this platform");
                return;
            };
            let pid = sysinfo::get_current_pid().ok();
            let mut system = Some(system);
            let mut every = Every::new(interval, stop);
            while every.tick().await {
                let Some(mut sys) = system.take() else { return };
                let reading = tokio::task::spawn_blocking(move || {
                    let snapshot = read(&mut sys, pid);
                    (sys, snapshot)
                })
                .await;
                match reading {
                    Ok((sys, snapshot)) => {
                        system = Some(sys);
                        *monitor
                            .latest
                            .write()
                            .unwrap_or_else(std::sync::PoisonError::into_inner) = snapshot;
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, "resource reading failed");
                        return;
                    }
                }
            }
        });
    }
}

fn read(sys: &mut System, pid: Option<Pid>) -> Snapshot {
    sys.refresh_cpu_usage();
    sys.refresh_memory();
    let mut snapshot = Snapshot {
        taken_at: Some(Utc::now()),
        cpu_cores: sys.cpus().len(),
        cpu_usage_percent: sys.global_cpu_usage(),
        memory_total_bytes: sys.total_memory(),
        memory_used_bytes: sys.used_memory(),
        memory_available_bytes: sys.available_memory(),
        ..Snapshot::default()
    };
    if let Ok(load) = System::load_average() {
        snapshot.load_average = [load.one, load.five, load.fifteen];
    }
    if let Some(pid) = pid {
        sys.refresh_processes_specifics(
            ProcessesToUpdate::Some(&[pid]),
            true,
            ProcessRefreshKind::nothing().with_memory().with_cpu(),
        );
        if let Some(process) = sys.process(pid) {
            snapshot.process_rss_bytes = process.memory();
            snapshot.process_virtual_bytes = process.virtual_memory();
            snapshot.process_cpu_percent = process.cpu_usage();
        }
    }
    snapshot
}
