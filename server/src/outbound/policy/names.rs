//! Host-name rules shared by the policy and its allow-list.

/// Host names of cloud metadata services. They resolve to link-local addresses anyway (refused
/// after DNS), but refusing the name itself also covers resolvers that answer differently.
const METADATA_HOSTS: &[&str] = &[
    "metadata.google.internal",
    "metadata.goog",
    "instance-data.ec2.internal",
];

/// Lower case, without the trailing dot of a fully qualified name (`localhost.` is
/// `localhost`).
pub(super) fn normalise_name(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

pub(super) fn is_localhost(name: &str) -> bool {
    name == "localhost" || name.ends_with(".localhost")
}

pub(super) fn is_metadata_name(name: &str) -> bool {
    METADATA_HOSTS.contains(&name)
}

/// User input echoed in a message is cut short, so a 2 KB host cannot flood a response or log.
pub(super) fn shorten(text: &str) -> String {
    const MAX_CHARS: usize = 100;
    if text.chars().count() <= MAX_CHARS {
        text.to_owned()
    } else {
        let head: String = text.chars().take(MAX_CHARS).collect();
        format!("{head}…")
    }
}
