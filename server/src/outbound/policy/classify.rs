//! What kind of address an IP is: public, local (loopback, private, CGNAT, unique-local) or
//! never allowed (link-local, metadata, unspecified, multicast, broadcast, reserved), looking
//! through every way IPv6 can carry an IPv4 address.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Metadata endpoints outside 169.254.0.0/16 (which is refused as a whole).
const METADATA_V4: &[Ipv4Addr] = &[Ipv4Addr::new(100, 100, 100, 200)]; // Alibaba Cloud
const METADATA_V6: &[Ipv6Addr] = &[Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254)]; // AWS

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Public,
    Local(Local),
    Never(Never),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Local {
    Loopback,
    Private,
    SharedCgnat,
    /// IPv6 unique-local addresses (fc00::/7).
    Ula,
}

impl Local {
    pub(super) fn describe(self) -> &'static str {
        match self {
            Local::Loopback => "a loopback",
            Local::Private => "a private-network",
            Local::SharedCgnat => "a shared (CGNAT, 100.64.0.0/10)",
            Local::Ula => "a unique-local (fc00::/7)",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Never {
    LinkLocal,
    Metadata,
    Unspecified,
    Multicast,
    Broadcast,
    Reserved,
}

impl Never {
    pub(super) fn describe(self) -> &'static str {
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
pub(super) struct Class {
    pub(super) kind: Kind,
    /// The IPv4 address an IPv6 address carries (mapped, compatible, NAT64, 6to4, Teredo),
    /// which is what decided its class.
    pub(super) embedded: Option<Ipv4Addr>,
}

pub(super) fn classify(ip: IpAddr) -> Class {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
