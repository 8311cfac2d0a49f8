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
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn policy(block_local: bool, allow: &[&str]) -> OutboundPolicy {
        let allow: Vec<String> = allow.iter().map(|s| (*s).to_owned()).collect();
        OutboundPolicy::new(block_local, &allow).unwrap()
    }

    fn check(policy: &OutboundPolicy, raw: &str) -> Result<(), Blocked> {
        let url = Url::parse(raw).unwrap_or_else(|e| panic!("{raw:?} does not parse: {e}"));
        policy.check_url(&url)
    }

    const LOCAL: BlockReason = BlockReason::LocalNetwork;
    const NEVER: BlockReason = BlockReason::NeverAllowed;
    const CREDS: BlockReason = BlockReason::Credentials;
    const SCHEME: BlockReason = BlockReason::Scheme;

    /// (URL, reason it must be refused for with `block_local = true`, why it is in the table).
    const BAD_URLS: &[(&str, BlockReason, &str)] = &[
        ("http://127.0.0.1", LOCAL, "loopback"),
        ("http://127.0.0.1:11434/api", LOCAL, "loopback with port"),
        ("http://127.1", LOCAL, "short IPv4"),
        ("http://127.0.1", LOCAL, "three-part IPv4"),
        ("http://2130706433", LOCAL, "decimal IPv4"),
        ("http://0177.0.0.1", LOCAL, "octal IPv4"),
        ("http://017700000001", LOCAL, "octal 32-bit IPv4"),
        ("http://0x7f000001", LOCAL, "hex IPv4"),
        ("http://0x7f.1", LOCAL, "hex short IPv4"),
        ("http://0x7F.0x0.0x0.0x1", LOCAL, "hex dotted IPv4"),
        ("http://127.0.0.1./", LOCAL, "IPv4 with trailing dot"),
        ("http://%31%32%37.0.0.1/", LOCAL, "percent-encoded IPv4"),
        (
            "http://\u{ff11}\u{ff12}\u{ff17}.0.0.1/",
            LOCAL,
            "full-width digits",
        ),
        (
            "http://127.0.0.1#@example.com",
            LOCAL,
            "fragment hides the host",
        ),
        (
            "http://127.0.0.1\\@example.com",
            LOCAL,
            "backslash is a slash",
        ),
        (
            "http://user@evil@127.0.0.1",
            LOCAL,
            "double @ still targets 127.0.0.1",
        ),
        ("http://[::1]", LOCAL, "IPv6 loopback"),
        ("http://[0:0:0:0:0:0:0:1]:8080", LOCAL, "long IPv6 loopback"),
        ("http://[::ffff:127.0.0.1]", LOCAL, "IPv4-mapped loopback"),
        ("http://[::ffff:7f00:1]", LOCAL, "IPv4-mapped loopback, hex"),
        ("http://[::127.0.0.1]", LOCAL, "IPv4-compatible loopback"),
        (
            "http://[::ffff:0:127.0.0.1]",
            LOCAL,
            "IPv4-translated loopback",
        ),
        ("http://[64:ff9b::127.0.0.1]", LOCAL, "NAT64 loopback"),
        ("http://[2002:7f00:1::]", LOCAL, "6to4 loopback"),
        ("http://localhost", LOCAL, "localhost"),
        (
            "http://localhost.:11434",
            LOCAL,
            "localhost with trailing dot",
        ),
        ("http://LOCALHOST", LOCAL, "upper-case localhost"),
        ("http://foo.localhost", LOCAL, "*.localhost"),
        (
            "http://%6c%6f%63%61%6c%68%6f%73%74/",
            LOCAL,
            "percent-encoded localhost",
        ),
        ("http://10.0.0.1", LOCAL, "10/8"),
        ("http://172.16.0.1", LOCAL, "172.16/12 low end"),
        ("http://172.31.255.254", LOCAL, "172.16/12 high end"),
        ("http://192.168.1.1", LOCAL, "192.168/16"),
        (
            "https://192.168.0.10:8443/v1",
            LOCAL,
            "192.168/16 over https",
        ),
        ("http://100.64.0.1", LOCAL, "CGNAT"),
        ("http://[fd00::1]", LOCAL, "unique-local"),
        ("http://[fc00::1]", LOCAL, "unique-local fc00"),
        ("http://[fec0::1]", LOCAL, "site-local"),
        ("http://[::ffff:10.0.0.1]", LOCAL, "IPv4-mapped private"),
        ("http://169.254.169.254", NEVER, "metadata"),
        (
            "http://169.254.169.254/latest/meta-data/",
            NEVER,
            "metadata path",
        ),
        ("http://2852039166", NEVER, "decimal metadata"),
        ("http://0xa9fea9fe", NEVER, "hex metadata"),
        ("http://0251.0376.0251.0376", NEVER, "octal metadata"),
        ("http://169.254.1.1", NEVER, "link-local"),
        ("http://169.254.170.2", NEVER, "ECS task metadata"),
        ("http://100.100.100.200", NEVER, "Alibaba metadata"),
        ("http://[fd00:ec2::254]", NEVER, "AWS IPv6 metadata"),
        ("http://[fe80::1]", NEVER, "IPv6 link-local"),
        ("http://[febf::1]", NEVER, "IPv6 link-local high end"),
        (
            "http://[0:0:0:0:0:ffff:169.254.169.254]",
            NEVER,
            "mapped metadata",
        ),
        ("http://[::ffff:a9fe:a9fe]", NEVER, "mapped metadata, hex"),
        ("http://[64:ff9b::169.254.169.254]", NEVER, "NAT64 metadata"),
        ("http://[2002:a9fe:a9fe::1]", NEVER, "6to4 metadata"),
        (
            "http://[2001:0:4136:e378:8000:63bf:5601:5601]",
            NEVER,
            "Teredo metadata",
        ),
        (
            "http://metadata.google.internal",
            NEVER,
            "GCP metadata name",
        ),
        (
            "http://METADATA.google.internal./",
            NEVER,
            "GCP metadata name, FQDN",
        ),
        (
            "http://example.com@169.254.169.254",
            NEVER,
            "user-info before metadata",
        ),
        ("http://0.0.0.0", NEVER, "unspecified"),
        ("http://0.0.0.0:11434", NEVER, "unspecified with port"),
        ("http://0", NEVER, "zero"),
        ("http://0.1.2.3", NEVER, "0/8"),
        ("http://[::]", NEVER, "IPv6 unspecified"),
        ("http://[::ffff:0.0.0.0]", NEVER, "mapped unspecified"),
        ("http://255.255.255.255", NEVER, "broadcast"),
        ("http://224.0.0.1", NEVER, "multicast"),
        ("http://239.255.255.250", NEVER, "SSDP multicast"),
        ("http://[ff02::1]", NEVER, "IPv6 multicast"),
        ("http://240.0.0.1", NEVER, "reserved"),
        (
            "http://169.254.169.254@example.com",
            CREDS,
            "user-info that looks like a host",
        ),
        ("http://good@example.com", CREDS, "user name"),
        ("http://user:secret@example.com", CREDS, "user and password"),
        ("http://:secret@example.com", CREDS, "password only"),
        ("file:///etc/passwd", SCHEME, "file"),
        ("ftp://example.com", SCHEME, "ftp"),
        ("gopher://127.0.0.1:6379/_INFO", SCHEME, "gopher"),
        ("dict://127.0.0.1:11211/", SCHEME, "dict"),
        ("javascript:alert(1)", SCHEME, "javascript"),
        ("data:text/plain,hi", SCHEME, "data"),
        ("ws://example.com", SCHEME, "websocket"),
    ];

    #[test]
    fn bad_urls_are_refused_for_the_right_reason() {
        let policy = policy(true, &[]);
        assert!(BAD_URLS.len() >= 40);
        for (url, reason, why) in BAD_URLS {
            match check(&policy, url) {
                Ok(()) => panic!("{why}: {url:?} was accepted"),
                Err(blocked) => assert_eq!(
                    blocked.reason(),
                    *reason,
                    "{why}: {url:?} refused as {blocked}"
                ),
            }
        }
    }

    #[test]
    fn always_refused_set_stays_refused_without_block_local_and_when_allow_listed() {
        let everything = ["0.0.0.0/0", "::/0", "metadata.example"];
        for policy in [policy(false, &[]), policy(true, &everything)] {
            for (url, reason, why) in BAD_URLS {
                if *reason == NEVER {
                    let result = check(&policy, url);
                    assert_eq!(result.map_err(|b| b.reason()), Err(NEVER), "{why}: {url:?}");
                }
            }
        }
    }

    #[test]
    fn local_urls_are_allowed_by_default() {
        let policy = policy(false, &[]);
        for (url, reason, why) in BAD_URLS {
            // User-info is refused whatever the host; that is tested above.
            if *reason == LOCAL && !url.contains('@') {
                assert_eq!(check(&policy, url), Ok(()), "{why}: {url:?}");
            }
        }
    }

    #[test]
    fn public_urls_are_allowed_even_when_local_ones_are_blocked() {
        let policy = policy(true, &[]);
        let table = [
            "http://example.com",
            "https://api.openai.com/v1",
            "http://8.8.8.8:11434",
            "http://[2606:4700:4700::1111]",
            "http://[::ffff:8.8.8.8]",
            "http://[2002:808:808::]",
            "http://172.32.0.1",
            "http://100.128.0.1",
            "http://192.0.2.1",
            "http://[2001:db8::1]",
            "http://localhost.example.com",
            "http://127.0.0.1.nip.io",
        ];
        for url in table {
            assert_eq!(check(&policy, url), Ok(()), "{url}");
        }
    }

    #[test]
    fn messages_name_the_address_and_never_the_credentials() {
        let policy = policy(true, &[]);
        let blocked = check(&policy, "http://[::ffff:169.254.169.254]/").unwrap_err();
        assert_eq!(
            blocked.to_string(),
            "points to ::ffff:169.254.169.254 (IPv4 169.254.169.254), a link-local/cloud-metadata \
             address, which is never allowed"
        );
        let blocked = check(&policy, "http://10.0.0.1/").unwrap_err();
        assert!(
            blocked
                .to_string()
                .contains("AGENTRY_BLOCK_LOCAL_PROVIDERS is set")
        );
        let blocked = check(&policy, "http://admin:hunter2@example.com").unwrap_err();
        assert!(!blocked.to_string().contains("hunter2"));
        assert!(!blocked.to_string().contains("admin"));
        let addr = SocketAddr::from(([169, 254, 169, 254], 0));
        assert_eq!(
            policy
                .check_addr("evil.example", addr)
                .unwrap_err()
                .to_string(),
            "host `evil.example` resolves to 169.254.169.254, a link-local/cloud-metadata \
             address, which is never allowed"
        );
    }

    #[test]
    fn allow_list_reopens_only_what_it_names() {
        let policy = policy(
            true,
            &[
                "127.0.0.1:11434",
                "10.0.0.0/8",
                "192.168.1.7",
                "[fd00::5]:8000",
                "ollama.internal:11434",
                "vllm.internal",
                "localhost:1234",
                "",
            ],
        );
        let allowed = [
            "http://127.0.0.1:11434",
            "http://127.1:11434/api/tags",
            "http://10.1.2.3",
            "https://10.255.0.1:8443",
            "http://192.168.1.7:9999",
            "http://[fd00::5]:8000",
            "http://[::ffff:10.0.0.1]",
            "http://ollama.internal:11434",
            "http://OLLAMA.internal.:11434",
            "http://vllm.internal:8000",
            "http://localhost:1234",
        ];
        for url in allowed {
            assert_eq!(check(&policy, url), Ok(()), "{url}");
        }
        let refused = [
            ("http://127.0.0.1:5432", LOCAL),
            ("http://127.0.0.2:11434", LOCAL),
            ("http://192.168.1.8", LOCAL),
            ("http://[fd00::5]:8001", LOCAL),
            ("http://[::1]:11434", LOCAL),
            ("http://localhost:11434", BlockReason::PortNotAllowListed),
            (
                "http://ollama.internal:8080",
                BlockReason::PortNotAllowListed,
            ),
        ];
        for (url, reason) in refused {
            assert_eq!(
                check(&policy, url).map_err(|b| b.reason()),
                Err(reason),
                "{url}"
            );
        }
    }

    #[test]
    fn allow_list_applies_to_resolved_addresses() {
        let policy = policy(
            true,
            &["10.0.0.0/8", "ollama.internal:11434", "127.0.0.1:80"],
        );
        let unknown_port = |ip: [u8; 4]| SocketAddr::from((ip, 0));
        assert_eq!(
            policy.check_addr("a.example", unknown_port([10, 9, 8, 7])),
            Ok(())
        );
        assert_eq!(
            policy.check_addr("a.example", unknown_port([8, 8, 8, 8])),
            Ok(())
        );
        // A name entry covers whatever the name resolves to (its port was checked on the URL)…
        assert_eq!(
            policy.check_addr("ollama.internal.", unknown_port([192, 168, 0, 2])),
            Ok(())
        );
        // …but never the always-refused set.
        assert!(
            policy
                .check_addr("ollama.internal", unknown_port([169, 254, 169, 254]))
                .is_err()
        );
        // An ip:port entry needs the port, which the resolver does not know.
        assert!(
            policy
                .check_addr("a.example", unknown_port([127, 0, 0, 1]))
                .is_err()
        );
        assert_eq!(
            policy.check_addr("a.example", SocketAddr::from(([127, 0, 0, 1], 80))),
            Ok(())
        );
        assert!(
            policy
                .check_addr("other.example", unknown_port([192, 168, 0, 2]))
                .is_err()
        );
        assert!(
            policy
                .check_addr("metadata.google.internal", unknown_port([8, 8, 8, 8]))
                .is_err()
        );
    }

    #[test]
    fn bad_allow_list_entries_stop_start_up_and_are_named() {
        let table = [
            ("http://10.0.0.1", "a URL"),
            ("10.0.0.0/33", "prefix too long"),
            ("10.0.0.0/x", "prefix not a number"),
            ("host:0", "port 0"),
            ("host:99999", "port too large"),
            ("host:abc", "port not a number"),
            ("169.254.169.254", "metadata address"),
            ("[fe80::1]:80", "link-local with port"),
            ("0.0.0.0", "unspecified"),
            ("metadata.google.internal", "metadata name"),
            ("[::1", "unclosed bracket"),
            ("a b", "space"),
            ("user@host", "user-info"),
        ];
        for (entry, why) in table {
            let error = OutboundPolicy::new(true, &[entry.to_owned()])
                .expect_err(&format!("{why}: {entry:?} was accepted"));
            assert!(
                error.to_string().contains(&format!("`{entry}`")),
                "{why}: {error}"
            );
        }
    }

    #[test]
    fn embedded_ipv4_forms_are_found() {
        let table = [
            ("::ffff:1.2.3.4", Some([1, 2, 3, 4])),
            ("::1.2.3.4", Some([1, 2, 3, 4])),
            ("::ffff:0:1.2.3.4", Some([1, 2, 3, 4])),
            ("64:ff9b::1.2.3.4", Some([1, 2, 3, 4])),
            ("2002:102:304::1", Some([1, 2, 3, 4])),
            ("2001:0:4136:e378:8000:63bf:fefd:fcfb", Some([1, 2, 3, 4])),
            ("::1", None),
            ("::", None),
            ("2001:db8::1", None),
            ("fe80::1", None),
        ];
        for (ip, want) in table {
            let ip: Ipv6Addr = ip.parse().unwrap();
            assert_eq!(embedded_v4(ip), want.map(Ipv4Addr::from), "{ip}");
        }
    }

    #[tokio::test]
    async fn resolving_check_refuses_names_that_resolve_to_refused_addresses() {
        let policy = policy(true, &[]);
        // `localhost` is caught without DNS; resolution of a missing name is not a refusal.
        let url = Url::parse("http://localhost:11434").unwrap();
        assert_eq!(
            policy
                .check_url_resolving(&url)
                .await
                .map_err(|b| b.reason()),
            Err(LOCAL)
        );
        let url = Url::parse("http://no-such-host.invalid").unwrap();
        assert_eq!(policy.check_url_resolving(&url).await, Ok(()));
        let url = Url::parse("http://[::1]").unwrap();
        assert!(policy.check_url_resolving(&url).await.is_err());
    }
}
