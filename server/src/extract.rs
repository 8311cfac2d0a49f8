//! Request extractors whose rejections are problem+json and name the bad field.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{StatusCode, header, request::Parts};
use contracts::FieldError;
use serde::de::DeserializeOwned;

use crate::domain::fields::escape_pointer;
use crate::error::ApiError;

/// Largest request body accepted anywhere (DESIGN §3: 413 above it).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// `Json<T>` that reports syntax errors with their position (400) and type errors with the
/// JSON pointer of the field (422).
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(req.headers().get(header::CONTENT_TYPE)) {
            return Err(ApiError::UnsupportedMediaType);
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if timed_out(&rejection) {
                return ApiError::RequestTimeout;
            }
            match rejection.status() {
                StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge(MAX_BODY_BYTES),
                _ => ApiError::MalformedJson(rejection.body_text()),
            }
        })?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// Whether reading the body failed because the client did not send it in time (the body
/// timeout layer in `startup::app`).
fn timed_out(rejection: &axum::extract::rejection::BytesRejection) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(rejection);
    while let Some(err) = source {
        if err.is::<tower_http::timeout::TimeoutError>() {
            return true;
        }
        source = err.source();
    }
    false
}

fn is_json(content_type: Option<&axum::http::HeaderValue>) -> bool {
    let Some(value) = content_type.and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or("").trim();
    essence.eq_ignore_ascii_case("application/json")
        || (essence.len() > 5 && essence.to_ascii_lowercase().ends_with("+json"))
}

/// Parses a JSON body into `T`, classifying failures as 400 (not JSON) or 422 (wrong shape).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // Syntax first, over the whole body: a typed parse would report a missing field of a
    // truncated or trailing-garbage document as a 422 instead of the 400 it is.
    serde_json::from_slice::<serde::de::IgnoredAny>(bytes)
        .map_err(|e| ApiError::MalformedJson(format!("invalid JSON: {e}")))?;
    // Every body is an object; serde would also read a struct from an array of its fields
    // (`[null, null]` as a body of optional fields).
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(ApiError::field(
            "",
            "the request body must be a JSON object",
        ));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = match serde_path_to_error::deserialize(&mut de) {
        Ok(value) => value,
        Err(err) => {
            let pointer = to_pointer(err.path());
            let inner = err.into_inner();
            return Err(classify(inner, pointer));
        }
    };
    de.end()
        .map_err(|e| ApiError::MalformedJson(format!("invalid JSON: {e}")))?;
    Ok(value)
}

fn classify(err: serde_json::Error, pointer: String) -> ApiError {
    use serde_json::error::Category;
    match err.classify() {
        Category::Syntax | Category::Eof | Category::Io => {
            ApiError::MalformedJson(format!("invalid JSON: {err}"))
        }
        Category::Data => {
            let message = strip_position(&err.to_string());
            // serde reports a missing field at its parent; point at the field itself.
            let path = match backticked_field(&message) {
                Some(field) if message.starts_with("missing field") => {
                    format!("{pointer}/{}", escape_pointer(field))
                }
                _ => pointer,
            };
            ApiError::Validation(vec![FieldError { path, message }])
        }
    }
}

fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(at) => message[..at].to_owned(),
        None => message.to_owned(),
    }
}

fn backticked_field(message: &str) -> Option<&str> {
    let start = message.find('`')? + 1;
    let len = message[start..].find('`')?;
    Some(&message[start..start + len])
}

fn to_pointer(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut pointer = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => pointer.push_str(&format!("/{index}")),
            Segment::Map { key } => {
                pointer.push('/');
                pointer.push_str(&escape_pointer(key));
            }
            Segment::Enum { variant } => {
                pointer.push('/');
                pointer.push_str(&escape_pointer(variant));
            }
            Segment::Unknown => pointer.push_str("/?"),
        }
    }
    pointer
}

/// `Path<T>` whose rejection is a problem: an id that does not parse cannot name a resource,
/// so it is a 404 like an unknown id.
pub struct ApiPath<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(ApiPath(value)),
            Err(rejection) => {
                tracing::debug!(path = parts.uri.path(), "bad path parameter: {rejection}");
                Err(ApiError::NotFound {
                    resource: "resource",
                    id: format!("in {} (ids are UUIDs)", parts.uri.path()),
                })
            }
        }
    }
}

/// `Query<T>` whose rejection is a 400 problem naming the parameter.
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(de)
            .map(ApiQuery)
            .map_err(|err| {
                let path = err.path().to_string();
                let inner = err.into_inner();
                if path == "." || path.is_empty() {
                    ApiError::InvalidParameter(format!("invalid query string: {inner}"))
                } else {
                    ApiError::InvalidParameter(format!("invalid query parameter `{path}`: {inner}"))
                }
            })
    }
}
