//! Which URLs and addresses outbound requests may reach: the always-refused set (link-local,
//! cloud metadata, unspecified, multicast, broadcast, reserved), the local set (loopback and
//! private networks, refused only with `AGENTRY_BLOCK_LOCAL_PROVIDERS`), and the allow-list.
//! This file decides; `classify` says what an address is, `allowlist` what is listed.

mod allowlist;
mod classify;
mod names;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use url::{Host, Url};

use allowlist::{AllowList, NameMatch};
use classify::{Kind, classify};
use names::{is_localhost, is_metadata_name, normalise_name, shorten};

/// How long `check_url_resolving` waits for DNS. A slow resolver must not hold up an API call;
/// an unresolved name is reported by the validator later, and every connection checks again.
pub const RESOLVE_TIMEOUT: Duration = Duration::from_secs(2);

/// The outbound URL policy, built once at start-up from the configuration.
#[derive(Debug, Clone, Default)]
pub struct OutboundPolicy {
    block_local: bool,
    allow: AllowList,
}

/// What made a URL or address unacceptable; `code()` is stable for API clients and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockReason {
    /// Not http or https.
    Scheme,
    /// A user name or password in the URL.
    Credentials,
    /// No host at all.
    MissingHost,
    /// Link-local, cloud metadata, unspecified, multicast, broadcast or reserved.
    NeverAllowed,
    /// Loopback or private network while `AGENTRY_BLOCK_LOCAL_PROVIDERS` is set.
    LocalNetwork,
    /// The host is allow-listed, but only with other ports.
    PortNotAllowListed,
}

impl BlockReason {
    pub fn code(self) -> &'static str {
        match self {
            BlockReason::Scheme => "scheme_not_allowed",
            BlockReason::Credentials => "credentials_in_url",
            BlockReason::MissingHost => "missing_host",
            BlockReason::NeverAllowed => "address_never_allowed",
            BlockReason::LocalNetwork => "local_network_blocked",
            BlockReason::PortNotAllowListed => "port_not_allow_listed",
        }
    }
}

/// A refusal by the policy. The message is short, meant for the user, and never contains
/// credentials (the URL's user-info is never echoed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Blocked {
    reason: BlockReason,
    message: String,
}

impl Blocked {
    pub fn reason(&self) -> BlockReason {
        self.reason
    }

    fn new(reason: BlockReason, message: String) -> Blocked {
        Blocked { reason, message }
    }
}

/// An allow-list entry that cannot be used. Start-up stops on it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("AGENTRY_PROVIDER_URL_ALLOWLIST entry `{entry}` {problem}")]
pub struct PolicyError {
    entry: String,
    problem: String,
}

impl OutboundPolicy {
    /// The policy a worker reported. One with an allow-list entry this build cannot read
    /// is taken to refuse local networks without exceptions (the safe reading).
    pub fn of_reach(reach: &contracts::worker::OutboundReach) -> OutboundPolicy {
        OutboundPolicy::new(reach.block_local, &reach.allowlist).unwrap_or(OutboundPolicy {
            block_local: true,
            allow: AllowList::default(),
        })
    }

    /// `allowlist` entries are `host`, `host:port`, `[ipv6]:port`, an IP address, or a CIDR
    /// such as `10.0.0.0/8`. Blank entries are ignored (a trailing comma in the variable).
    pub fn new(block_local: bool, allowlist: &[String]) -> Result<OutboundPolicy, PolicyError> {
        let mut allow = AllowList::default();
        for raw in allowlist {
            let entry = raw.trim();
            if entry.is_empty() {
                continue;
            }
            allow.add(entry).map_err(|problem| PolicyError {
                entry: shorten(entry),
                problem,
            })?;
        }
        Ok(OutboundPolicy { block_local, allow })
    }

    /// Whether loopback and private networks are refused (outside the allow-list).
    pub fn blocks_local(&self) -> bool {
        self.block_local
    }

    /// Checks everything that can be known without DNS: scheme, host (IP literals, `localhost`,
    /// metadata names) and user-info. The `url` crate has already turned decimal, octal, hex and
    /// short IPv4 forms (`2130706433`, `0x7f.1`, `127.1`) and percent-encoded hosts into
    /// addresses, so those arrive here as `Host::Ipv4`.
    pub fn check_url(&self, url: &Url) -> Result<(), Blocked> {
        let scheme = url.scheme();
        if !matches!(scheme, "http" | "https") {
            return Err(Blocked::new(
                BlockReason::Scheme,
                format!("must use http or https, not `{}`", shorten(scheme)),
            ));
        }
        let port = url.port_or_known_default();
        // The host first: for `http://example.com@169.254.169.254` the real target is the
        // interesting part of the answer, not the user-info in front of it.
        match url.host() {
            None => {
                return Err(Blocked::new(
                    BlockReason::MissingHost,
                    "must name a host".to_owned(),
                ));
            }
            Some(Host::Ipv4(ip)) => self.decide(IpAddr::V4(ip), port, None, Subject::Literal)?,
            Some(Host::Ipv6(ip)) => self.decide(IpAddr::V6(ip), port, None, Subject::Literal)?,
            Some(Host::Domain(domain)) => self.check_name(&normalise_name(domain), port)?,
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Blocked::new(
                BlockReason::Credentials,
                "must not contain a user name or password".to_owned(),
            ));
        }
        Ok(())
    }

    /// Checks an address that `host` resolved to. Port 0 means "not known" (the resolver is
    /// only told the host): `host:port` allow-list entries then count for the name, because
    /// `check_url` already held the URL's port against them, and `ip:port` entries do not.
    pub fn check_addr(&self, host: &str, addr: SocketAddr) -> Result<(), Blocked> {
        let name = normalise_name(host);
        self.check_name_before_dns(&name)?;
        let port = (addr.port() != 0).then_some(addr.port());
        self.decide(addr.ip(), port, Some(&name), Subject::Resolved(&name))
    }

    /// What can be said of a host name before resolving it: metadata names are refused.
    pub(crate) fn check_name_before_dns(&self, host: &str) -> Result<(), Blocked> {
        let name = normalise_name(host);
        if is_metadata_name(&name) {
            return Err(metadata_name(&name));
        }
        Ok(())
    }

    /// For create and update: `check_url`, then for a DNS name every address it resolves to
    /// (within `RESOLVE_TIMEOUT`) must pass. Resolution failure is not a refusal: the host may
    /// simply be down, which the validator reports; connections check again regardless.
    pub async fn check_url_resolving(&self, url: &Url) -> Result<(), Blocked> {
        self.check_url(url)?;
        let Some(Host::Domain(domain)) = url.host() else {
            return Ok(());
        };
        let name = normalise_name(domain);
        let lookup = tokio::net::lookup_host((name.as_str(), 0));
        let Ok(Ok(addrs)) = tokio::time::timeout(RESOLVE_TIMEOUT, lookup).await else {
            return Ok(());
        };
        for addr in addrs {
            // Port 0, like the resolver at connect time, so both decide the same way.
            self.check_addr(&name, SocketAddr::new(addr.ip(), 0))?;
        }
        Ok(())
    }

    fn check_name(&self, name: &str, port: Option<u16>) -> Result<(), Blocked> {
        if is_metadata_name(name) {
            return Err(metadata_name(name));
        }
        if !self.block_local {
            return Ok(());
        }
        if is_localhost(name) {
            // RFC 6761: these names are loopback whatever DNS says, and resolvers treat them so.
            return match self.allow.admits_name(name, port) {
                NameMatch::Yes => Ok(()),
                NameMatch::OtherPorts => Err(other_ports(name, port)),
                NameMatch::No => Err(Blocked::new(
                    BlockReason::LocalNetwork,
                    format!(
                        "`{}` is a loopback host name, {BLOCKED_SUFFIX}",
                        shorten(name)
                    ),
                )),
            };
        }
        // The resolver cannot see the port, so a name allow-listed only with some ports is held
        // to them here, before any connection.
        match self.allow.admits_name(name, port) {
            NameMatch::OtherPorts => Err(other_ports(name, port)),
            NameMatch::Yes | NameMatch::No => Ok(()),
        }
    }

    fn decide(
        &self,
        ip: IpAddr,
        port: Option<u16>,
        name: Option<&str>,
        subject: Subject<'_>,
    ) -> Result<(), Blocked> {
        let class = classify(ip);
        match class.kind {
            Kind::Public => Ok(()),
            Kind::Never(never) => Err(Blocked::new(
                BlockReason::NeverAllowed,
                format!(
                    "{subject} {ip}{}, {} address, which is never allowed",
                    embedded(class.embedded),
                    never.describe()
                ),
            )),
            Kind::Local(local) => {
                // `::ffff:10.0.0.1` is 10.0.0.1 on the wire, so a `10.0.0.0/8` entry covers it.
                let admitted = self.allow.admits(ip, port, name)
                    || class
                        .embedded
                        .is_some_and(|v4| self.allow.admits(IpAddr::V4(v4), port, name));
                if !self.block_local || admitted {
                    Ok(())
                } else {
                    Err(Blocked::new(
                        BlockReason::LocalNetwork,
                        format!(
                            "{subject} {ip}{}, {} address, {BLOCKED_SUFFIX}",
                            embedded(class.embedded),
                            local.describe()
                        ),
                    ))
                }
            }
        }
    }
}

/// Whether a URL's host is on a loopback or private network by the URL alone (an IP literal
/// or `localhost`): a worker reaches it only if its own policy allows local networks (or
/// lists it).
pub fn is_local_url(url: &Url) -> bool {
    let strict = OutboundPolicy {
        block_local: true,
        allow: AllowList::default(),
    };
    matches!(strict.check_url(url), Err(blocked) if blocked.reason() == BlockReason::LocalNetwork)
}

const BLOCKED_SUFFIX: &str = "and AGENTRY_BLOCK_LOCAL_PROVIDERS is set \
     (AGENTRY_PROVIDER_URL_ALLOWLIST can allow it)";

#[derive(Clone, Copy)]
enum Subject<'a> {
    Literal,
    Resolved(&'a str),
}

impl fmt::Display for Subject<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::Literal => f.write_str("points to"),
            Subject::Resolved(host) => write!(f, "host `{}` resolves to", shorten(host)),
        }
    }
}

fn embedded(v4: Option<Ipv4Addr>) -> String {
    v4.map(|v4| format!(" (IPv4 {v4})")).unwrap_or_default()
}

fn metadata_name(name: &str) -> Blocked {
    Blocked::new(
        BlockReason::NeverAllowed,
        format!(
            "`{}` is a cloud-metadata host name, which is never allowed",
            shorten(name)
        ),
    )
}

fn other_ports(name: &str, port: Option<u16>) -> Blocked {
    let port = port.map(|p| p.to_string()).unwrap_or_default();
    Blocked::new(
        BlockReason::PortNotAllowListed,
        format!(
            "`{}:{port}` is not allowed: AGENTRY_PROVIDER_URL_ALLOWLIST lists this host only \
             with other ports",
            shorten(name)
        ),
    )
}

#[cfg(test)]
mod tests;
