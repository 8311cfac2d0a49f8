//! `AGENTRY_PROVIDER_URL_ALLOWLIST`: parsing its entries (host, host:port, IP, ip:port, CIDR)
//! and deciding whether an address or a name is on it.

use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;
use url::Host;

use super::classify::{Kind, classify};
use super::names::{is_metadata_name, normalise_name, shorten};

#[derive(Debug, Clone, Default)]
pub(super) struct AllowList {
    /// CIDRs and bare addresses (as /32 or /128): any port, literal or resolved.
    nets: Vec<IpNet>,
    /// `ip:port`: only a URL naming this address literally, with this port.
    sockets: Vec<SocketAddr>,
    /// Host names, with an optional port.
    names: Vec<(String, Option<u16>)>,
}

pub(super) enum NameMatch {
    Yes,
    No,
    /// Listed, but not with this port.
    OtherPorts,
}

impl AllowList {
    pub(super) fn add(&mut self, entry: &str) -> Result<(), String> {
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

    pub(super) fn admits(&self, ip: IpAddr, port: Option<u16>, name: Option<&str>) -> bool {
        self.nets.iter().any(|net| net.contains(&ip))
            || port.is_some_and(|port| self.sockets.contains(&SocketAddr::new(ip, port)))
            || name.is_some_and(|name| !matches!(self.admits_name(name, port), NameMatch::No))
    }

    /// `port` None: not known here (the resolver), the URL's port was checked before.
    pub(super) fn admits_name(&self, name: &str, port: Option<u16>) -> NameMatch {
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
