//! Accounts under attack. Sign-in (findings "no throttle on sign-in" and "64 concurrent
//! wrong sign-ins"): a guessed account locks and even its right password waits out the
//! lock; a flood from one address is turned away before argon2 runs, and the real user
//! still gets in; the flood goes through `album serve`'s own socket setup (a real server
//! on loopback, with each connection's address). Sessions (finding "cookie writes have
//! no Origin check", "the app can be framed"): a write riding on the cookie from a
//! same-site page is refused and changes nothing; the page forbids framing.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use album_serving::app;
use album_serving::auth::Accounts;
use axum::body::Body;
use axum::extract::FromRef;
use axum::http::{Request, StatusCode, header};
use axum::response::Response;
use common::TestAlbum;
use serde_json::json;
use tower::ServiceExt;

/// One sign-in through the router, headers and all.
async fn sign_in_response(album: &TestAlbum, username: &str, password: &str) -> Response {
    let body = json!({"username": username, "password": password}).to_string();
    let request = Request::builder()
        .method("POST")
        .uri("/api/sessions")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body))
        .unwrap();
    app(album.state.clone()).oneshot(request).await.unwrap()
}

/// Status and `Retry-After` of one sign-in through the router.
async fn sign_in(album: &TestAlbum, username: &str, password: &str) -> (StatusCode, Option<u64>) {
    let response = sign_in_response(album, username, password).await;
    let retry_after = response
        .headers()
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok()?.parse().ok());
    (response.status(), retry_after)
}

#[tokio::test]
async fn brute_force_locks_the_account_and_even_the_right_password_waits_out_the_lock() {
    let album = TestAlbum::new(|config| {
        config.sign_in.free_failures_per_user = 5;
        config.sign_in.first_lock = Duration::from_secs(2);
    });
    album.user("alice").await;
    album.user("bob").await;
    let mut statuses = Vec::new();
    for _ in 0..10 {
        statuses.push(sign_in(&album, "alice", "wrong guess").await);
    }
    let unauthorized = (StatusCode::UNAUTHORIZED, None);
    assert_eq!(
        statuses[..6],
        [unauthorized; 6],
        "five free failures, the sixth locks"
    );
    for (status, retry_after) in &statuses[6..] {
        assert_eq!(*status, StatusCode::TOO_MANY_REQUESTS);
        assert!(matches!(retry_after, Some(1..=2)), "{retry_after:?}");
    }
    // the right password is refused too while the lock lasts: guessing it tells nothing
    assert_eq!(
        sign_in(&album, "alice", "correct horse").await.0,
        StatusCode::TOO_MANY_REQUESTS
    );
    // another account is not locked by alice's
    assert_eq!(
        sign_in(&album, "bob", "correct horse").await.0,
        StatusCode::CREATED
    );
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(
        sign_in(&album, "alice", "correct horse").await.0,
        StatusCode::CREATED,
        "the lock ends"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_flood_from_one_address_is_turned_away_before_password_checks() {
    let album = TestAlbum::new(|config| {
        config.sign_in.in_flight_per_address = 1;
        // this test is about concurrency: no address lock from the flood's failures
        config.sign_in.free_failures_per_address = 1000;
    });
    album.user("carol").await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let service = app(album.state.clone()).into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, service).await });

    let client = reqwest::Client::new();
    let attempts = (0..64).map(|n| {
        let request = client
            .post(format!("{base}/api/sessions"))
            .json(&json!({"username": format!("nobody{n}"), "password": "wrong guess"}));
        async move {
            let response = request.send().await.unwrap();
            let retry_after = response.headers().get(header::RETRY_AFTER).is_some();
            (response.status(), retry_after)
        }
    });
    let answers = futures::future::join_all(attempts).await;
    let count = |status| answers.iter().filter(|(s, _)| *s == status).count();
    let checked = count(StatusCode::UNAUTHORIZED);
    let turned_away = count(StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(checked + turned_away, 64, "{answers:?}");
    assert!(turned_away > 0 && checked < 64, "{answers:?}");
    assert!(
        answers
            .iter()
            .all(|(s, retry)| *s != StatusCode::TOO_MANY_REQUESTS || *retry),
        "a refusal says when to come back"
    );
    let signed_in = client
        .post(format!("{base}/api/sessions"))
        .json(&json!({"username": "carol", "password": "correct horse"}))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(
        signed_in,
        StatusCode::CREATED,
        "the real user gets in after the flood"
    );
}

/// A request signed in by the session cookie, as a browser page would send it.
fn cookie_request(method: &str, uri: &str, token: &str, fetch_site: &str) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(uri)
        .header(header::COOKIE, format!("album_session={token}"))
        .header("sec-fetch-site", fetch_site)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(json!({"name": "Summer"}).to_string()))
        .unwrap()
}

#[tokio::test]
async fn same_site_forged_write_is_refused_and_changes_nothing() {
    let album = TestAlbum::plain();
    let token = album.user("dave").await;
    let forged = cookie_request("POST", "/api/albums", &token, "same-site");
    let (status, body) = album.send(forged).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body:?}");
    assert_eq!(album.count("albums"), 0);
    // the album's own page may write, and so may a script with the bearer token
    let own_page = cookie_request("POST", "/api/albums", &token, "same-origin");
    assert_eq!(album.send(own_page).await.0, StatusCode::CREATED);
    let (status, _) = album
        .json(
            "POST",
            "/api/albums",
            Some(&token),
            Some(json!({"name": "Trip"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(album.count("albums"), 2);
    // reads from anywhere are what they were
    let read = cookie_request("GET", "/api/albums", &token, "cross-site");
    assert_eq!(album.send(read).await.0, StatusCode::OK);
}

#[tokio::test]
async fn the_page_refuses_to_be_framed() {
    let album = TestAlbum::plain();
    let request = Request::builder().uri("/").body(Body::empty()).unwrap();
    let response = app(album.state.clone()).oneshot(request).await.unwrap();
    let header_text = |name| response.headers().get(name).unwrap().to_str().unwrap();
    assert!(header_text(header::CONTENT_SECURITY_POLICY).contains("frame-ancestors 'none'"));
    assert_eq!(header_text(header::X_FRAME_OPTIONS), "DENY");
}

/// Finding "the sign-in form falls back to GET with the password in the URL when the
/// script has not loaded".
#[tokio::test]
async fn the_sign_in_form_never_puts_the_password_in_the_url() {
    let album = TestAlbum::plain();
    let request = Request::builder().uri("/").body(Body::empty()).unwrap();
    let (status, page) = album.send(request).await;
    assert_eq!(status, StatusCode::OK);
    let page = String::from_utf8(page.to_vec()).unwrap();
    let form = page
        .split("<form")
        .find(|form| form.contains("data-testid=\"auth-form\""))
        .expect("the sign-in form");
    let tag = &form[..form.find('>').unwrap()];
    assert!(tag.contains("method=\"post\""), "{tag}");
}

/// Finding "8-character passwords like 12345678 accepted".
#[tokio::test]
async fn common_and_guessable_passwords_are_refused_at_sign_up() {
    let album = TestAlbum::plain();
    for password in ["12345678", "password1", "aaaaaaaaaa", "erin-erin-erin"] {
        let (status, body) = album
            .json(
                "POST",
                "/api/users",
                None,
                Some(json!({"username": "erin", "password": password})),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{password}: {body}");
    }
    assert_eq!(album.count("users"), 0);
}

/// Finding "expired sessions never deleted".
#[tokio::test]
async fn expired_sessions_are_purged_and_live_ones_kept() {
    let album = TestAlbum::plain();
    let live = album.user("fay").await;
    album.user("gus").await;
    let c = album.state.db.connection().unwrap();
    c.execute(
        "UPDATE sessions SET expires = 1 WHERE user_id = (SELECT id FROM users WHERE username = 'gus')",
        [],
    )
    .unwrap();
    drop(c);
    assert_eq!(
        Accounts::from_ref(&album.state)
            .purge_expired_sessions()
            .unwrap(),
        1
    );
    assert_eq!(album.count("sessions"), 1);
    let (status, _) = album.json("GET", "/api/me", Some(&live), None).await;
    assert_eq!(status, StatusCode::OK);
}

/// Finding "no `Secure` flag option": behind TLS the cookie is Secure and HSTS is sent.
#[tokio::test]
async fn over_tls_the_cookie_is_secure_and_hsts_is_sent() {
    let album = TestAlbum::new(|config| config.secure_cookies = true);
    album.user("hal").await;
    let response = sign_in_response(&album, "hal", "correct horse").await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let cookie = response.headers()[header::SET_COOKIE].to_str().unwrap();
    assert!(cookie.ends_with("; Secure"), "{cookie}");
    assert!(
        response
            .headers()
            .contains_key(header::STRICT_TRANSPORT_SECURITY)
    );
}

/// A second session for `username` (signed up already with "correct horse").
async fn another_session(album: &TestAlbum, username: &str, password: &str) -> String {
    let (status, session) = album
        .json(
            "POST",
            "/api/sessions",
            None,
            Some(json!({"username": username, "password": password})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{session}");
    session["token"].as_str().unwrap().to_owned()
}

async fn is_signed_in(album: &TestAlbum, token: &str) -> bool {
    album.json("GET", "/api/me", Some(token), None).await.0 == StatusCode::OK
}

/// Finding "no password change": it needs the current password, follows the policy,
/// and ends every other session (a thief's included); this one stays.
#[tokio::test]
async fn a_password_change_needs_the_current_password_and_ends_other_sessions() {
    let album = TestAlbum::plain();
    let here = album.user("ann").await;
    let elsewhere = another_session(&album, "ann", "correct horse").await;
    let change =
        |current: &str, new: &str| json!({"current_password": current, "new_password": new});
    let (status, _) = album
        .json(
            "PUT",
            "/api/me/password",
            Some(&here),
            Some(change("wrong guess", "a far better phrase")),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = album
        .json(
            "PUT",
            "/api/me/password",
            Some(&here),
            Some(change("correct horse", "12345678")),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        is_signed_in(&album, &elsewhere).await,
        "refused changes end nothing"
    );
    let (status, _) = album
        .json(
            "PUT",
            "/api/me/password",
            Some(&here),
            Some(change("correct horse", "a far better phrase")),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(is_signed_in(&album, &here).await);
    assert!(!is_signed_in(&album, &elsewhere).await);
    let (status, _) = sign_in(&album, "ann", "correct horse").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    another_session(&album, "ann", "a far better phrase").await;
}

/// Finding "no sign-out everywhere".
#[tokio::test]
async fn signing_out_everywhere_ends_every_session() {
    let album = TestAlbum::plain();
    let here = album.user("ann").await;
    let elsewhere = another_session(&album, "ann", "correct horse").await;
    let bob = album.user("bob").await;
    let (status, _) = album
        .json("DELETE", "/api/me/sessions", Some(&here), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(!is_signed_in(&album, &here).await);
    assert!(!is_signed_in(&album, &elsewhere).await);
    assert!(
        is_signed_in(&album, &bob).await,
        "another user's sessions stay"
    );
}

/// Finding "30-day sessions with no idle expiry": a session unused for longer than
/// `session_idle_days` is over (and purged), however far its expiry; use keeps it alive.
#[tokio::test]
async fn an_idle_session_ends_before_its_expiry() {
    let album = TestAlbum::plain();
    let idle = album.user("ann").await;
    let used = another_session(&album, "ann", "correct horse").await;
    let last_seen = |days_ago: i64, token: &str| {
        let c = album.state.db.connection().unwrap();
        let sha = album_serving::blobs::sha256_hex(token.as_bytes());
        let when = album_serving::db::now() - days_ago * 86_400;
        c.execute(
            "UPDATE sessions SET last_seen = ?1 WHERE token_sha256 = ?2",
            (when, sha.as_str()),
        )
        .unwrap();
    };
    last_seen(8, &idle);
    last_seen(6, &used);
    assert!(!is_signed_in(&album, &idle).await);
    assert!(is_signed_in(&album, &used).await);
    // that request counted as use: the session's clock starts again
    let c = album.state.db.connection().unwrap();
    let oldest: i64 = c
        .query_row(
            "SELECT MIN(last_seen) FROM sessions WHERE expires > 0 AND last_seen > ?1",
            [album_serving::db::now() - 7 * 86_400],
            |r| r.get(0),
        )
        .unwrap();
    assert!(oldest > album_serving::db::now() - 60, "{oldest}");
    assert_eq!(
        Accounts::from_ref(&album.state)
            .purge_expired_sessions()
            .unwrap(),
        1
    );
}

/// Finding "open sign-up with no way to close it, no admin": closed by default, the first
/// user is the admin and adds the others; anyone else is refused before a hash is made.
#[tokio::test]
async fn sign_up_is_closed_but_to_the_first_user_and_the_admin() {
    let album = TestAlbum::new(|c| c.open_sign_up = false);
    let sign_up = |name: &str| json!({"username": name, "password": "correct horse"});
    let (status, first) = album
        .json("POST", "/api/users", None, Some(sign_up("ann")))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(first["admin"], true);
    let (status, _) = album
        .json("POST", "/api/users", None, Some(sign_up("mallory")))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let ann = another_session(&album, "ann", "correct horse").await;
    let (status, bob) = album
        .json("POST", "/api/users", Some(&ann), Some(sign_up("bob")))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(bob["admin"], false);
    // bob is no admin: he cannot add users either
    let bob = another_session(&album, "bob", "correct horse").await;
    let (status, _) = album
        .json("POST", "/api/users", Some(&bob), Some(sign_up("carol")))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, me) = album.json("GET", "/api/me", Some(&ann), None).await;
    assert_eq!(me["admin"], true);
}

/// With sign-up opened (`album serve --open-sign-up`), anyone may, and only the first
/// user is the admin.
#[tokio::test]
async fn an_opened_sign_up_takes_anyone_and_makes_only_the_first_admin() {
    let album = TestAlbum::new(|c| c.open_sign_up = true);
    let sign_up = |name: &str| json!({"username": name, "password": "correct horse"});
    let (_, ann) = album
        .json("POST", "/api/users", None, Some(sign_up("ann")))
        .await;
    let (status, bob) = album
        .json("POST", "/api/users", None, Some(sign_up("bob")))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(
        (ann["admin"].as_bool(), bob["admin"].as_bool()),
        (Some(true), Some(false))
    );
}
