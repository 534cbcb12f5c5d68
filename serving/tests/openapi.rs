//! serving/openapi.json against the router, both ways: every documented path is a
//! route and every route is documented; every documented method answers (not 405, not
//! the fallback's "route not found"); every undocumented method is a 405.

mod common;

use std::collections::BTreeSet;

use album_serving::app::routes;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::TestAlbum;
use serde_json::Value;

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

fn spec() -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn every_route_is_documented_and_every_documented_path_is_a_route() {
    let spec = spec();
    let documented: BTreeSet<String> = spec["paths"].as_object().unwrap().keys().cloned().collect();
    let album = TestAlbum::plain();
    let routed: BTreeSet<String> = routes(&album.state.config)
        .into_iter()
        .map(|(path, _)| path.to_owned())
        .collect();
    assert_eq!(
        documented.difference(&routed).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "documented but not routed"
    );
    assert_eq!(
        routed.difference(&documented).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "routed but not documented"
    );
}

#[tokio::test]
async fn every_documented_method_answers_and_no_other() {
    let spec = spec();
    let album = TestAlbum::plain();
    for (path, operations) in spec["paths"].as_object().unwrap() {
        let uri = path.replace("{id}", "1").replace("{photo_id}", "1");
        for method in METHODS {
            let request = Request::builder()
                .method(method.to_uppercase().as_str())
                .uri(&uri)
                .body(Body::empty())
                .unwrap();
            let (status, body) = album.send(request).await;
            let text = String::from_utf8_lossy(&body);
            if operations.get(method).is_some() {
                assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
                assert!(!text.contains("route not found"), "{method} {path}: {text}");
            } else {
                assert_eq!(
                    status,
                    StatusCode::METHOD_NOT_ALLOWED,
                    "{method} {path} is not documented"
                );
            }
        }
    }
}
