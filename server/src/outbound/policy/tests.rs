//! Tests of `outbound::policy`.

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
