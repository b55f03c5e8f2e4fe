//! Field-level validation errors: what the API edge turns into RFC 9457 `errors[]` entries.
//! A path names the offending field in the request body (e.g. `shipments[0].address.country`).

use serde::Serialize;

/// One invalid field: where it is, a stable machine code, and a sentence for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    pub path: String,
    pub code: String,
    pub message: String,
}

impl FieldError {
    pub fn new(path: impl Into<String>, code: &str, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            code: code.to_string(),
            message: message.into(),
        }
    }
}

/// Collects every field error of one request so the client sees all of them at once.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FieldErrors(pub Vec<FieldError>);

impl FieldErrors {
    pub fn push(&mut self, e: FieldError) {
        self.0.push(e);
    }
    pub fn add(&mut self, path: impl Into<String>, code: &str, message: impl Into<String>) {
        self.0.push(FieldError::new(path, code, message));
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// Records the error of a parse result under `path` and returns the value if it parsed.
    pub fn take<T>(&mut self, path: &str, r: Result<T, FieldError>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(mut e) => {
                if e.path.is_empty() {
                    e.path = path.to_string();
                } else if !path.is_empty() {
                    e.path = format!("{path}.{}", e.path);
                }
                self.0.push(e);
                None
            }
        }
    }
    pub fn into_result(self) -> Result<(), FieldErrors> {
        if self.0.is_empty() { Ok(()) } else { Err(self) }
    }
}

/// A field error without a path yet; the caller that knows the field sets it via `FieldErrors::take`.
pub(crate) fn invalid(code: &str, message: impl Into<String>) -> FieldError {
    FieldError::new("", code, message)
}
