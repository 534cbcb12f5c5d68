//! The gallery's routes and HTML.
//!
//! Layout (the crawler is written against it):
//! - `/`: links to each class's `/class/<class>/page/1`;
//! - `/class/<class>/page/<n>`: `<figure class="photo"><a href=P><img src=P></a></figure>`
//!   per photo, P = `/photos/<class>/<file>`, files sorted by name, and an
//!   `<a class="next" rel="next">` link on every page but the last;
//! - `/photos/<class>/<file>`: the bytes, typed by extension;
//! - `/robots.txt`: disallows `/private/`, which every class's page 1 links to anyway
//!   (one photo figure and one page link) so a crawler that ignores robots.txt shows up
//!   in the access log;
//! - planted faults on page 1 of the first class, see [`super::faults`], and a link to
//!   [`EMPTY_PAGE_PATH`], a page without photos.

use std::fmt::Write as _;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;

use super::Gallery;
use super::listing::{ClassPhotos, content_type_for, html_escape, percent_encode, photo_path};

/// A page linked from the first class's page 1 that holds no photos at all.
pub const EMPTY_PAGE_PATH: &str = "/pages/no-photos";

/// The robots.txt the gallery serves.
pub const ROBOTS_TXT: &str = "User-agent: *\nDisallow: /private/\n";

/// The gallery's router; every request goes through the access log.
pub fn app(gallery: Gallery) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/robots.txt", get(robots))
        .route("/class/{class}/page/{page}", get(class_page))
        .route("/photos/{class}/{file}", get(photo))
        .route(EMPTY_PAGE_PATH, get(empty_page))
        .route("/private/{class}/page/{page}", get(private_page))
        .route("/private/photos/{class}/{file}", get(private_photo))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(gallery.clone(), log_access))
        .with_state(gallery)
}

/// Records method, path, status and announced body size of every response.
async fn log_access(State(gallery): State<Gallery>, request: Request, next: Next) -> Response {
    let method = request.method().to_string();
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    let bytes = announced_length(&response);
    gallery.record_access(method, path, response.status().as_u16(), bytes);
    response
}

/// The Content-Length header if set (streamed bodies), else the body's exact size.
fn announced_length(response: &Response) -> u64 {
    use axum::body::HttpBody as _;
    response
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .or_else(|| response.body().size_hint().exact())
        .unwrap_or(0)
}

async fn index(State(gallery): State<Gallery>) -> Html<String> {
    let mut items = String::new();
    for class in &gallery.folder().classes {
        let _ = writeln!(
            items,
            r#"<li><a href="/class/{}/page/1">{}</a> ({} photos)</li>"#,
            percent_encode(&class.name),
            html_escape(&class.name),
            class.files.len()
        );
    }
    Html(document(
        "Photo gallery",
        &format!("<h1>Photo gallery</h1>\n<ul>\n{items}</ul>"),
    ))
}

async fn robots() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        ROBOTS_TXT,
    )
}

async fn class_page(
    State(gallery): State<Gallery>,
    Path((class_name, page)): Path<(String, String)>,
) -> Response {
    let Some(class) = gallery.folder().class(&class_name) else {
        return not_found().await;
    };
    let per_page = gallery.per_page();
    let pages = class.files.len().div_ceil(per_page);
    let Some(page) = page
        .parse::<usize>()
        .ok()
        .filter(|p| (1..=pages).contains(p))
    else {
        return not_found().await;
    };
    let first = (page - 1) * per_page;
    let files = &class.files[first..(first + per_page).min(class.files.len())];
    let mut body = format!(
        "<h1>{}</h1>\n<p>Page {page} of {pages}</p>\n<main class=\"photos\">\n",
        html_escape(&class.name)
    );
    for file in files {
        body.push_str(&figure(&photo_path(&class.name, file)));
    }
    if page == 1 {
        body.push_str(&page_one_extras(&gallery, class));
    }
    body.push_str("</main>\n<nav>\n");
    if page == 1 {
        let _ = writeln!(
            body,
            r#"<a class="page" href="/private/{}/page/1">Private album</a>"#,
            percent_encode(&class.name)
        );
        if gallery.is_fault_class(&class.name) {
            let _ = writeln!(
                body,
                r#"<a class="page" href="{EMPTY_PAGE_PATH}">More photos</a>"#
            );
        }
    }
    if page < pages {
        let _ = writeln!(
            body,
            r#"<a class="next" rel="next" href="/class/{}/page/{}">Next</a>"#,
            percent_encode(&class.name),
            page + 1
        );
    }
    body.push_str("</nav>");
    Html(document(&format!("{} — page {page}", class.name), &body)).into_response()
}

/// Page 1's extra figures: the private photo, and on the fault class the planted links.
fn page_one_extras(gallery: &Gallery, class: &ClassPhotos) -> String {
    let mut extras = figure(&format!(
        "/private/photos/{}/{}",
        percent_encode(&class.name),
        percent_encode(&class.files[0])
    ));
    if gallery.is_fault_class(&class.name) {
        for fault in gallery.planted_faults() {
            extras.push_str(&figure(&fault.path));
        }
    }
    extras
}

fn figure(src: &str) -> String {
    format!("<figure class=\"photo\"><a href=\"{src}\"><img src=\"{src}\"></a></figure>\n")
}

async fn photo(
    State(gallery): State<Gallery>,
    Path((class, file)): Path<(String, String)>,
) -> Response {
    if let Some(response) = gallery.fault_response(&class, &file) {
        return response;
    }
    serve_listed_file(&gallery, &class, &file).await
}

/// Serves a photo only if the listing names it: the request never becomes a path.
async fn serve_listed_file(gallery: &Gallery, class: &str, file: &str) -> Response {
    let listed = gallery
        .folder()
        .class(class)
        .is_some_and(|c| c.contains(file));
    if !listed {
        return not_found().await;
    }
    let path = gallery.folder().file_path(class, file);
    match tokio::fs::read(&path).await {
        Ok(bytes) => (
            [(header::CONTENT_TYPE, content_type_for(file))],
            Body::from(bytes),
        )
            .into_response(),
        // Listed at start but gone or unreadable now: the server's problem, not the URL's.
        Err(error) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot read {file}: {error}\n"),
        )
            .into_response(),
    }
}

async fn empty_page() -> Html<String> {
    Html(document(
        "More photos",
        "<h1>More photos</h1>\n<p>Nothing here yet.</p>",
    ))
}

async fn private_page(
    State(gallery): State<Gallery>,
    Path((class_name, _page)): Path<(String, String)>,
) -> Response {
    let Some(class) = gallery.folder().class(&class_name) else {
        return not_found().await;
    };
    let src = format!(
        "/private/photos/{}/{}",
        percent_encode(&class.name),
        percent_encode(&class.files[0])
    );
    let body = format!(
        "<h1>Private: {}</h1>\n<main class=\"photos\">\n{}</main>",
        html_escape(&class.name),
        figure(&src)
    );
    Html(document("Private album", &body)).into_response()
}

async fn private_photo(
    State(gallery): State<Gallery>,
    Path((class, file)): Path<(String, String)>,
) -> Response {
    serve_listed_file(&gallery, &class, &file).await
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        Html(document("Not found", "<h1>Not found</h1>")),
    )
        .into_response()
}

fn document(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\"><title>{}</title></head>\n<body>\n{body}\n</body>\n</html>\n",
        html_escape(title)
    )
}
