//! Accounts and sign-in: argon2id password hashes, and random session tokens that work
//! both as a cookie (the web page) and as a bearer token (scripts, the load bench). The
//! database keeps only each token's SHA-256, so a copy of it signs no one in.
//!
//! The rules: who may sign up (anyone when sign-up is open, else the album's first user,
//! who becomes its admin, and then whoever the admin adds); what a user name and a
//! password must be ([`crate::passwords`]); sign-ins and password changes throttled per
//! user name and address ([`crate::throttle`]), a locked one refused before its password
//! is checked, and every password check run in a bounded slot off the async threads;
//! sessions that end after their days, or after their idle days unused.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::blobs::sha256_hex;
use crate::db::{Db, now};
use crate::error::{Error, Result};
use crate::passwords;
use crate::repo::users::{self as repo, UserRow};
use crate::throttle::{Refusal, SignInGuard};

/// The signed-in user of a request.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CurrentUser {
    pub id: i64,
    pub username: String,
    /// The album's admin (its first user), who may add users when sign-up is closed.
    #[serde(default)]
    pub admin: bool,
}

impl From<UserRow> for CurrentUser {
    fn from(row: UserRow) -> Self {
        CurrentUser {
            id: row.id,
            username: row.username,
            admin: row.admin,
        }
    }
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

/// How stale a session's `last_seen` may get before a request writes it again: one
/// write per session per few minutes, not one per request.
const LAST_SEEN_GRANULARITY_SECS: i64 = 300;

/// The accounts service.
#[derive(Clone)]
pub struct Accounts {
    pub(crate) db: Db,
    pub(crate) guard: Arc<SignInGuard>,
    pub(crate) open_sign_up: bool,
    pub(crate) session_days: i64,
    pub(crate) session_idle_days: i64,
}

impl Accounts {
    /// Creates an account. `requester` is whoever is signed in on the request, if
    /// anyone: the admin may add users when sign-up is closed.
    pub async fn register(
        &self,
        requester: Option<&CurrentUser>,
        credentials: Credentials,
    ) -> Result<CurrentUser> {
        check_username(&credentials.username)?;
        check_password(&credentials.username, &credentials.password)?;
        // Checked before the (costly) hash, and again in the insert's transaction.
        let open = self.open_sign_up || requester.is_some_and(|user| user.admin);
        if !open && self.db.run(|c| Ok(repo::count(c)?)).await? > 0 {
            return Err(sign_up_closed());
        }
        let slot = self.guard.verification_slot().await.map_err(refused)?;
        let Credentials { username, password } = credentials;
        let hash = tokio::task::spawn_blocking(move || {
            let _slot = slot;
            hash_password(&password)
        })
        .await??;
        self.db
            .run(move |c| {
                let t = c.write_transaction()?;
                let first = repo::count(&t)? == 0;
                if !open && !first {
                    return Err(sign_up_closed());
                }
                if repo::name_taken(&t, &username)? {
                    return Err(Error::Conflict(format!(
                        "the user name {username:?} is taken"
                    )));
                }
                let id = repo::insert(&t, &username, &hash, now(), first)?;
                t.commit()?;
                Ok(CurrentUser {
                    id,
                    username,
                    admin: first,
                })
            })
            .await
    }

    /// Signs in: a new session. A locked user name or address is refused with 429
    /// before its password is checked.
    pub(crate) async fn sign_in(
        &self,
        credentials: Credentials,
        address: Option<IpAddr>,
    ) -> Result<Session> {
        let admitted = self
            .guard
            .admit(&credentials.username, address)
            .map_err(refused)?;
        let slot = self.guard.verification_slot().await.map_err(refused)?;
        let username = credentials.username.clone();
        let stored = self
            .db
            .run(move |c| Ok(repo::with_hash(c, &username)?))
            .await?;
        // An unknown name still costs one verification, so timing does not tell names
        // apart.
        let hash = stored
            .as_ref()
            .map_or_else(|| dummy_hash().to_owned(), |(_, hash)| hash.clone());
        let password = credentials.password;
        let matches = tokio::task::spawn_blocking(move || {
            let _slot = slot;
            verify_password(&password, &hash)
        })
        .await?;
        let user = match stored {
            Some((user, _)) if matches => CurrentUser::from(user),
            _ => {
                let locked = admitted.failed();
                log_failed_sign_in(&credentials.username, address, locked);
                return Err(Error::BadCredentials);
            }
        };
        admitted.succeeded();
        let mut token_bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut token_bytes);
        let token = hex::encode(token_bytes);
        let expires = now() + self.session_seconds();
        let token_sha256 = sha256_hex(token.as_bytes());
        let user_id = user.id;
        self.db
            .run(move |c| {
                Ok(repo::insert_session(
                    c,
                    &token_sha256,
                    user_id,
                    now(),
                    expires,
                )?)
            })
            .await?;
        Ok(Session {
            token,
            expires,
            user,
        })
    }

    /// How long a new session lasts, in seconds.
    pub(crate) fn session_seconds(&self) -> i64 {
        self.session_days * 86_400
    }

    /// The user a session token signs in (counting the request as the session's use),
    /// or `Unauthorized`.
    pub(crate) async fn user_of_token(&self, token: String) -> Result<CurrentUser> {
        // Tokens are 64 hex digits; anything else is not worth a query.
        if token.len() != 64 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::Unauthorized);
        }
        let token_sha256 = sha256_hex(token.as_bytes());
        let idle_cutoff = self.idle_cutoff();
        self.db
            .run(move |c| {
                let now = now();
                let (user, last_seen) = repo::session_user(c, &token_sha256, now, idle_cutoff)?
                    .ok_or(Error::Unauthorized)?;
                if now - last_seen >= LAST_SEEN_GRANULARITY_SECS {
                    repo::touch_session(c, &token_sha256, now)?;
                }
                Ok(CurrentUser::from(user))
            })
            .await
    }

    /// Ends the session of `token`.
    pub(crate) async fn sign_out(&self, user_id: i64, token: &str) -> Result<()> {
        let token_sha256 = sha256_hex(token.as_bytes());
        self.db
            .run(move |c| Ok(repo::delete_session(c, &token_sha256, user_id)?))
            .await
    }

    /// Ends every session of the user.
    pub(crate) async fn sign_out_everywhere(&self, user_id: i64) -> Result<()> {
        self.db
            .run(move |c| Ok(repo::delete_sessions(c, user_id, None)?))
            .await
    }

    /// A new password, given the current one (checked and throttled as a sign-in is).
    /// Every other session ends; `this_token`'s stays.
    pub(crate) async fn change_password(
        &self,
        user: &CurrentUser,
        current_password: String,
        new_password: String,
        address: Option<IpAddr>,
        this_token: Option<&str>,
    ) -> Result<()> {
        check_password(&user.username, &new_password)?;
        let admitted = self.guard.admit(&user.username, address).map_err(refused)?;
        let slot = self.guard.verification_slot().await.map_err(refused)?;
        let user_id = user.id;
        let hash = self
            .db
            .run(move |c| Ok(repo::password_hash(c, user_id)?))
            .await?;
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
        let keep = this_token.map(|t| sha256_hex(t.as_bytes()));
        self.db
            .run(move |c| {
                let t = c.write_transaction()?;
                repo::set_password_hash(&t, user_id, &new_hash)?;
                repo::delete_sessions(&t, user_id, keep.as_deref())?;
                t.commit()?;
                Ok(())
            })
            .await
    }

    /// Deletes sessions past their expiry or idle too long (they sign no one in, but
    /// would stay for ever); how many. Blocking.
    pub fn purge_expired_sessions(&self) -> Result<usize> {
        let c = self.db.connection()?;
        Ok(repo::purge_sessions(&c, now(), self.idle_cutoff())?)
    }

    /// Sessions last used at or before this (Unix seconds) are over.
    fn idle_cutoff(&self) -> i64 {
        now() - self.session_idle_days * 86_400
    }
}

fn sign_up_closed() -> Error {
    Error::Forbidden(
        "sign-up is closed: the album's admin adds users (or starts the album with \
         --open-sign-up)"
            .into(),
    )
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

/// A sign-in turned away by the throttle, as the client is told.
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
