//! `/api/users`, `/api/sessions`, `/api/me`: the handlers over
//! [`crate::service::accounts`], the session cookie, and the extractors every
//! owner-scoped handler takes ([`CurrentUser`]: a request without a live token never
//! reaches the handler) or that sign-ins take ([`ClientAddress`]).

use std::net::{IpAddr, SocketAddr};

use axum::Json;
use axum::extract::{ConnectInfo, FromRef, FromRequestParts, State};
use axum::http::header::{AUTHORIZATION, COOKIE, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
pub(crate) use crate::service::accounts::CurrentUser;
pub use crate::service::accounts::{Accounts, Credentials};

/// The cookie the web page signs in with.
pub(crate) const SESSION_COOKIE: &str = "album_session";

/// What the session cookie needs to know of the deployment.
#[derive(Clone)]
pub struct CookiePolicy {
    /// Served over TLS: the cookie is marked `Secure`.
    pub secure: bool,
}

/// `POST /api/users`: creates an account (anyone when sign-up is open, the first user,
/// or the admin adding someone).
pub async fn register(
    State(accounts): State<Accounts>,
    headers: HeaderMap,
    Json(body): Json<Credentials>,
) -> Result<(StatusCode, Json<CurrentUser>)> {
    let requester = match token_of(&headers) {
        Some(token) => match accounts.user_of_token(token).await {
            Ok(user) => Some(user),
            // a stale cookie on the sign-up form is no reason to refuse
            Err(Error::Unauthorized) => None,
            Err(other) => return Err(other),
        },
        None => None,
    };
    let user = accounts.register(requester.as_ref(), body).await?;
    Ok((StatusCode::CREATED, Json(user)))
}

/// `POST /api/sessions`: signs in; the token comes back in the body and as a cookie.
pub(crate) async fn sign_in(
    State(accounts): State<Accounts>,
    State(cookies): State<CookiePolicy>,
    ClientAddress(address): ClientAddress,
    Json(body): Json<Credentials>,
) -> Result<Response> {
    let session = accounts.sign_in(body, address).await?;
    let cookie = session_cookie(&session.token, accounts.session_seconds(), cookies.secure);
    let mut response = (StatusCode::CREATED, Json(session)).into_response();
    set_cookie(&mut response, &cookie);
    Ok(response)
}

/// `DELETE /api/sessions`: signs this token out.
pub(crate) async fn sign_out(
    State(accounts): State<Accounts>,
    State(cookies): State<CookiePolicy>,
    user: CurrentUser,
    headers: HeaderMap,
) -> Result<Response> {
    if let Some(token) = token_of(&headers) {
        accounts.sign_out(user.id, &token).await?;
    }
    Ok(signed_out(&cookies))
}

/// `DELETE /api/me/sessions`: signs the user out everywhere (every session, this one
/// too).
pub(crate) async fn sign_out_everywhere(
    State(accounts): State<Accounts>,
    State(cookies): State<CookiePolicy>,
    user: CurrentUser,
) -> Result<Response> {
    accounts.sign_out_everywhere(user.id).await?;
    Ok(signed_out(&cookies))
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct PasswordChange {
    pub current_password: String,
    pub new_password: String,
}

/// `PUT /api/me/password`: a new password, given the current one. Every other session
/// ends; this one stays.
pub(crate) async fn change_password(
    State(accounts): State<Accounts>,
    ClientAddress(address): ClientAddress,
    user: CurrentUser,
    headers: HeaderMap,
    Json(body): Json<PasswordChange>,
) -> Result<StatusCode> {
    let this_token = token_of(&headers);
    accounts
        .change_password(
            &user,
            body.current_password,
            body.new_password,
            address,
            this_token.as_deref(),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/me`.
pub(crate) async fn me(user: CurrentUser) -> Json<CurrentUser> {
    Json(user)
}

/// 204 with the session cookie cleared.
fn signed_out(cookies: &CookiePolicy) -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    set_cookie(&mut response, &session_cookie("", 0, cookies.secure));
    response
}

fn set_cookie(response: &mut Response, cookie: &str) {
    if let Ok(value) = HeaderValue::from_str(cookie) {
        response.headers_mut().insert(SET_COOKIE, value);
    }
}

/// The `Set-Cookie` value for a session token (an empty token with age 0 clears it).
fn session_cookie(token: &str, max_age_secs: i64, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!(
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_secs}{secure}"
    )
}

/// The client's address, when the service runs behind a socket (`album serve` serves
/// with connect info; tests that call the router directly have none).
pub struct ClientAddress(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        _: &S,
    ) -> std::result::Result<Self, Self::Rejection> {
        let address = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|info| info.0.ip());
        Ok(ClientAddress(address))
    }
}

/// The token from `Authorization: Bearer …`, else from the session cookie.
fn token_of(headers: &HeaderMap) -> Option<String> {
    let bearer = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().to_owned());
    bearer.or_else(|| {
        headers
            .get_all(COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(name, _)| *name == SESSION_COOKIE)
            .map(|(_, value)| value.to_owned())
    })
}

impl<S> FromRequestParts<S> for CurrentUser
where
    Accounts: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self> {
        let token = token_of(&parts.headers).ok_or(Error::Unauthorized)?;
        let user = Accounts::from_ref(state).user_of_token(token).await?;
        tracing::Span::current().record("user", user.id);
        Ok(user)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_cookie_is_secure_when_served_over_tls() {
        let plain = session_cookie("abc", 60, false);
        assert!(plain.starts_with("album_session=abc; ") && !plain.contains("Secure"));
        assert!(plain.contains("HttpOnly") && plain.contains("SameSite=Strict"));
        assert!(session_cookie("abc", 60, true).ends_with("; Secure"));
    }

    #[test]
    fn tokens_come_from_bearer_before_cookie() {
        let mut headers = HeaderMap::new();
        headers.insert(
            COOKIE,
            HeaderValue::from_static("a=b; album_session=fromcookie"),
        );
        assert_eq!(token_of(&headers).as_deref(), Some("fromcookie"));
        headers.insert(AUTHORIZATION, HeaderValue::from_static("Bearer frombearer"));
        assert_eq!(token_of(&headers).as_deref(), Some("frombearer"));
    }
}
