//! Security headers: a strict Content-Security-Policy and friends on the web app and the API,
//! and API responses never cached.

use agentry_tests::{Backend, TestApp, db_tests};
use reqwest::Method;

async fn every_response_carries_the_security_headers(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let cases = [
        ("/", false),
        ("/providers", false),
        ("/style.css", false),
        ("/api/providers", true),
        ("/api/agents/not-a-uuid", true),
        ("/api/nothing-here", true),
        ("/openapi.json", true),
        ("/healthz", false),
    ];
    for (path, is_api) in cases {
        let resp = app.send(app.raw(Method::GET, path)).await;
        let csp = resp
            .header("content-security-policy")
            .unwrap_or_default()
            .to_owned();
        for directive in [
            "default-src 'none'",
            "script-src 'self' 'wasm-unsafe-eval'",
            "connect-src 'self'",
            "frame-ancestors 'none'",
        ] {
            assert!(
                csp.contains(directive),
                "{path}: CSP `{csp}` lacks `{directive}`"
            );
        }
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        assert_eq!(
            resp.header("x-content-type-options"),
            Some("nosniff"),
            "{path}"
        );
        assert_eq!(
            resp.header("referrer-policy"),
            Some("no-referrer"),
            "{path}"
        );
        assert_eq!(resp.header("x-frame-options"), Some("DENY"), "{path}");
        if is_api {
            assert_eq!(resp.header("cache-control"), Some("no-store"), "{path}");
        }
    }
    // The app's HTML has no inline script or style for the policy to break.
    let page = app.send(app.raw(Method::GET, "/")).await.text;
    assert!(
        !page.contains("<script>") && !page.contains("style="),
        "{page}"
    );
}

db_tests!(every_response_carries_the_security_headers);
