//! The service's one error type. Each variant is an HTTP status; [`Error::Internal`]
//! carries the real cause for the log and shows the client only a generic message, so
//! paths, SQL and stack details never leave the server.

use axum::Json;
use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// Everything a request or a job can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is malformed (bad JSON, a bad parameter, a hostile file name).
    #[error("{0}")]
    BadRequest(String),
    /// No valid session or bearer token.
    #[error("sign in first: no valid session or bearer token")]
    Unauthorized,
    /// Wrong user name or password (one message for both, so names cannot be probed).
    #[error("wrong user name or password")]
    BadCredentials,
    /// Refused whoever asks (a cookie-authenticated write from another origin).
    #[error("{0}")]
    Forbidden(String),
    /// Missing, or owned by someone else (the same answer, so ids cannot be probed).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The request conflicts with what exists (a taken user name).
    #[error("{0}")]
    Conflict(String),
    /// A file or the whole request is over its size limit.
    #[error("{0}")]
    TooLarge(String),
    /// Not a photo type the album stores (decided from the bytes, not the name).
    #[error("{0}")]
    UnsupportedType(String),
    /// A photo of a known type that does not decode, or is over the pixel cap.
    #[error("{0}")]
    BadImage(String),
    /// Too many failed sign-ins for this user name or address (locked for the
    /// seconds given), or too many sign-ins from one address at once.
    #[error("{message}")]
    TooManyRequests {
        message: String,
        retry_after_secs: u64,
    },
    /// The server is at its limit for this kind of work; try again shortly.
    #[error("{message}")]
    Busy {
        message: String,
        retry_after_secs: u64,
    },
    /// The request took too long: its body stalled, or it ran past the request
    /// time-out.
    #[error("{0}")]
    Timeout(String),
    /// The client left before the work finished; nobody reads this answer.
    #[error("the request was abandoned before it finished")]
    Abandoned,
    /// Something failed on the server; the string is logged, never sent.
    #[error("internal error: {0}")]
    Internal(String),
    /// Configuration or start-up problems (reported by `album serve`, not over HTTP).
    #[error("{0}")]
    Setup(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn internal(context: &str, cause: impl std::fmt::Display) -> Self {
        Error::Internal(format!("{context}: {cause}"))
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Error::BadRequest(_) => StatusCode::BAD_REQUEST,
            Error::Unauthorized | Error::BadCredentials => StatusCode::UNAUTHORIZED,
            Error::Forbidden(_) => StatusCode::FORBIDDEN,
            Error::NotFound(_) => StatusCode::NOT_FOUND,
            Error::Conflict(_) => StatusCode::CONFLICT,
            Error::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Error::UnsupportedType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Error::BadImage(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Error::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Error::Busy { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Error::Timeout(_) | Error::Abandoned => StatusCode::REQUEST_TIMEOUT,
            Error::Internal(_) | Error::Setup(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// What a user may be shown: the message, except for internal and set-up failures,
    /// whose causes (paths, SQL, library errors) stay in the server's log.
    pub(crate) fn public_message(&self) -> String {
        match self {
            Error::Internal(_) | Error::Setup(_) => {
                "the server failed to handle this; it has been logged".to_owned()
            }
            other => other.to_string(),
        }
    }

    /// A short machine-readable name for the JSON body.
    pub fn code(&self) -> &'static str {
        match self {
            Error::BadRequest(_) => "bad_request",
            Error::Unauthorized => "unauthorized",
            Error::BadCredentials => "bad_credentials",
            Error::Forbidden(_) => "forbidden",
            Error::NotFound(_) => "not_found",
            Error::Conflict(_) => "conflict",
            Error::TooLarge(_) => "too_large",
            Error::UnsupportedType(_) => "unsupported_type",
            Error::BadImage(_) => "bad_image",
            Error::TooManyRequests { .. } => "too_many_requests",
            Error::Busy { .. } => "busy",
            Error::Timeout(_) => "timeout",
            Error::Abandoned => "abandoned",
            Error::Internal(_) | Error::Setup(_) => "internal",
        }
    }
}

/// The JSON error body: `{"error": code, "message": text}`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ErrorBody {
    pub error: String,
    pub message: String,
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        if let Error::Internal(cause) | Error::Setup(cause) = &self {
            tracing::error!(%cause, "internal error");
        }
        let message = self.public_message();
        let retry_after = match &self {
            Error::TooManyRequests {
                retry_after_secs, ..
            }
            | Error::Busy {
                retry_after_secs, ..
            } => Some(*retry_after_secs),
            _ => None,
        };
        let body = ErrorBody {
            error: self.code().to_owned(),
            message,
        };
        let mut response = (self.status(), Json(body)).into_response();
        if let Some(seconds) = retry_after {
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

impl From<crate::sql::Error> for Error {
    fn from(e: crate::sql::Error) -> Self {
        Error::internal("database", e)
    }
}

impl From<r2d2::Error> for Error {
    fn from(e: r2d2::Error) -> Self {
        Error::internal("database pool", e)
    }
}

impl From<tokio::task::JoinError> for Error {
    fn from(e: tokio::task::JoinError) -> Self {
        Error::internal("blocking task", e)
    }
}
