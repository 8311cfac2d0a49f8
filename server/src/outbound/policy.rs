//! Which URLs and addresses outbound requests may reach: the always-refused set (link-local,
//! cloud metadata, unspecified, multicast, broadcast, reserved), the local set (loopback and
//! private networks, refused only with `AGENTRY_BLOCK_LOCAL_PROVIDERS`), and the allow-list.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use ipnet::IpNet;
use url::{Host, Url};

/// How long `check_url_resolving` waits for DNS. A slow resolver must not hold up an API call;
/// an unresolved name is reported by the validator later, and every connection checks again.
pub const RESOLVE_TIMEOUT: Duration = Duration::from_secs(2);

/// Host names of cloud metadata services. They resolve to link-local addresses anyway (refused
/// after DNS), but refusing the name itself also covers resolvers that answer differently.
const METADATA_HOSTS: &[&str] = &[
    "metadata.google.internal",
    "metadata.goog",
    "instance-data.ec2.internal",
];

/// Metadata endpoints outside 169.254.0.0/16 (which is refused as a whole).
const METADATA_V4: &[Ipv4Addr] = &[Ipv4Addr::new(100, 100, 100, 200)]; // Alibaba Cloud
const METADATA_V6: &[Ipv6Addr] = &[Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254)]; // AWS

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

/// Lower case, without the trailing dot of a fully qualified name (`localhost.` is
/// `localhost`).
fn normalise_name(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

fn is_localhost(name: &str) -> bool {
    name == "localhost" || name.ends_with(".localhost")
}

fn is_metadata_name(name: &str) -> bool {
    METADATA_HOSTS.contains(&name)
}

/// User input echoed in a message is cut short, so a 2 KB host cannot flood a response or log.
fn shorten(text: &str) -> String {
    const MAX_CHARS: usize = 100;
    if text.chars().count() <= MAX_CHARS {
        text.to_owned()
    } else {
        let head: String = text.chars().take(MAX_CHARS).collect();
        format!("{head}…")
    }
}

// ---------------------------------------------------------------------------------------------
// Address classes

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Public,
    Local(Local),
    Never(Never),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Local {
    Loopback,
    Private,
    SharedCgnat,
    /// IPv6 unique-local addresses (fc00::/7).
    Ula,
}

impl Local {
    fn describe(self) -> &'static str {
        match self {
            Local::Loopback => "a loopback",
            Local::Private => "a private-network",
            Local::SharedCgnat => "a shared (CGNAT, 100.64.0.0/10)",
            Local::Ula => "a unique-local (fc00::/7)",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Never {
    LinkLocal,
    Metadata,
    Unspecified,
    Multicast,
    Broadcast,
    Reserved,
}

impl Never {
    fn describe(self) -> &'static str {
        match self {
            Never::LinkLocal => "a link-local/cloud-metadata",
            Never::Metadata => "a cloud-metadata",
            Never::Unspecified => "an unspecified (0.0.0.0/8 or ::)",
            Never::Multicast => "a multicast",
            Never::Broadcast => "a broadcast",
            Never::Reserved => "a reserved (240.0.0.0/4)",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Class {
    kind: Kind,
    /// The IPv4 address an IPv6 address carries (mapped, compatible, NAT64, 6to4, Teredo),
    /// which is what decided its class.
    embedded: Option<Ipv4Addr>,
}

fn classify(ip: IpAddr) -> Class {
    match ip {
        IpAddr::V4(v4) => Class {
            kind: classify_v4(v4),
            embedded: None,
        },
        IpAddr::V6(v6) => {
            if METADATA_V6.contains(&v6) {
                return Class {
                    kind: Kind::Never(Never::Metadata),
                    embedded: None,
                };
            }
            match embedded_v4(v6) {
                Some(v4) => Class {
                    kind: classify_v4(v4),
                    embedded: Some(v4),
                },
                None => Class {
                    kind: classify_v6(v6),
                    embedded: None,
                },
            }
        }
    }
}

fn classify_v4(ip: Ipv4Addr) -> Kind {
    let [a, b, ..] = ip.octets();
    if METADATA_V4.contains(&ip) {
        Kind::Never(Never::Metadata)
    } else if a == 0 {
        // 0.0.0.0/8: Linux connects 0.0.0.0 to the local host.
        Kind::Never(Never::Unspecified)
    } else if ip.is_link_local() {
        // 169.254.0.0/16 holds the metadata services of AWS, GCP, Azure, Oracle and others.
        Kind::Never(Never::LinkLocal)
    } else if ip.is_broadcast() {
        Kind::Never(Never::Broadcast)
    } else if ip.is_multicast() {
        Kind::Never(Never::Multicast)
    } else if a >= 240 {
        Kind::Never(Never::Reserved)
    } else if ip.is_loopback() {
        Kind::Local(Local::Loopback)
    } else if ip.is_private() {
        Kind::Local(Local::Private)
    } else if a == 100 && (b & 0xc0) == 64 {
        Kind::Local(Local::SharedCgnat)
    } else {
        Kind::Public
    }
}

fn classify_v6(ip: Ipv6Addr) -> Kind {
    let first = ip.segments()[0];
    if ip.is_unspecified() {
        Kind::Never(Never::Unspecified)
    } else if ip.is_loopback() {
        Kind::Local(Local::Loopback)
    } else if ip.is_multicast() {
        Kind::Never(Never::Multicast)
    } else if first & 0xffc0 == 0xfe80 {
        Kind::Never(Never::LinkLocal)
    } else if first & 0xffc0 == 0xfec0 {
        // Deprecated site-local (fec0::/10): still routed inside some networks.
        Kind::Local(Local::Private)
    } else if first & 0xfe00 == 0xfc00 {
        Kind::Local(Local::Ula)
    } else {
        Kind::Public
    }
}

/// The IPv4 address inside an IPv6 address whose traffic reaches that IPv4 host: mapped
/// (`::ffff:a.b.c.d`), compatible (`::a.b.c.d`), translated (`::ffff:0:a.b.c.d`), NAT64
/// (`64:ff9b::a.b.c.d`), 6to4 (`2002:aabb:ccdd::`) and Teredo (client address, inverted).
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let low = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    if let Some(v4) = ip.to_ipv4_mapped() {
        return Some(v4);
    }
    if s[..6] == [0; 6] {
        // `::` and `::1` are IPv6's own unspecified and loopback addresses, not IPv4 ones.
        return (s[6] != 0 || s[7] > 1).then(|| low(s[6], s[7]));
    }
    if s[..4] == [0; 4] && s[4] == 0xffff && s[5] == 0 {
        return Some(low(s[6], s[7]));
    }
    if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0; 4] {
        return Some(low(s[6], s[7]));
    }
    if s[0] == 0x2002 {
        return Some(low(s[1], s[2]));
    }
    if s[0] == 0x2001 && s[1] == 0 {
        return Some(Ipv4Addr::from(!u32::from(low(s[6], s[7]))));
    }
    None
}

// ---------------------------------------------------------------------------------------------
// Allow-list

#[derive(Debug, Clone, Default)]
struct AllowList {
    /// CIDRs and bare addresses (as /32 or /128): any port, literal or resolved.
    nets: Vec<IpNet>,
    /// `ip:port`: only a URL naming this address literally, with this port.
    sockets: Vec<SocketAddr>,
    /// Host names, with an optional port.
    names: Vec<(String, Option<u16>)>,
}

enum NameMatch {
    Yes,
    No,
    /// Listed, but not with this port.
    OtherPorts,
}

impl AllowList {
    fn add(&mut self, entry: &str) -> Result<(), String> {
        if entry.contains("://") {
            return Err("is a URL; use host, host:port or a CIDR such as 10.0.0.0/8".to_owned());
        }
        if entry.contains('/') {
            let net: IpNet = entry
                .parse()
                .map_err(|_| "is not a valid CIDR (e.g. 10.0.0.0/8 or fd00::/8)".to_owned())?;
            self.nets.push(net.trunc());
            return Ok(());
        }
        if let Ok(ip) = entry.parse::<IpAddr>() {
            refuse_never(ip)?;
            self.nets.push(IpNet::from(ip));
            return Ok(());
        }
        if let Ok(socket) = entry.parse::<SocketAddr>() {
            refuse_never(socket.ip())?;
            check_port(socket.port())?;
            self.sockets.push(socket);
            return Ok(());
        }
        let (host, port) = match entry.rsplit_once(':') {
            Some((host, port)) => {
                let port = port
                    .parse::<u16>()
                    .map_err(|_| format!("has an invalid port `{}`", shorten(port)))?;
                check_port(port)?;
                (host, Some(port))
            }
            None => (entry, None),
        };
        // The URL parser's own host rules, so `127.1` or an IDN here means what it would in a URL.
        match Host::parse(host) {
            Ok(Host::Ipv4(ip)) => {
                refuse_never(IpAddr::V4(ip))?;
                match port {
                    Some(port) => self.sockets.push(SocketAddr::new(IpAddr::V4(ip), port)),
                    None => self.nets.push(IpNet::from(IpAddr::V4(ip))),
                }
            }
            Ok(Host::Ipv6(ip)) => {
                refuse_never(IpAddr::V6(ip))?;
                match port {
                    Some(port) => self.sockets.push(SocketAddr::new(IpAddr::V6(ip), port)),
                    None => self.nets.push(IpNet::from(IpAddr::V6(ip))),
                }
            }
            Ok(Host::Domain(domain)) => {
                let name = normalise_name(&domain);
                if name.is_empty() || name.contains(|c: char| c.is_whitespace() || c == '@') {
                    return Err("is not a host name".to_owned());
                }
                if is_metadata_name(&name) {
                    return Err("is a cloud-metadata host, which can never be allowed".to_owned());
                }
                self.names.push((name, port));
            }
            Err(e) => return Err(format!("is not a host name ({e})")),
        }
        Ok(())
    }

    fn admits(&self, ip: IpAddr, port: Option<u16>, name: Option<&str>) -> bool {
        self.nets.iter().any(|net| net.contains(&ip))
            || port.is_some_and(|port| self.sockets.contains(&SocketAddr::new(ip, port)))
            || name.is_some_and(|name| !matches!(self.admits_name(name, port), NameMatch::No))
    }

    /// `port` None: not known here (the resolver), the URL's port was checked before.
    fn admits_name(&self, name: &str, port: Option<u16>) -> NameMatch {
        let mut listed = false;
        for (entry, entry_port) in &self.names {
            if entry == name {
                listed = true;
                if entry_port.is_none() || port.is_none() || *entry_port == port {
                    return NameMatch::Yes;
                }
            }
        }
        if listed {
            NameMatch::OtherPorts
        } else {
            NameMatch::No
        }
    }
}

fn refuse_never(ip: IpAddr) -> Result<(), String> {
    match classify(ip).kind {
        Kind::Never(never) => Err(format!(
            "is {} address, which can never be allowed",
            never.describe()
        )),
        Kind::Public | Kind::Local(_) => Ok(()),
    }
}

fn check_port(port: u16) -> Result<(), String> {
    if port == 0 {
        Err("has port 0".to_owned())
    } else {
        Ok(())
    }
}

#[cfg(test)]
#[path = "policy_tests.rs"]
mod tests;
