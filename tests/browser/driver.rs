//! A small driver for the journeys: Debian's Chromium over CDP (chromiumoxide), one browser
//! process per [`Browser`], and DOM helpers that poll with a deadline instead of sleeping.
//!
//! Every element helper takes a CSS selector that must match exactly one element (as
//! Playwright's strict mode does): a selector that matches two cards is a test bug, and
//! waiting until it matches one makes transient states (a list re-rendering) harmless.
//! Actions run as small JavaScript snippets (`el.click()`, the native `value` setter plus
//! `input`/`change` events), which is what Leptos's delegated listeners react to.
//!
//! A [`Browser`] dropped while the test panics saves `browser-artifacts/<test>[-label].png`
//! and `.html` under the cargo target directory and prints the page's console messages and
//! uncaught exceptions to stderr. That needs the CDP handler to keep running while the test
//! thread unwinds: tests use `#[tokio::test(flavor = "multi_thread")]`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chromiumoxide::cdp::browser_protocol::page::CaptureScreenshotFormat;
use chromiumoxide::cdp::js_protocol::runtime::{EventConsoleApiCalled, EventExceptionThrown};
use chromiumoxide::handler::viewport::Viewport;
use chromiumoxide::page::ScreenshotParams;
use chromiumoxide::{BrowserConfig, Page};
use futures_util::StreamExt;
use serde_json::{Value, json};

/// Where scripts/setup installs Chromium; `AGENTRY_CHROMIUM` overrides it.
const DEFAULT_CHROMIUM: &str = "/usr/bin/chromium";

/// How long a wait helper polls before failing the test.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15);

/// Pause between two polls of the DOM.
const POLL: Duration = Duration::from_millis(50);

/// Flags from docs/reference (ui-pipeline §4). chromiumoxide prepends `--` itself; headless
/// and no-sandbox come from the builder.
const CHROMIUM_ARGS: [&str; 7] = [
    "disable-gpu",
    "disable-quic",
    "no-first-run",
    "disable-background-networking",
    "disable-component-update",
    "disable-sync",
    "disable-dev-shm-usage",
];

/// One headless Chromium process with one page.
pub struct Browser {
    browser: Option<chromiumoxide::Browser>,
    handler: Option<tokio::task::JoinHandle<()>>,
    page: Page,
    /// Console messages and uncaught exceptions, printed when the test fails.
    console: Arc<Mutex<Vec<String>>>,
    /// Names the failure artifacts when a test drives two browsers.
    label: String,
    timeout: Duration,
    _profile: tempfile::TempDir,
}

/// What [`Browser::wait_text`] expects of an element's `innerText` (`Equals` trims it).
#[derive(Debug, Clone, Copy)]
pub enum Text<'a> {
    Equals(&'a str),
    Contains(&'a str),
}

impl Browser {
    /// A fresh browser (its own profile directory) with a 1280x900 viewport.
    pub async fn launch() -> Browser {
        Browser::launch_with(1280, 900, "").await
    }

    /// A fresh browser with this viewport; `label` tells the artifacts of two browsers in
    /// one test apart (may be empty).
    pub async fn launch_with(width: u32, height: u32, label: &str) -> Browser {
        let executable = std::env::var("AGENTRY_CHROMIUM").unwrap_or(DEFAULT_CHROMIUM.to_owned());
        assert!(
            Path::new(&executable).exists(),
            "Chromium not found at {executable}: run scripts/setup (it installs Debian's \
             chromium package), or point AGENTRY_CHROMIUM at a Chromium binary"
        );
        let profile = tempfile::tempdir().expect("temp dir for the Chromium profile");
        let config = BrowserConfig::builder()
            .chrome_executable(&executable)
            .user_data_dir(profile.path())
            .no_sandbox()
            .args(CHROMIUM_ARGS)
            .window_size(width, height)
            .viewport(Viewport {
                width,
                height,
                ..Viewport::default()
            })
            .build()
            .unwrap_or_else(|e| panic!("Chromium config: {e}"));
        let (browser, mut handler) = chromiumoxide::Browser::launch(config)
            .await
            .unwrap_or_else(|e| panic!("launching {executable}: {e}"));
        // The handler is the CDP connection: it must be polled for anything to happen. Its
        // errors are about single messages (an event type this version does not know), not
        // the connection, so it keeps going until the browser is gone.
        let handler = tokio::spawn(async move { while handler.next().await.is_some() {} });
        let page = browser.new_page("about:blank").await.expect("open a page");
        // Every document records the Content-Security-Policy violations it sees (the server's
        // policy is strict; the app must not need anything it forbids).
        page.evaluate_on_new_document(CSP_RECORDER)
            .await
            .expect("install the CSP violation recorder");
        let console = Arc::new(Mutex::new(Vec::new()));
        collect_console(&page, &console).await;
        Browser {
            browser: Some(browser),
            handler: Some(handler),
            page,
            console,
            label: label.to_owned(),
            timeout: DEFAULT_TIMEOUT,
            _profile: profile,
        }
    }

    /// The chromiumoxide page, for anything the helpers do not cover.
    pub fn page(&self) -> &Page {
        &self.page
    }

    /// Changes how long the wait helpers poll (default 15 s).
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// Fails the test if the current document saw a Content-Security-Policy violation.
    pub async fn assert_no_csp_violations(&self) {
        let seen = self
            .eval("JSON.stringify(window.__cspViolations || [])")
            .await;
        let seen = seen.as_str().unwrap_or("[]").to_owned();
        assert_eq!(seen, "[]", "the page broke the Content-Security-Policy");
    }

    /// Navigates and waits for the load event.
    pub async fn goto(&self, url: &str) {
        self.assert_no_csp_violations().await;
        self.page
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("navigating to {url}: {e}"));
    }

    /// Evaluates a JavaScript expression (promises are awaited) and returns its JSON value.
    pub async fn eval(&self, expression: &str) -> Value {
        self.try_eval(expression)
            .await
            .unwrap_or_else(|e| panic!("evaluating `{expression}`: {e}"))
    }

    async fn try_eval(&self, expression: &str) -> Result<Value, String> {
        let result = self
            .page
            .evaluate_expression(expression)
            .await
            .map_err(|e| e.to_string())?;
        // `undefined` has no value; treat it as null.
        Ok(result.value().cloned().unwrap_or(Value::Null))
    }

    /// Polls `expression` until it returns something other than `null`, `undefined` or
    /// `false`; returns that value. Evaluation errors (a navigation in progress) count as
    /// "not yet".
    pub async fn wait_js(&self, what: &str, expression: &str) -> Value {
        let deadline = Instant::now() + self.timeout;
        loop {
            let last = match self.try_eval(expression).await {
                Ok(Value::Null | Value::Bool(false)) => "null or false".to_owned(),
                Ok(value) => return value,
                Err(e) => e,
            };
            assert!(
                Instant::now() < deadline,
                "timed out after {:?} waiting for {what}; last result: {last}",
                self.timeout
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// Runs `action` (a JavaScript function body over `el`, the element, and `arg`) once
    /// `selector` matches exactly one element. The body returns `{ok: value}` when done or
    /// `{wait: "why"}` to be retried. Returns the `ok` value.
    async fn act(&self, selector: &str, what: &str, action: &str, arg: Value) -> Value {
        let script = format!(
            "(() => {{\
               const args = {args};\
               const found = document.querySelectorAll(args.selector);\
               if (found.length !== 1) return {{wait: `${{found.length}} elements match`}};\
               const el = found[0];\
               const arg = args.arg;\
               {action}\
             }})()",
            args = json!({ "selector": selector, "arg": arg }),
        );
        let deadline = Instant::now() + self.timeout;
        loop {
            let last = match self.try_eval(&script).await {
                Ok(Value::Object(mut result)) if result.contains_key("ok") => {
                    return result.remove("ok").unwrap_or(Value::Null);
                }
                Ok(Value::Object(result)) if result.contains_key("wait") => {
                    result["wait"].as_str().unwrap_or_default().to_owned()
                }
                Ok(other) => panic!("{what} `{selector}`: the script returned {other}"),
                Err(e) => e,
            };
            assert!(
                Instant::now() < deadline,
                "timed out after {:?}: {what} `{selector}`: {last}",
                self.timeout
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits until `selector` matches exactly one element.
    pub async fn wait_for(&self, selector: &str) {
        self.act(selector, "waiting for", "return {ok: true};", Value::Null)
            .await;
    }

    /// Waits until `selector` matches nothing.
    pub async fn wait_gone(&self, selector: &str) {
        let expression = format!(
            "document.querySelectorAll({}).length === 0",
            json!(selector)
        );
        self.wait_js(&format!("`{selector}` to disappear"), &expression)
            .await;
    }

    /// How many elements match `selector` now (no waiting).
    pub async fn count(&self, selector: &str) -> usize {
        let expression = format!("document.querySelectorAll({}).length", json!(selector));
        let count = self.eval(&expression).await;
        count
            .as_u64()
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or_else(|| panic!("count of `{selector}`: {count}"))
    }

    /// The element's `innerText`, once exactly one element matches.
    pub async fn text(&self, selector: &str) -> String {
        let text = self
            .act(
                selector,
                "reading",
                "return {ok: el.innerText};",
                Value::Null,
            )
            .await;
        text.as_str().unwrap_or_default().to_owned()
    }

    /// Waits until the element's `innerText` satisfies `expected`; returns the text.
    pub async fn wait_text(&self, selector: &str, expected: Text<'_>) -> String {
        let (mode, text) = match expected {
            Text::Equals(text) => ("equals", text),
            Text::Contains(text) => ("contains", text),
        };
        let action = "const t = el.innerText;\
             const ok = arg.mode === 'equals' ? t.trim() === arg.text : t.includes(arg.text);\
             return ok ? {ok: t} : {wait: `its text is ${JSON.stringify(t)}`};";
        let found = self
            .act(
                selector,
                &format!("waiting for text {expected:?} in"),
                action,
                json!({ "mode": mode, "text": text }),
            )
            .await;
        found.as_str().unwrap_or_default().to_owned()
    }

    /// Waits until the element's attribute `name` equals `value`.
    pub async fn wait_attr(&self, selector: &str, name: &str, value: &str) {
        let action = "const v = el.getAttribute(arg.name);\
             return v === arg.value ? {ok: v} : {wait: `${arg.name} is ${JSON.stringify(v)}`};";
        self.act(
            selector,
            &format!("waiting for {name}={value:?} on"),
            action,
            json!({ "name": name, "value": value }),
        )
        .await;
    }

    /// Clicks the element once it is visible and enabled.
    pub async fn click(&self, selector: &str) {
        let action = "if (el.disabled) return {wait: 'disabled'};\
             if (el.getClientRects().length === 0) return {wait: 'not visible'};\
             el.scrollIntoView({block: 'center'});\
             el.click();\
             return {ok: true};";
        self.act(selector, "clicking", action, Value::Null).await;
    }

    /// Replaces the value of an input or textarea, as typing would (`input` then `change`).
    pub async fn fill(&self, selector: &str, value: &str) {
        let action = "if (el.disabled) return {wait: 'disabled'};\
             const proto = el instanceof HTMLTextAreaElement\
               ? HTMLTextAreaElement.prototype : HTMLInputElement.prototype;\
             el.focus();\
             Object.getOwnPropertyDescriptor(proto, 'value').set.call(el, arg);\
             el.dispatchEvent(new Event('input', {bubbles: true}));\
             el.dispatchEvent(new Event('change', {bubbles: true}));\
             return el.value === arg ? {ok: true} : {wait: `value is ${el.value}`};";
        self.act(selector, "filling", action, json!(value)).await;
    }

    /// Picks the option whose `value` is `value` in a `<select>` (waits for the option).
    pub async fn select(&self, selector: &str, value: &str) {
        let action = "const values = [...el.options].map(o => o.value);\
             if (!values.includes(arg)) return {wait: `options are ${values.join(', ')}`};\
             el.value = arg;\
             el.dispatchEvent(new Event('input', {bubbles: true}));\
             el.dispatchEvent(new Event('change', {bubbles: true}));\
             return {ok: true};";
        self.act(selector, "selecting in", action, json!(value))
            .await;
    }

    /// Checks or unchecks a checkbox by clicking it when it is in the other state.
    pub async fn set_checked(&self, selector: &str, checked: bool) {
        let action = "if (el.checked !== arg) el.click();\
             return el.checked === arg ? {ok: true} : {wait: 'did not toggle'};";
        self.act(selector, "checking", action, json!(checked)).await;
    }

    /// Presses `key` (a DOM key name: `Tab`, `Enter`, `a`, …) as real keyboard input
    /// (CDP `Input.dispatchKeyEvent`) on the focused element, once something has focus.
    pub async fn press_key(&self, key: &str) {
        self.focused_element()
            .await
            .press_key(key)
            .await
            .unwrap_or_else(|e| panic!("pressing {key}: {e}"));
    }

    /// Types `text` key by key into the focused element.
    pub async fn type_text(&self, text: &str) {
        self.focused_element()
            .await
            .type_str(text)
            .await
            .unwrap_or_else(|e| panic!("typing {text:?}: {e}"));
    }

    async fn focused_element(&self) -> chromiumoxide::Element {
        self.wait_js(
            "an element to have focus",
            "document.activeElement !== null && document.activeElement !== document.body",
        )
        .await;
        self.page
            .find_element(":focus")
            .await
            .unwrap_or_else(|e| panic!("finding the focused element: {e}"))
    }

    /// Waits until the focused element is the one with this `id`.
    pub async fn wait_focused(&self, id: &str) {
        let expression = format!("document.activeElement?.id === {}", json!(id));
        self.wait_js(&format!("#{id} to have focus"), &expression)
            .await;
    }

    /// `document.documentElement.scrollWidth`: wider than the viewport means horizontal
    /// scrolling.
    pub async fn scroll_width(&self) -> u64 {
        let width = self.eval("document.documentElement.scrollWidth").await;
        width
            .as_u64()
            .unwrap_or_else(|| panic!("scrollWidth: {width}"))
    }

    /// Closes the browser and waits for the process to exit.
    pub async fn close(mut self) {
        self.assert_no_csp_violations().await;
        if let Some(mut browser) = self.browser.take() {
            let _ = browser.close().await;
            let _ = browser.wait().await;
        }
        if let Some(handler) = self.handler.take() {
            let _ = handler.await;
        }
    }

    /// Saves a screenshot and the DOM of the page, and prints the console messages.
    /// Runs on its own thread and runtime because Drop cannot await: the CDP handler keeps
    /// running on the test runtime's worker threads, which answer it.
    fn save_failure_artifacts(&self) {
        let test = std::thread::current()
            .name()
            .unwrap_or("browser")
            .replace("::", "-");
        let name = if self.label.is_empty() {
            test
        } else {
            format!("{test}-{}", self.label)
        };
        let dir = artifacts_dir();
        let png = dir.join(format!("{name}.png"));
        let html = dir.join(format!("{name}.html"));
        let shown = png.clone();
        let page = self.page.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let saved = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())
                .and_then(|runtime| {
                    runtime.block_on(async {
                        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
                        let params = ScreenshotParams::builder()
                            .format(CaptureScreenshotFormat::Png)
                            .full_page(true)
                            .build();
                        let image = page.screenshot(params).await.map_err(|e| e.to_string())?;
                        std::fs::write(&png, image).map_err(|e| e.to_string())?;
                        let dom = page.content().await.map_err(|e| e.to_string())?;
                        std::fs::write(&html, dom).map_err(|e| e.to_string())
                    })
                });
            let _ = tx.send(saved);
        });
        match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(Ok(())) => eprintln!("browser test failed: page saved to {}", shown.display()),
            Ok(Err(e)) => eprintln!("browser test failed; could not save the page: {e}"),
            Err(_) => eprintln!("browser test failed; saving the page timed out"),
        }
        if let Ok(console) = self.console.lock()
            && !console.is_empty()
        {
            eprintln!("browser console of {name}:");
            for line in console.iter() {
                eprintln!("  {line}");
            }
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.save_failure_artifacts();
        }
        // The Chromium process is killed on drop (chromiumoxide sets kill_on_drop).
        if let Some(handler) = self.handler.take() {
            handler.abort();
        }
    }
}

/// Records console calls and uncaught exceptions of `page`.
/// Runs before any script of each new document (CDP bypasses the page's own policy).
const CSP_RECORDER: &str = "window.__cspViolations = []; \
    document.addEventListener('securitypolicyviolation', e => \
      window.__cspViolations.push(e.violatedDirective + ' ' + e.blockedURI));";

async fn collect_console(page: &Page, console: &Arc<Mutex<Vec<String>>>) {
    if let Ok(mut calls) = page.event_listener::<EventConsoleApiCalled>().await {
        let console = Arc::clone(console);
        tokio::spawn(async move {
            while let Some(call) = calls.next().await {
                let args: Vec<String> = call
                    .args
                    .iter()
                    .map(|a| match &a.value {
                        Some(Value::String(s)) => s.clone(),
                        Some(v) => v.to_string(),
                        None => a.description.clone().unwrap_or_default(),
                    })
                    .collect();
                if let Ok(mut console) = console.lock() {
                    console.push(format!("{:?}: {}", call.r#type, args.join(" ")));
                }
            }
        });
    }
    if let Ok(mut exceptions) = page.event_listener::<EventExceptionThrown>().await {
        let console = Arc::clone(console);
        tokio::spawn(async move {
            while let Some(thrown) = exceptions.next().await {
                let details = &thrown.exception_details;
                let text = details
                    .exception
                    .as_ref()
                    .and_then(|e| e.description.clone())
                    .unwrap_or_else(|| details.text.clone());
                if let Ok(mut console) = console.lock() {
                    console.push(format!("uncaught: {text}"));
                }
            }
        });
    }
}

/// `<target dir>/browser-artifacts`, found from the test executable
/// (`<target>/debug/deps/browser-…`), so it follows CARGO_TARGET_DIR.
fn artifacts_dir() -> PathBuf {
    let target = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.ancestors().nth(3).map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target")));
    target.join("browser-artifacts")
}
