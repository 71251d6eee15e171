//! Leader election on a `coordination.k8s.io/v1` Lease, through `kube-lease-manager`.
//!
//! Only the holder of the lease reconciles. A standby takes over once the lease expires (one
//! lease duration after the leader's last renewal) or at once when the leader releases it on a
//! clean shutdown. A leader that loses the lease stops reconciling at once and the process exits,
//! so that it starts afresh as a candidate.

use kube::Client;
use kube_lease_manager::{LeaseManagerBuilder, LeaseManagerError};
use std::time::Duration;
use tokio::{sync::watch, task::JoinHandle};
use tracing::{info, warn};

/// Lease settings.
#[derive(Clone, Debug)]
pub struct LeaseConfig {
    pub name: String,
    pub namespace: String,
    /// Unique per candidate (the Pod name, plus a random suffix).
    pub identity: String,
    /// How long a lease is valid after its last renewal.
    pub duration: Duration,
    /// How long before expiry the holder renews.
    pub grace: Duration,
}

/// Held leadership: turns false when lost.
pub struct Leadership {
    state: watch::Receiver<bool>,
    task: JoinHandle<Result<kube_lease_manager::LeaseManager, LeaseManagerError>>,
}

impl Leadership {
    /// A receiver that turns false when the lease is lost.
    pub fn watch(&self) -> watch::Receiver<bool> {
        self.state.clone()
    }

    /// Gives the lease back, so that a standby takes over without waiting for it to expire.
    pub async fn release(self) {
        drop(self.state);
        match tokio::time::timeout(Duration::from_secs(5), self.task).await {
            Ok(Ok(Ok(_))) => info!("released the leader lease"),
            Ok(Ok(Err(e))) => warn!(error = %e, "could not release the leader lease"),
            Ok(Err(e)) => warn!(error = %e, "lease manager task failed"),
            Err(_) => warn!("timed out releasing the leader lease; it will expire"),
        }
    }
}

/// A unique identity: the Pod name (or host name) with a random suffix, so that a restarted Pod
/// with the same name never mistakes the old lease for its own.
pub fn identity() -> String {
    let base = std::env::var("POD_NAME")
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "zilliz-operator".into());
    format!("{base}-{:08x}", rand::random::<u32>())
}

/// The server-side-apply field manager of one candidate. kube-lease-manager takes an orphaned
/// lease with a non-forced apply of `holderIdentity` and relies on the API server answering 409
/// Conflict to the second of two racing candidates; that only happens when each candidate applies
/// as its own field manager. One shared name would make the second apply silently win, and both
/// candidates would believe they lead until the first one's next renewal.
/// Field managers are limited to 128 characters: the identity's random suffix is kept.
pub fn field_manager(identity: &str) -> String {
    const PREFIX: &str = "zilliz-operator-";
    const MAX: usize = 128;
    let room = MAX - PREFIX.len();
    let chars: Vec<char> = identity.chars().collect();
    let tail: String = chars[chars.len().saturating_sub(room)..].iter().collect();
    format!("{PREFIX}{tail}")
}

/// Waits until this candidate holds the lease. `None` when `shutdown` came first.
pub async fn acquire(
    client: Client,
    config: &LeaseConfig,
    mut shutdown: watch::Receiver<bool>,
) -> Result<Option<Leadership>, LeaseManagerError> {
    let manager = LeaseManagerBuilder::new(client, &config.name)
        .with_namespace(&config.namespace)
        .with_identity(&config.identity)
        .with_duration(config.duration.as_secs().max(2))
        .with_grace(config.grace.as_secs().max(1))
        .with_field_manager(field_manager(&config.identity))
        .build()
        .await?;
    let (mut state, task) = manager.watch().await;
    info!(lease = %config.name, namespace = %config.namespace, identity = %config.identity, "waiting for the leader lease");
    let held = tokio::select! {
        held = state.wait_for(|leader| *leader) => Some(held.is_ok()),
        _ = shutdown.wait_for(|stop| *stop) => None,
    };
    let Some(held) = held else {
        // give back the lease in case it was just acquired
        drop(state);
        let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        return Ok(None);
    };
    if !held {
        // the manager task ended: surface its error
        return match task.await {
            Ok(Err(e)) => Err(e),
            _ => Ok(None),
        };
    }
    info!(identity = %config.identity, "acquired the leader lease");
    Ok(Some(Leadership { state, task }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_candidate_applies_as_its_own_field_manager() {
        let a = field_manager("op-a-0000beef");
        let b = field_manager("op-b-0000beef");
        assert_ne!(a, b);
        assert_eq!(a, "zilliz-operator-op-a-0000beef");
        // same Pod name after a restart: the random suffix still tells them apart
        assert_ne!(
            field_manager("op-a-00000001"),
            field_manager("op-a-00000002")
        );
        let long = format!("{}-deadbeef", "p".repeat(300));
        let m = field_manager(&long);
        assert_eq!(m.len(), 128);
        assert!(m.ends_with("-deadbeef"));
    }
}
