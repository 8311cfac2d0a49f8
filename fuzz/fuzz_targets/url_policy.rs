//! The outbound URL policy, with local providers blocked and no allow-list: no notation of a
//! loopback, private, link-local or otherwise non-public address gets through, whether it
//! comes as a URL (decimal, octal, hex, short, IPv6-embedded, percent-encoded, IDNA) or as
//! an address a name resolved to; the stored (normalised) form of a provider URL gets the
//! verdict its input got; allow-list entries parse or are refused, never panic.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::LazyLock;

use agentry::domain::urls::parse_base_url;
use agentry::outbound::OutboundPolicy;
use libfuzzer_sys::fuzz_target;
use url::{Host, Url};

static STRICT: LazyLock<OutboundPolicy> =
    LazyLock::new(|| OutboundPolicy::new(true, &[]).expect("an empty allow-list"));

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 3 {
        0 => url(rest),
        1 => resolved(rest),
        _ => allow_list(rest),
    }
});

fn url(data: &[u8]) {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    // `parse_base_url` trims Unicode white space, which the URL parser alone would refuse.
    let raw = raw.trim();
    let Ok(parsed) = Url::parse(raw) else {
        assert!(
            parse_base_url(raw).is_err(),
            "{raw:?}: unparsable but accepted"
        );
        return;
    };
    let verdict = STRICT.check_url(&parsed).is_ok();
    if verdict {
        match parsed.host() {
            Some(Host::Ipv4(ip)) => assert!(public_v4(ip), "{raw:?} reaches {ip}"),
            Some(Host::Ipv6(ip)) => assert!(public_v6(ip), "{raw:?} reaches {ip}"),
            Some(Host::Domain(name)) => {
                let name = name.trim_end_matches('.').to_ascii_lowercase();
                assert!(
                    name != "localhost" && !name.ends_with(".localhost"),
                    "{raw:?} reaches {name}"
                );
            }
            None => panic!("{raw:?} has no host but was allowed"),
        }
    }
    // The serialised URL is what is stored and what the client later connects to.
    let again = Url::parse(parsed.as_str()).expect("a serialised URL parses");
    assert_eq!(STRICT.check_url(&again).is_ok(), verdict, "{raw:?}");
    if let Ok(stored) = parse_base_url(raw) {
        let stored = Url::parse(&stored).expect("a stored base URL parses");
        assert_eq!(stored.host(), parsed.host(), "{raw:?}");
        assert_eq!(STRICT.check_url(&stored).is_ok(), verdict, "{raw:?}");
    }
}

fn resolved(data: &[u8]) {
    let (ip, rest) = match data.len() {
        n if n >= 18 => {
            let octets: [u8; 16] = data[..16].try_into().expect("16 bytes");
            (IpAddr::V6(Ipv6Addr::from(octets)), &data[16..])
        }
        n if n >= 6 => {
            let octets: [u8; 4] = data[..4].try_into().expect("4 bytes");
            (IpAddr::V4(Ipv4Addr::from(octets)), &data[4..])
        }
        _ => return,
    };
    let port = u16::from_be_bytes([rest[0], rest[1]]);
    let allowed = STRICT
        .check_addr("provider.example", SocketAddr::new(ip, port))
        .is_ok();
    let public = match ip {
        IpAddr::V4(v4) => public_v4(v4),
        IpAddr::V6(v6) => public_v6(v6),
    };
    assert_eq!(allowed, public, "{ip}");
}

fn allow_list(data: &[u8]) {
    let Ok(entry) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(policy) = OutboundPolicy::new(true, &[entry.to_owned()]) {
        for probe in [
            "http://127.0.0.1:8080",
            "http://10.1.2.3",
            "http://[::1]:11434",
        ] {
            let _ = policy.check_url(&Url::parse(probe).expect("a probe URL"));
        }
        // Whatever an entry admits, link-local (cloud metadata) addresses stay refused.
        let metadata = Url::parse("http://169.254.169.254/latest").expect("a probe URL");
        assert!(policy.check_url(&metadata).is_err(), "{entry:?}");
    }
}

/// Written from the address registries, independently of the policy's own classifier.
fn public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    let local = a == 0
        || a == 10
        || a == 127
        || (a == 169 && b == 254)
        || (a == 172 && (16..32).contains(&b))
        || (a == 192 && b == 168)
        || (a == 100 && (64..128).contains(&b))
        || a >= 224;
    !local
}

fn public_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    let v4 = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    // Addresses whose packets reach an IPv4 host: that host decides.
    if s[..5] == [0; 5] && s[5] == 0xffff {
        return public_v4(v4(s[6], s[7])); // ::ffff:a.b.c.d, mapped
    }
    if s[..4] == [0; 4] && s[4] == 0xffff && s[5] == 0 {
        return public_v4(v4(s[6], s[7])); // ::ffff:0:a.b.c.d, translated
    }
    if s[..6] == [0; 6] && (s[6] != 0 || s[7] > 1) {
        return public_v4(v4(s[6], s[7])); // ::a.b.c.d, compatible
    }
    if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0; 4] {
        return public_v4(v4(s[6], s[7])); // NAT64
    }
    if s[0] == 0x2002 {
        return public_v4(v4(s[1], s[2])); // 6to4
    }
    if s[0] == 0x2001 && s[1] == 0 {
        return public_v4(Ipv4Addr::from(!u32::from(v4(s[6], s[7])))); // Teredo client
    }
    let local = ip.is_unspecified()
        || ip.is_loopback()
        || s[0] >= 0xff00
        || (s[0] & 0xfe00) == 0xfc00
        || (s[0] & 0xffc0) == 0xfe80
        || (s[0] & 0xffc0) == 0xfec0;
    !local
}
