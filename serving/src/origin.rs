//! Cookie-authenticated writes only from the album's own pages.
//!
//! The session cookie is `SameSite=Strict`, which keeps other *sites* from sending it,
//! but a page on another origin of the same site (another port, a sibling subdomain)
//! still gets it attached. So a write (any method but GET, HEAD, OPTIONS, TRACE) that
//! rides on the cookie must come from this origin: the browser's `Sec-Fetch-Site` must
//! say `same-origin` (or `none`: typed by the user), or, from a browser too old to
//! send it, `Origin` must name the host the request was sent to. A bearer token is never
//! attached by a browser on its own, so requests carrying one are not checked.

use axum::extract::Request;
use axum::http::header::{AUTHORIZATION, HOST, ORIGIN};
use axum::http::{HeaderMap, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::auth::SESSION_COOKIE;
use crate::error::Error;

/// Middleware: refuses a cookie-authenticated write from another origin with 403.
pub(crate) async fn refuse_cross_origin_cookie_writes(request: Request, next: Next) -> Response {
    if is_cross_origin_cookie_write(request.method(), request.headers()) {
        return Error::Forbidden(
            "a write signed in by cookie must come from the album's own page".into(),
        )
        .into_response();
    }
    next.run(request).await
}

fn is_cross_origin_cookie_write(method: &Method, headers: &HeaderMap) -> bool {
    if method.is_safe() || headers.contains_key(AUTHORIZATION) || !has_session_cookie(headers) {
        return false;
    }
    let text = |name| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = text("sec-fetch-site") {
        return !matches!(site, "same-origin" | "none");
    }
    match (text(ORIGIN.as_str()), text(HOST.as_str())) {
        (Some(origin), Some(host)) => origin_host(origin) != Some(host),
        (Some(_), None) => true,
        // neither header: not a browser, so nothing could have attached the cookie
        (None, _) => false,
    }
}

fn has_session_cookie(headers: &HeaderMap) -> bool {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .any(|(name, _)| name == SESSION_COOKIE)
}

/// `host[:port]` of an `Origin` value (`null` and malformed values have none).
fn origin_host(origin: &str) -> Option<&str> {
    let (_, rest) = origin.split_once("://")?;
    (!rest.is_empty() && !rest.contains('/')).then_some(rest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    const COOKIE: (&str, &str) = ("cookie", "album_session=abc");

    #[test]
    fn cookie_writes_need_this_origin() {
        let post = Method::POST;
        let forged = [
            vec![COOKIE, ("sec-fetch-site", "same-site")],
            vec![COOKIE, ("sec-fetch-site", "cross-site")],
            vec![
                COOKIE,
                ("origin", "http://album.test:9000"),
                ("host", "album.test:8080"),
            ],
            vec![COOKIE, ("origin", "null"), ("host", "album.test:8080")],
        ];
        for pairs in forged {
            assert!(
                is_cross_origin_cookie_write(&post, &headers(&pairs)),
                "{pairs:?}"
            );
        }
        let allowed = [
            vec![COOKIE, ("sec-fetch-site", "same-origin")],
            vec![COOKIE, ("sec-fetch-site", "none")],
            vec![
                COOKIE,
                ("origin", "http://album.test:8080"),
                ("host", "album.test:8080"),
            ],
            vec![COOKIE],
            // a bearer token is not something a browser attaches by itself
            vec![
                COOKIE,
                ("authorization", "Bearer x"),
                ("sec-fetch-site", "cross-site"),
            ],
            // no session cookie: nothing to forge
            vec![("sec-fetch-site", "cross-site")],
        ];
        for pairs in allowed {
            assert!(
                !is_cross_origin_cookie_write(&post, &headers(&pairs)),
                "{pairs:?}"
            );
        }
        let read = headers(&[COOKIE, ("sec-fetch-site", "cross-site")]);
        assert!(!is_cross_origin_cookie_write(&Method::GET, &read));
        assert!(is_cross_origin_cookie_write(&Method::DELETE, &read));
    }
}
