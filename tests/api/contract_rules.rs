//! The contract states exactly what the server enforces: for every body field with a
//! `maxLength`, `pattern`, `minimum` or `maximum` in the committed OpenAPI document, values at
//! and beyond each bound, and a table of awkward strings, are sent to the real server, which
//! must accept exactly what the document's schema for that field accepts (and name the field
//! in its 422 otherwise). This is what lets schemathesis' relaxations in
//! tests/schemathesis/schemathesis.toml hide nothing expressible.

use agentry_tests::contract::document;
use agentry_tests::{Backend, Resp, TestApp, agent_body, db_tests, task_body};
use serde_json::{Value, json};
use uuid::Uuid;

/// Strings that stress trimming, control characters, NUL and Unicode whitespace.
const AWKWARD: &[&str] = &[
    "ok",
    "",
    " ",
    "\t",
    "  padded  ",
    "tab\tinside",
    "line\nbreak",
    "nul\u{0}inside",
    "bell\u{7}",
    "del\u{7f}",
    "c1\u{85}",
    "\u{a0}",
    "\u{3000}ideographic space\u{3000}",
    "\u{feff}bom",
    "\u{200b}zero width",
    "emoji 🦀",
    "\u{2028}",
];

/// The schema of one property of a component, from the committed document.
fn property(component: &str, field: &str) -> Value {
    let schema = &document()["components"]["schemas"][component]["properties"][field];
    assert!(
        schema.is_object(),
        "{component}.{field} is not in the document"
    );
    schema.clone()
}

/// What the document says about `value` as this field.
fn schema_accepts(schema: &Value, value: &Value) -> bool {
    let validator = jsonschema::options()
        .should_validate_formats(true)
        .build(schema)
        .expect("the field's schema compiles");
    validator.is_valid(value)
}

/// One field under test: how to make an otherwise valid request with that field set.
struct Field {
    component: &'static str,
    field: &'static str,
}

const STRING_FIELDS: &[Field] = &[
    Field {
        component: "CreateProvider",
        field: "name",
    },
    Field {
        component: "CreateProvider",
        field: "api_key",
    },
    Field {
        component: "CreateProvider",
        field: "base_url",
    },
    Field {
        component: "CreateAgent",
        field: "name",
    },
    Field {
        component: "CreateAgent",
        field: "description",
    },
    Field {
        component: "CreateAgent",
        field: "model",
    },
    Field {
        component: "CreateAgent",
        field: "system_prompt",
    },
    Field {
        component: "CreateAgent",
        field: "user_prompt",
    },
    Field {
        component: "CreateTask",
        field: "name",
    },
    Field {
        component: "CreateTask",
        field: "description",
    },
    Field {
        component: "CreateConcurrencyGroup",
        field: "name",
    },
    Field {
        component: "CreateConcurrencyGroup",
        field: "note",
    },
];

const NUMBER_FIELDS: &[Field] = &[
    Field {
        component: "CreateAgent",
        field: "temperature",
    },
    Field {
        component: "CreateAgent",
        field: "max_tokens",
    },
    Field {
        component: "CreateAgent",
        field: "max_retries",
    },
    Field {
        component: "CreateAgent",
        field: "timeout_secs",
    },
    Field {
        component: "CreateConcurrencyGroup",
        field: "limit",
    },
];

/// Sends a create request with `field` set to `value`; names are made unique so that only the
/// field under test can be the reason for a refusal.
async fn create_with(app: &TestApp, provider: Uuid, f: &Field, value: &Value) -> Resp {
    let unique = Uuid::now_v7().simple().to_string();
    let (path, mut body) = match f.component {
        "CreateProvider" => (
            "/api/providers",
            json!({"name": format!("p-{unique}"), "kind": "openai", "api_key": "sk-test-0123456789abcdef"}),
        ),
        "CreateAgent" => ("/api/agents", agent_body(&format!("a-{unique}"), provider)),
        "CreateTask" => ("/api/tasks", task_body(&format!("t-{unique}"))),
        "CreateConcurrencyGroup" => (
            "/api/concurrency-groups",
            json!({"name": format!("g-{unique}"), "limit": 1}),
        ),
        other => panic!("no request for {other}"),
    };
    body[f.field] = value.clone();
    app.post(path, &body).await
}

#[track_caller]
fn assert_verdict(resp: &Resp, accepted: bool, f: &Field, value: &Value) {
    let what = format!("{}.{} = {value}", f.component, f.field);
    if accepted {
        assert!(
            resp.status.is_success(),
            "{what}: the document accepts it, the server said {} {}",
            resp.status,
            resp.text
        );
    } else {
        let paths = resp.assert_problem(422, "validation_failed");
        assert!(
            paths.iter().any(|p| p == &format!("/{}", f.field)),
            "{what}: refused, but not on its field: {paths:?}"
        );
    }
}

async fn server_accepts_exactly_what_the_document_says_for_every_string_field(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let provider = app.ollama_provider("rules").await;
    let mut checked = 0;
    for f in STRING_FIELDS {
        let schema = property(f.component, f.field);
        let mut samples: Vec<String> = AWKWARD.iter().map(|s| (*s).to_owned()).collect();
        if let Some(max) = schema["maxLength"].as_u64() {
            let max = usize::try_from(max).expect("small");
            samples.push("x".repeat(max));
            samples.push("x".repeat(max + 1));
            samples.push(format!(" {} ", "é".repeat(max - 2)));
            samples.push(format!(" {} ", "é".repeat(max - 1)));
        }
        for sample in samples {
            // Fields whose values must also be URLs or templates get such values, padded or
            // stretched the same way, so the rule under test is the only one that can refuse.
            let value = match f.field {
                "base_url" => json!(format!(
                    "http://127.0.0.1:9/{}",
                    sample.replace(['?', '#'], "")
                )),
                _ => json!(sample),
            };
            let accepted = schema_accepts(&schema, &value);
            let resp = create_with(&app, provider, f, &value).await;
            if f.field == "base_url" && accepted {
                // The URL itself must still parse: only length and type are in the schema.
                assert!(
                    resp.status.as_u16() == 201 || resp.status.as_u16() == 422,
                    "{}",
                    resp.text
                );
                continue;
            }
            assert_verdict(&resp, accepted, f, &value);
            checked += 1;
        }
    }
    assert!(checked > 150, "only {checked} cases ran");
}

async fn server_accepts_exactly_what_the_document_says_for_every_number_field(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let provider = app.ollama_provider("rules").await;
    for f in NUMBER_FIELDS {
        let schema = property(f.component, f.field);
        let min = schema["minimum"].as_f64().expect("a minimum");
        let max = schema["maximum"].as_f64().expect("a maximum");
        let integer = schema["type"]
            .as_array()
            .map_or(schema["type"] == "integer", |t| {
                t.contains(&json!("integer"))
            });
        let mut samples = vec![
            json!(min),
            json!(max),
            json!(min - 1.0),
            json!(max + 1.0),
            json!(max + 0.5),
            json!(min - 0.5),
            json!(1e30),
            json!(-1e30),
            json!(i64::MAX),
            json!(u64::MAX),
            json!("1"),
        ];
        if integer {
            // Integers written with a zero fraction are integers.
            samples.push(json!(1.0));
            samples.push(json!(max));
            samples.push(json!(1.5));
        }
        for value in samples {
            let accepted = schema_accepts(&schema, &value);
            let resp = create_with(&app, provider, f, &value).await;
            assert_verdict(&resp, accepted, f, &value);
        }
    }
}

async fn list_parameters_are_bounded_as_documented(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let offset_max = document()["paths"]["/api/agents"]["get"]["parameters"]
        .as_array()
        .and_then(|p| p.iter().find(|p| p["name"] == "offset"))
        .map(|p| {
            p["schema"]["maximum"]
                .as_u64()
                .expect("offset has a maximum")
        })
        .expect("offset is documented");
    for list in ["/api/agents", "/api/tasks", "/api/providers", "/api/runs"] {
        let table = [
            ("limit=1", 200),
            ("limit=200", 200),
            ("limit=0", 400),
            ("limit=201", 400),
            ("offset=0", 200),
            (&*format!("offset={offset_max}"), 200),
            (&*format!("offset={}", offset_max + 1), 400),
            ("offset=18446744073709551615", 400),
            ("offset=18446744073709551616", 400),
            ("offset=-1", 400),
            ("limit=1.5", 400),
        ];
        for (query, status) in table {
            let resp = app.get(&format!("{list}?{query}")).await;
            assert_eq!(
                resp.status.as_u16(),
                status,
                "{list}?{query}: {}",
                resp.text
            );
        }
    }
}

db_tests!(
    server_accepts_exactly_what_the_document_says_for_every_string_field,
    server_accepts_exactly_what_the_document_says_for_every_number_field,
    list_parameters_are_bounded_as_documented,
);
