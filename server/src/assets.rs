//! The embedded web UI: the asset table written by `build.rs` and the fallback handler that
//! serves it, with `index.html` for `/` and for client-side app routes.

use std::sync::OnceLock;

use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

/// One embedded file of the UI.
#[derive(Debug)]
pub struct Asset {
    /// URL path without the leading slash, e.g. `ui_bg.wasm`.
    pub path: &'static str,
    pub content_type: &'static str,
    pub bytes: &'static [u8],
}

// Defines `pub static ASSETS: &[Asset]`.
include!(concat!(env!("OUT_DIR"), "/assets.rs"));

const INDEX: &str = "index.html";

/// Serves the embedded UI; meant as the router fallback for everything outside `/api`.
///
/// File names are not content-hashed, so every response is `Cache-Control: no-cache` with a
/// strong `ETag`: browsers revalidate on each load and get a bodiless 304 while nothing changed.
/// Paths without a file extension are app routes and get `index.html` (200); unknown paths
/// with an extension get a plain 404.
pub async fn serve(method: Method, uri: Uri, headers: HeaderMap) -> Response {
    if method != Method::GET && method != Method::HEAD {
        return (
            StatusCode::METHOD_NOT_ALLOWED,
            [(header::ALLOW, "GET, HEAD")],
        )
            .into_response();
    }
    let found = resolve(ASSETS, uri.path())
        .and_then(|index| Some((ASSETS.get(index)?, etags().get(index)?)));
    let Some((asset, etag)) = found else {
        return (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "Not found\n",
        )
            .into_response();
    };

    let mut response = if if_none_match(&headers, etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, asset.content_type)], asset.bytes).into_response()
    };
    let response_headers = response.headers_mut();
    response_headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(value) = HeaderValue::from_str(etag) {
        response_headers.insert(header::ETAG, value);
    }
    response
}

/// Maps a request path to the index of the asset to serve, or `None` for a 404.
fn resolve(assets: &[Asset], path: &str) -> Option<usize> {
    let find = |name: &str| assets.iter().position(|asset| asset.path == name);
    let path = path.trim_start_matches('/');
    if path.is_empty() {
        return find(INDEX);
    }
    if let Some(index) = find(path) {
        return Some(index);
    }
    // A mistyped API call must not get the app with a 200.
    if path == "api" || path.starts_with("api/") {
        return None;
    }
    let last_segment = path.rsplit('/').next().unwrap_or(path);
    if last_segment.contains('.') {
        None
    } else {
        find(INDEX)
    }
}

/// Strong ETags of `ASSETS`, by index, computed on first use.
fn etags() -> &'static [String] {
    static ETAGS: OnceLock<Vec<String>> = OnceLock::new();
    ETAGS.get_or_init(|| ASSETS.iter().map(|asset| etag(asset.bytes)).collect())
}

/// 64-bit FNV-1a of the bytes: stable across builds and processes (unlike `DefaultHasher`,
/// whose algorithm may change), which keeps ETags valid across restarts.
fn etag(bytes: &[u8]) -> String {
    let hash = bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    format!("\"{hash:016x}\"")
}

/// Whether `If-None-Match` names `etag` (weak comparison, as RFC 9110 prescribes for it).
fn if_none_match(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &[Asset] = &[
        Asset {
            path: "index.html",
            content_type: "text/html; charset=utf-8",
            bytes: b"<!doctype html>",
        },
        Asset {
            path: "ui.js",
            content_type: "text/javascript; charset=utf-8",
            bytes: b"export {}",
        },
        Asset {
            path: "snippets/x/inline0.js",
            content_type: "text/javascript; charset=utf-8",
            bytes: b"",
        },
    ];

    fn resolved(path: &str) -> Option<&'static str> {
        resolve(TABLE, path)
            .and_then(|index| TABLE.get(index))
            .map(|asset| asset.path)
    }

    #[test]
    fn resolve_maps_paths_to_files_app_routes_or_not_found() {
        let cases = [
            ("/", Some("index.html"), "root is the app"),
            (
                "/index.html",
                Some("index.html"),
                "files are served by name",
            ),
            ("/ui.js", Some("ui.js"), "files are served by name"),
            (
                "/snippets/x/inline0.js",
                Some("snippets/x/inline0.js"),
                "nested files",
            ),
            ("/agents", Some("index.html"), "app route"),
            (
                "/agents/0190b7e2-aaaa/",
                Some("index.html"),
                "app route with trailing slash",
            ),
            ("/missing.js", None, "unknown file"),
            (
                "/agents/favicon.ico",
                None,
                "unknown file below an app route",
            ),
            ("/api", None, "API namespace"),
            ("/api/v1/nope", None, "unknown API route"),
        ];
        for (path, expected, why) in cases {
            assert_eq!(resolved(path), expected, "{path}: {why}");
        }
    }

    #[test]
    fn if_none_match_accepts_lists_weak_tags_and_star() {
        let tag = "\"00000000000000ab\"";
        let cases = [
            ("\"00000000000000ab\"", true, "exact"),
            ("W/\"00000000000000ab\"", true, "weak form of the same tag"),
            ("\"1\", \"00000000000000ab\"", true, "in a list"),
            ("*", true, "any"),
            ("\"00000000000000ac\"", false, "other tag"),
            ("00000000000000ab", false, "unquoted"),
        ];
        for (header_value, expected, why) in cases {
            let mut headers = HeaderMap::new();
            headers.insert(
                header::IF_NONE_MATCH,
                HeaderValue::from_static(header_value),
            );
            assert_eq!(
                if_none_match(&headers, tag),
                expected,
                "{header_value}: {why}"
            );
        }
        assert!(!if_none_match(&HeaderMap::new(), tag), "no header");
    }

    #[test]
    fn etag_is_a_quoted_hex_hash_that_changes_with_the_bytes() {
        let a = etag(b"a");
        assert_eq!(a.len(), 18);
        assert!(a.starts_with('"') && a.ends_with('"'));
        assert_ne!(a, etag(b"b"));
        assert_eq!(a, etag(b"a"));
    }

    #[tokio::test]
    async fn serve_answers_revalidation_with_304_and_rejects_other_methods() {
        let first = serve(Method::GET, Uri::from_static("/agents"), HeaderMap::new()).await;
        assert_eq!(first.status(), StatusCode::OK);
        assert_eq!(
            first
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok()),
            Some("text/html; charset=utf-8")
        );
        assert_eq!(
            first
                .headers()
                .get(header::CACHE_CONTROL)
                .and_then(|v| v.to_str().ok()),
            Some("no-cache")
        );
        let Some(etag) = first.headers().get(header::ETAG).cloned() else {
            panic!("index.html response has no ETag");
        };

        let mut headers = HeaderMap::new();
        headers.insert(header::IF_NONE_MATCH, etag);
        let second = serve(Method::GET, Uri::from_static("/"), headers).await;
        assert_eq!(second.status(), StatusCode::NOT_MODIFIED);

        let missing = serve(Method::GET, Uri::from_static("/nope.js"), HeaderMap::new()).await;
        assert_eq!(missing.status(), StatusCode::NOT_FOUND);

        let post = serve(Method::POST, Uri::from_static("/"), HeaderMap::new()).await;
        assert_eq!(post.status(), StatusCode::METHOD_NOT_ALLOWED);
    }
}
