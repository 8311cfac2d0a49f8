//! Google's Gemini API: `GET /v1beta/models`, and `generateContent` with
//! `responseMimeType: application/json` and `responseJsonSchema`. The key travels in the
//! `x-goog-api-key` header, never in a URL.

use async_trait::async_trait;
use contracts::ProviderKind;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::http::Endpoint;
use super::{
    ErrorClass, JsonCompletion, JsonRequest, LlmProvider, Probe, ProviderError, Role, Usage, count,
};

const MAX_PAGES: usize = 10;

pub struct Gemini {
    endpoint: Endpoint,
}

impl Gemini {
    pub fn new(endpoint: Endpoint) -> Gemini {
        Gemini { endpoint }
    }
}

#[async_trait]
impl LlmProvider for Gemini {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Gemini
    }

    async fn probe(&self) -> Result<Probe, ProviderError> {
        let mut models = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let mut url = self.endpoint.url("v1beta/models");
            url.query_pairs_mut().append_pair("pageSize", "1000");
            if let Some(token) = &token {
                url.query_pairs_mut().append_pair("pageToken", token);
            }
            let page: ModelPage = self
                .endpoint
                .get_json(url, "the model list")
                .await
                .map_err(key_errors)?;
            models.extend(
                page.models
                    .into_iter()
                    .filter(ModelEntry::generates_content)
                    .filter_map(|m| m.name)
                    .map(|name| name.trim_start_matches("models/").to_owned()),
            );
            match page.next_page_token {
                Some(next) if !next.is_empty() => token = Some(next),
                _ => break,
            }
        }
        Ok(Probe { models })
    }

    async fn complete_json(&self, request: &JsonRequest) -> Result<JsonCompletion, ProviderError> {
        let body = GenerateRequest {
            system_instruction: Content {
                role: None,
                parts: vec![Part {
                    text: &request.system,
                }],
            },
            contents: request
                .messages
                .iter()
                .map(|m| Content {
                    role: Some(match m.role {
                        Role::User => "user",
                        Role::Assistant => "model",
                    }),
                    parts: vec![Part { text: &m.content }],
                })
                .collect(),
            generation_config: GenerationConfig {
                response_mime_type: "application/json",
                response_json_schema: &request.schema,
                temperature: request.temperature,
                max_output_tokens: request.max_tokens,
            },
        };
        let model = request.model.trim_start_matches("models/");
        let url = self
            .endpoint
            .url(&format!("v1beta/models/{model}:generateContent"));
        let answer: GenerateResponse = self
            .endpoint
            .post_json(url, &body, "the answer")
            .await
            .map_err(key_errors)?;
        let usage = Usage {
            prompt_tokens: answer
                .usage_metadata
                .as_ref()
                .and_then(|u| u.prompt_token_count),
            completion_tokens: answer
                .usage_metadata
                .as_ref()
                .and_then(|u| u.candidates_token_count),
        };
        let first = answer.candidates.into_iter().next();
        let Some(parts) = first
            .as_ref()
            .and_then(|c| c.content.as_ref())
            .and_then(|c| c.parts.as_ref())
        else {
            let reason = first
                .and_then(|c| c.finish_reason)
                .or(answer.prompt_feedback.and_then(|f| f.block_reason))
                .unwrap_or_else(|| "none given".to_owned());
            return Err(self.endpoint.error(
                ErrorClass::UnexpectedResponse,
                &format!("the answer has no content (finish reason: {reason})"),
            ));
        };
        let text = parts.iter().filter_map(|p| p.text.as_deref()).collect();
        Ok(JsonCompletion {
            text,
            value: None,
            usage,
        })
    }
}

/// Google answers an invalid key with 400 INVALID_ARGUMENT (reason `API_KEY_INVALID`), not
/// 401: recognise it so it reads as the credentials problem it is.
fn key_errors(mut err: ProviderError) -> ProviderError {
    if err.status == Some(400)
        && (err.message.contains("API key not valid") || err.message.contains("API_KEY_INVALID"))
    {
        err.class = ErrorClass::CredentialsRejected;
    }
    err
}

// The wire (camelCase). Unknown fields (safety ratings, model versions) are ignored.

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ModelPage {
    models: Vec<ModelEntry>,
    #[serde(default)]
    next_page_token: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ModelEntry {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    supported_generation_methods: Option<Vec<String>>,
}

impl ModelEntry {
    /// Embedding-only models cannot serve an agent; list only those that generate content.
    fn generates_content(&self) -> bool {
        match &self.supported_generation_methods {
            Some(methods) => methods.iter().any(|m| m == "generateContent"),
            None => true,
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct GenerateRequest<'a> {
    system_instruction: Content<'a>,
    contents: Vec<Content<'a>>,
    generation_config: GenerationConfig<'a>,
}

#[derive(Serialize)]
struct Content<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'static str>,
    parts: Vec<Part<'a>>,
}

#[derive(Serialize)]
struct Part<'a> {
    text: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct GenerationConfig<'a> {
    response_mime_type: &'static str,
    response_json_schema: &'a Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_output_tokens: Option<u32>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GenerateResponse {
    #[serde(default)]
    candidates: Vec<Candidate>,
    #[serde(default)]
    prompt_feedback: Option<PromptFeedback>,
    #[serde(default)]
    usage_metadata: Option<UsageMetadata>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Candidate {
    #[serde(default)]
    content: Option<CandidateContent>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct CandidateContent {
    #[serde(default)]
    parts: Option<Vec<AnswerPart>>,
}

#[derive(Deserialize)]
struct AnswerPart {
    #[serde(default)]
    text: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PromptFeedback {
    #[serde(default)]
    block_reason: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UsageMetadata {
    #[serde(default, deserialize_with = "count")]
    prompt_token_count: Option<u64>,
    #[serde(default, deserialize_with = "count")]
    candidates_token_count: Option<u64>,
}
