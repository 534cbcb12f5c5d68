//! Accounts and sign-in: argon2id password hashes, and random session tokens that work
//! both as a cookie (the web page) and as a bearer token (scripts, the load bench). The
//! database keeps only each token's SHA-256, so a copy of it signs no one in.
//!
//! [`CurrentUser`] is the extractor every owner-scoped handler takes: a request without
//! a live token never reaches the handler.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::Json;
use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::header::{AUTHORIZATION, COOKIE, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use rand::RngCore;
use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};

use crate::app::AppState;
use crate::blobs::sha256_hex;
use crate::db::now;
use crate::error::{Error, Result};
use crate::passwords;
use crate::throttle::Refusal;

/// The cookie the web page signs in with.
pub const SESSION_COOKIE: &str = "album_session";

/// The signed-in user of a request.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CurrentUser {
    pub id: i64,
    pub username: String,
    /// The album's admin (its first user), who may add users when sign-up is closed.
    #[serde(default)]
    pub admin: bool,
}

#[derive(Debug, Deserialize)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Session {
    pub token: String,
    /// Unix seconds.
    pub expires: i64,
    pub user: CurrentUser,
}

fn check_username(name: &str) -> Result<()> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.');
    if name.is_empty() || name.len() > 64 || !name.chars().all(allowed) {
        return Err(Error::BadRequest(
            "a user name is 1–64 letters, digits, '_', '-' or '.'".into(),
        ));
    }
    Ok(())
}

fn check_password(username: &str, password: &str) -> Result<()> {
    match passwords::weakness(username, password) {
        Some(why) => Err(Error::BadRequest(why.into())),
        None => Ok(()),
    }
}

fn hash_password(password: &str) -> Result<String> {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| Error::internal("salt", e))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| Error::internal("argon2", e))
}

/// Whether `password` matches the PHC string `hash`; a damaged hash matches nothing.
fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// `POST /api/users`: creates an account.
pub async fn register(
    State(state): State<AppState>,
    headers: HeaderMap,
    Json(body): Json<Credentials>,
) -> Result<(StatusCode, Json<CurrentUser>)> {
    check_username(&body.username)?;
    check_password(&body.username, &body.password)?;
    // Who may: anyone when sign-up is open, the first user of a new album, else the
    // admin. Checked before the (costly) hash, and again in the insert's transaction.
    let by_admin = match token_of(&headers).map(|token| user_of_token(&state, token)) {
        Some(requester) => match requester.await {
            Ok(user) => user.admin,
            // a stale cookie on the sign-up form is no reason to refuse
            Err(Error::Unauthorized) => false,
            Err(other) => return Err(other),
        },
        None => false,
    };
    let open = state.config.open_sign_up || by_admin;
    if !open {
        let users: i64 = state
            .db
            .run(|c| Ok(c.query_row("SELECT COUNT(*) FROM users", [], |r| r.get(0))?))
            .await?;
        if users > 0 {
            return Err(sign_up_closed());
        }
    }
    let slot = state.sign_in.verification_slot().await.map_err(refused)?;
    let hash = tokio::task::spawn_blocking(move || {
        let _slot = slot;
        hash_password(&body.password)
    })
    .await??;
    let username = body.username;
    let user = state
        .db
        .run(move |c| {
            let t = crate::db::write_transaction(c)?;
            let first = t.query_row("SELECT COUNT(*) = 0 FROM users", [], |r| r.get::<_, bool>(0))?;
            if !open && !first {
                return Err(sign_up_closed());
            }
            let taken: bool = t
                .query_row(
                    "SELECT 1 FROM users WHERE username = ?1",
                    [&username],
                    |_| Ok(true),
                )
                .optional()?
                .unwrap_or(false);
            if taken {
                return Err(Error::Conflict(format!(
                    "the user name {username:?} is taken"
                )));
            }
            t.execute(
                "INSERT INTO users (username, password_hash, created, admin) VALUES (?1, ?2, ?3, ?4)",
                params![username, hash, now(), first],
            )?;
            let id = t.last_insert_rowid();
            t.commit()?;
            Ok(CurrentUser {
                id,
                username,
                admin: first,
            })
        })
        .await?;
    Ok((StatusCode::CREATED, Json(user)))
}

fn sign_up_closed() -> Error {
    Error::Forbidden(
        "sign-up is closed: the album's admin adds users (or starts the album with \
         --open-sign-up)"
            .into(),
    )
}

/// `POST /api/sessions`: signs in; the token comes back in the body and as a cookie.
/// Throttled ([`crate::throttle`]): a locked user name or address is refused with 429
/// before its password is checked.
pub async fn sign_in(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    Json(body): Json<Credentials>,
) -> Result<Response> {
    let admitted = state
        .sign_in
        .admit(&body.username, address)
        .map_err(refused)?;
    let slot = state.sign_in.verification_slot().await.map_err(refused)?;
    let username = body.username.clone();
    let stored: Option<(i64, String, bool)> = state
        .db
        .run(move |c| {
            Ok(c.query_row(
                "SELECT id, password_hash, admin FROM users WHERE username = ?1",
                [&username],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?)
        })
        .await?;
    let password = body.password;
    // An unknown name still costs one verification, so timing does not tell names apart.
    let (user_id, hash, admin) = stored
        .clone()
        .unwrap_or_else(|| (0, dummy_hash().to_owned(), false));
    let matches = tokio::task::spawn_blocking(move || {
        let _slot = slot;
        verify_password(&password, &hash)
    })
    .await?;
    if stored.is_none() || !matches {
        let locked = admitted.failed();
        log_failed_sign_in(&body.username, address, locked);
        return Err(Error::BadCredentials);
    }
    admitted.succeeded();
    let mut token_bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut token_bytes);
    let token = hex::encode(token_bytes);
    let expires = now() + state.config.session_days * 86_400;
    let token_sha256 = sha256_hex(token.as_bytes());
    state
        .db
        .run(move |c| {
            c.execute(
                "INSERT INTO sessions (token_sha256, user_id, created, expires, last_seen)
                 VALUES (?1, ?2, ?3, ?4, ?3)",
                params![token_sha256, user_id, now(), expires],
            )?;
            Ok(())
        })
        .await?;
    let cookie = session_cookie(
        &token,
        state.config.session_days * 86_400,
        state.config.secure_cookies,
    );
    let session = Session {
        token,
        expires,
        user: CurrentUser {
            id: user_id,
            username: body.username,
            admin,
        },
    };
    let mut response = (StatusCode::CREATED, Json(session)).into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(SET_COOKIE, value);
    }
    Ok(response)
}

/// The `Set-Cookie` value for a session token (an empty token with age 0 clears it).
fn session_cookie(token: &str, max_age_secs: i64, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!(
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_secs}{secure}"
    )
}

/// Deletes sessions past their expiry (they sign no one in, but would stay forever);
/// returns how many.
pub fn purge_expired_sessions(state: &AppState) -> Result<usize> {
    let c = state.db.connection()?;
    Ok(c.execute(
        "DELETE FROM sessions WHERE expires <= ?1 OR last_seen <= ?2",
        params![now(), idle_cutoff(state)],
    )?)
}

/// Sessions last used at or before this (Unix seconds) are over.
fn idle_cutoff(state: &AppState) -> i64 {
    now() - state.config.session_idle_days * 86_400
}

/// How stale a session's `last_seen` may get before a request writes it again: one
/// write per session per few minutes, not one per request.
const LAST_SEEN_GRANULARITY_SECS: i64 = 300;

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

/// A sign-in turned away by the throttle, as the client sees it.
fn refused(refusal: Refusal) -> Error {
    match refusal {
        Refusal::Locked { retry_after } => {
            let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
            Error::TooManyRequests {
                message: format!("too many failed sign-ins: try again in {seconds} s"),
                retry_after_secs: seconds,
            }
        }
        Refusal::TooManyAtOnce => Error::TooManyRequests {
            message: "too many sign-ins at once from this address".into(),
            retry_after_secs: 1,
        },
        Refusal::Busy => Error::Busy {
            message: "the server is busy checking passwords: try again in a moment".into(),
            retry_after_secs: 1,
        },
    }
}

/// One line per failed sign-in, for whoever watches the log; the name is quoted with
/// its control characters escaped, and cut short.
fn log_failed_sign_in(username: &str, address: Option<IpAddr>, locked: Option<Duration>) {
    let name: String = username.chars().take(64).collect();
    let from = address.map_or("an unknown address".into(), |a| a.to_string());
    let locked_secs = locked.map_or(0.0, |d| d.as_secs_f64().ceil());
    tracing::warn!(user = ?name, from, locked_secs, "failed sign-in");
}

/// `DELETE /api/sessions`: signs this token out.
pub async fn sign_out(
    State(state): State<AppState>,
    user: CurrentUser,
    headers: HeaderMap,
) -> Result<Response> {
    if let Some(token) = token_of(&headers) {
        let token_sha256 = sha256_hex(token.as_bytes());
        let user_id = user.id;
        state
            .db
            .run(move |c| {
                c.execute(
                    "DELETE FROM sessions WHERE token_sha256 = ?1 AND user_id = ?2",
                    params![token_sha256, user_id],
                )?;
                Ok(())
            })
            .await?;
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    let expired = session_cookie("", 0, state.config.secure_cookies);
    if let Ok(value) = HeaderValue::from_str(&expired) {
        response.headers_mut().insert(SET_COOKIE, value);
    }
    Ok(response)
}

/// `DELETE /api/me/sessions`: signs the user out everywhere (every session, this one
/// too).
pub async fn sign_out_everywhere(
    State(state): State<AppState>,
    user: CurrentUser,
) -> Result<Response> {
    let user_id = user.id;
    state
        .db
        .run(move |c| {
            c.execute("DELETE FROM sessions WHERE user_id = ?1", [user_id])?;
            Ok(())
        })
        .await?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    let expired = session_cookie("", 0, state.config.secure_cookies);
    if let Ok(value) = HeaderValue::from_str(&expired) {
        response.headers_mut().insert(SET_COOKIE, value);
    }
    Ok(response)
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PasswordChange {
    pub current_password: String,
    pub new_password: String,
}

/// `PUT /api/me/password`: a new password, given the current one (checked and throttled
/// as a sign-in is). Every other session ends; this one stays.
pub async fn change_password(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    user: CurrentUser,
    headers: HeaderMap,
    Json(body): Json<PasswordChange>,
) -> Result<StatusCode> {
    check_password(&user.username, &body.new_password)?;
    let admitted = state
        .sign_in
        .admit(&user.username, address)
        .map_err(refused)?;
    let slot = state.sign_in.verification_slot().await.map_err(refused)?;
    let user_id = user.id;
    let hash: String = state
        .db
        .run(move |c| {
            Ok(c.query_row(
                "SELECT password_hash FROM users WHERE id = ?1",
                [user_id],
                |r| r.get(0),
            )?)
        })
        .await?;
    let PasswordChange {
        current_password,
        new_password,
    } = body;
    let new_hash = tokio::task::spawn_blocking(move || {
        let _slot = slot;
        verify_password(&current_password, &hash)
            .then(|| hash_password(&new_password))
            .transpose()
    })
    .await??;
    let Some(new_hash) = new_hash else {
        let locked = admitted.failed();
        log_failed_sign_in(&user.username, address, locked);
        return Err(Error::BadCredentials);
    };
    admitted.succeeded();
    let this_session = token_of(&headers).map(|t| sha256_hex(t.as_bytes()));
    state
        .db
        .run(move |c| {
            let t = crate::db::write_transaction(c)?;
            t.execute(
                "UPDATE users SET password_hash = ?1 WHERE id = ?2",
                params![new_hash, user_id],
            )?;
            t.execute(
                "DELETE FROM sessions WHERE user_id = ?1 AND token_sha256 IS NOT ?2",
                params![user_id, this_session],
            )?;
            t.commit()?;
            Ok(())
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/me`.
pub async fn me(user: CurrentUser) -> Json<CurrentUser> {
    Json(user)
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

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        let token = token_of(&parts.headers).ok_or(Error::Unauthorized)?;
        let user = user_of_token(state, token).await?;
        tracing::Span::current().record("user", user.id);
        Ok(user)
    }
}

/// The user a session token signs in (counting the request as the session's use), or
/// `Unauthorized`.
async fn user_of_token(state: &AppState, token: String) -> Result<CurrentUser> {
    // Tokens are 64 hex digits; anything else is not worth a query.
    if token.len() != 64 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Error::Unauthorized);
    }
    let token_sha256 = sha256_hex(token.as_bytes());
    let idle_cutoff = idle_cutoff(state);
    state
        .db
        .run(move |c| {
            let (user, last_seen) = c
                .query_row(
                    "SELECT u.id, u.username, u.admin, s.last_seen FROM sessions s
                     JOIN users u ON u.id = s.user_id
                     WHERE s.token_sha256 = ?1 AND s.expires > ?2 AND s.last_seen > ?3",
                    params![token_sha256, now(), idle_cutoff],
                    |r| {
                        let user = CurrentUser {
                            id: r.get(0)?,
                            username: r.get(1)?,
                            admin: r.get(2)?,
                        };
                        Ok((user, r.get::<_, i64>(3)?))
                    },
                )
                .optional()?
                .ok_or(Error::Unauthorized)?;
            let now = now();
            if now - last_seen >= LAST_SEEN_GRANULARITY_SECS {
                c.execute(
                    "UPDATE sessions SET last_seen = ?1 WHERE token_sha256 = ?2",
                    params![now, token_sha256],
                )?;
            }
            Ok(user)
        })
        .await
}

/// An argon2id hash of a random password no one knows (made once per process), verified
/// against when the user name does not exist.
fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| {
        let mut secret = [0u8; 32];
        rand::rng().fill_bytes(&mut secret);
        hash_password(&hex::encode(secret)).unwrap_or_default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_verify_only_against_their_own_hash() {
        let hash = hash_password("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &hash));
        assert!(!verify_password("correct horsf", &hash));
        assert!(!verify_password("anything", "not a PHC string"));
        assert!(dummy_hash().starts_with("$argon2id$"));
        assert!(!verify_password("anything", dummy_hash()));
    }

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

    #[test]
    fn user_names_and_passwords_are_checked() {
        assert!(check_username("alice_01").is_ok());
        assert!(check_username("").is_err());
        assert!(check_username("../root").is_err());
        assert!(check_username(&"a".repeat(65)).is_err());
        assert!(check_password("alice", "short").is_err());
        assert!(check_password("alice", "12345678").is_err());
        assert!(check_password("alice", "long enough").is_ok());
    }
}
