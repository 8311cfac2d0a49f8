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

/// Pastes `schema` into the response editor's import box and imports it.
async fn import_response_schema(browser: &Browser, schema: &Value) {
    // The box sits in a closed <details>: open it as a user would.
    browser
        .click("#response-schema details.import > summary")
        .await;
    browser
        .fill("#response-schema-import", &schema.to_string())
        .await;
    browser
        .click("#response-schema details.import > button")
        .await;
}

/// The response editor's preview, parsed.
async fn preview(browser: &Browser) -> Value {
    let preview = browser
        .text(&format!("{EDITOR} [data-testid=schema-preview]"))
        .await;
    serde_json::from_str(&preview)
        .unwrap_or_else(|e| panic!("the preview is not JSON ({e}): {preview}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_schema_errors_appear_on_the_property_card_they_concern() {
    // Arrange
    let app = TestApp::spawn(Backend::Sqlite).await;
    let browser = Browser::launch().await;
    open(&browser, &app, "/tasks").await;
    browser.click("#task-new").await;
    browser.fill("#task-name", "scored").await;
    import_response_schema(
        &browser,
        &json!({
            "type": "object",
            "properties": {
                "label": {"type": "string"},
                "score": {"type": "number", "minLength": -1}
            }
        }),
    )
    .await;
    browser.wait_for(&property("score")).await;

    // Act
    browser.click("#task-save").await;

    // Assert: the meta-schema error names the keyword, inside the score card only.
    browser
        .wait_text(
            &format!("{} [data-testid=schema-error]", property("score")),
            Text::Contains("minLength: "),
        )
        .await;
    browser
        .wait_for(&format!("{}.card-invalid", property("score")))
        .await;
    assert_eq!(
        browser
            .count(&format!("{} [data-testid=schema-error]", property("label")))
            .await,
        0,
        "the valid property has no error"
    );
    browser.wait_for("#task-form").await;
    assert_eq!(
        app.get("/api/tasks").await.json()["total"],
        0,
        "no task is stored"
    );
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imported_schema_with_nested_objects_fills_the_cards_and_the_preview() {
    // Arrange
    let app = TestApp::spawn(Backend::Sqlite).await;
    let browser = Browser::launch().await;
    open(&browser, &app, "/tasks").await;
    browser.click("#task-new").await;
    let schema = json!({
        "type": "object",
        "properties": {
            "author": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "age": {"type": "integer", "minimum": 0}
                },
                "required": ["name"]
            },
            "tags": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "label": {"type": "string"},
                        "weight": {"type": "number"}
                    }
                }
            }
        },
        "required": ["author"],
        "additionalProperties": false
    });

    // Act
    import_response_schema(&browser, &schema).await;

    // Assert: one card per property, at every depth, with its name and type…
    browser.wait_for(&property("tags")).await;
    let cards = browser
        .eval(&format!(
            "Object.fromEntries([...document.querySelectorAll('{EDITOR} [data-testid=property-card]')]\
               .map(card => [card.dataset.path, {{\
                 name: card.querySelector(':scope > .prop-row [data-testid=property-name]').value,\
                 type: card.querySelector(':scope > .prop-row [data-testid=property-type]').value,\
                 required: card.querySelector(':scope > .prop-row [data-testid=property-required]').checked\
               }}]))"
        ))
        .await;
    let base = "/response_schema/properties";
    assert_eq!(
        cards,
        json!({
            format!("{base}/author"): {"name": "author", "type": "object", "required": true},
            format!("{base}/author/properties/name"): {"name": "name", "type": "string", "required": true},
            format!("{base}/author/properties/age"): {"name": "age", "type": "integer", "required": false},
            format!("{base}/tags"): {"name": "tags", "type": "array", "required": false},
            format!("{base}/tags/items/properties/label"): {"name": "label", "type": "string", "required": false},
            format!("{base}/tags/items/properties/weight"): {"name": "weight", "type": "number", "required": false},
        }),
        "property cards"
    );
    let items_type = browser
        .eval(&format!(
            "document.querySelector('{} [data-testid=items-type]').value",
            property("tags").replace('\'', "\\'")
        ))
        .await;
    assert_eq!(items_type, "object", "the tags items card");

    // …and the preview is the imported schema.
    assert_eq!(preview(&browser).await, schema, "schema preview");
    browser.close().await;
}
