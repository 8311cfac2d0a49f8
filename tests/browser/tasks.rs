//! Tasks page: building a response schema with the card editor.

use agentry_tests::{Backend, TestApp};
use serde_json::{Value, json};

use crate::driver::{Browser, Text};
use crate::open;

const EDITOR: &str = "[data-testid=response-schema-editor]";

/// The root object's "add property" button. Nested object properties have their own button
/// earlier in the DOM, so "the first one in the editor" is not a stable handle.
const ADD_TOP_LEVEL: &str = "[data-testid=response-schema-editor] [data-testid=root-card] > .prop-list > [data-testid=add-property]";

/// A top-level property card of the response schema; `""` is the card just added (no name).
fn property(name: &str) -> String {
    format!(
        "{EDITOR} [data-testid=property-card][data-path=\"/response_schema/properties/{name}\"]"
    )
}

/// Adds a top-level property through the cards.
async fn add_property(browser: &Browser, name: &str, kind: &str, required: bool) {
    browser.click(ADD_TOP_LEVEL).await;
    let new = property("");
    browser
        .fill(&format!("{new} [data-testid=property-name]"), name)
        .await;
    // The card's path follows its name.
    let card = property(name);
    browser
        .select(&format!("{card} [data-testid=property-type]"), kind)
        .await;
    browser
        .set_checked(&format!("{card} [data-testid=property-required]"), required)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn response_schema_built_with_cards_is_saved_exactly() {
    // Arrange
    let app = TestApp::spawn(Backend::Sqlite).await;
    let browser = Browser::launch().await;
    open(&browser, &app, "/tasks").await;
    let expected = json!({
        "type": "object",
        "properties": {
            "sentiment": {"enum": ["positive", "negative", "neutral"]},
            "score": {"type": "number"}
        },
        "required": ["sentiment", "score"]
    });

    // Act
    browser.click("#task-new").await;
    browser.fill("#task-name", "sentiment").await;
    browser
        .fill("#task-description", "sentiment of a text")
        .await;
    add_property(&browser, "sentiment", "enum", true).await;
    browser
        .fill(
            &format!("{} [data-testid=property-enum]", property("sentiment")),
            "positive, negative, neutral",
        )
        .await;
    add_property(&browser, "score", "number", true).await;

    // Assert: the preview shows the schema before saving…
    let preview = browser
        .text(&format!("{EDITOR} [data-testid=schema-preview]"))
        .await;
    let preview: Value = serde_json::from_str(&preview)
        .unwrap_or_else(|e| panic!("the preview is not JSON ({e}): {preview}"));
    assert_eq!(preview, expected, "schema preview");

    browser.click("#task-save").await;
    browser.wait_gone("#task-form").await;
    browser
        .wait_text(
            "[data-testid=task-card][data-task-name=\"sentiment\"] [data-testid=schema-summary]",
            Text::Contains("sentiment*: enum"),
        )
        .await;

    // …and the server stored exactly it.
    let tasks = app.get("/api/tasks").await.json();
    let task = tasks["items"]
        .as_array()
        .and_then(|items| items.iter().find(|t| t["name"] == "sentiment"))
        .unwrap_or_else(|| panic!("no task named sentiment in {tasks}"));
    assert_eq!(task["response_schema"], expected);
    assert_eq!(task["request_schema"], Value::Null);
    assert_eq!(task["description"], "sentiment of a text");
    browser.close().await;
}
