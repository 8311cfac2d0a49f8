//! The DNS resolver of the guarded client: resolves with tokio and refuses the name when any
//! address it resolved to is refused by the policy. It runs for every new connection, so a name
//! that changes its answer between validation and use (DNS rebinding) is checked again.

use std::net::SocketAddr;
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use super::policy::OutboundPolicy;

/// reqwest calls this only for DNS names: IP-literal hosts are connected to directly, which is
/// why `send` checks the URL as well.
#[derive(Debug, Clone)]
pub(crate) struct GuardedResolver {
    policy: Arc<OutboundPolicy>,
}

impl GuardedResolver {
    pub(crate) fn new(policy: Arc<OutboundPolicy>) -> GuardedResolver {
        GuardedResolver { policy }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("host `{0}` resolved to no addresses")]
struct NoAddresses(String);

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = Arc::clone(&self.policy);
        let host = name.as_str().to_owned();
        Box::pin(async move {
            policy.check_name_before_dns(&host)?;
            // Port 0: reqwest puts the URL's port on the addresses we return.
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if addrs.is_empty() {
                return Err(NoAddresses(host).into());
            }
            // Any refused address refuses the name: a mixed answer is what a rebinding attack
            // looks like, and validation (`check_url_resolving`) decides the same way.
            for addr in &addrs {
                if let Err(blocked) = policy.check_addr(&host, *addr) {
                    tracing::warn!(host, address = %addr.ip(), reason = blocked.reason().code(),
                        "outbound connection refused by the URL policy");
                    return Err(blocked.into());
                }
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbound::policy::{BlockReason, Blocked};

    async fn resolve(policy: OutboundPolicy, host: &str) -> Result<Vec<SocketAddr>, String> {
        let resolver = GuardedResolver::new(Arc::new(policy));
        let name: Name = host.parse().unwrap();
        match resolver.resolve(name).await {
            Ok(addrs) => Ok(addrs.collect()),
            Err(error) => match error.downcast_ref::<Blocked>() {
                Some(blocked) => Err(blocked.reason().code().to_owned()),
                None => Err(format!("other: {error}")),
            },
        }
    }

    #[tokio::test]
    async fn resolver_refuses_names_resolving_to_loopback_when_local_is_blocked() {
        let refused = resolve(OutboundPolicy::new(true, &[]).unwrap(), "localhost").await;
        assert_eq!(
            refused,
            Err(BlockReason::LocalNetwork.code().to_owned()),
            "the resolver path must refuse on its own, without check_url"
        );
        let allowed = resolve(OutboundPolicy::new(false, &[]).unwrap(), "localhost")
            .await
            .unwrap();
        assert!(allowed.iter().all(|a| a.ip().is_loopback()), "{allowed:?}");
        let listed = OutboundPolicy::new(true, &["localhost".to_owned()]).unwrap();
        assert!(resolve(listed, "localhost").await.is_ok());
    }

    #[tokio::test]
    async fn resolver_refuses_metadata_names_without_asking_about_block_local() {
        let refused = resolve(
            OutboundPolicy::new(false, &[]).unwrap(),
            "metadata.google.internal",
        )
        .await;
        assert_eq!(refused, Err(BlockReason::NeverAllowed.code().to_owned()));
    }
}
