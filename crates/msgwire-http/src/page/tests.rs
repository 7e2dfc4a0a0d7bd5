#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::Path;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

use super::*;

async fn send(request: Request<Body>) -> (StatusCode, HeaderMap, Vec<u8>) {
    let app: Router = routes();
    let response = app.oneshot(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let body = body.collect().await.unwrap().to_bytes().to_vec();
    (parts.status, parts.headers, body)
}

async fn get_path(path: &str) -> (StatusCode, HeaderMap, Vec<u8>) {
    send(Request::get(path).body(Body::empty()).unwrap()).await
}

fn asset(path: &str) -> &'static [u8] {
    ASSETS.iter().find(|a| a.path == path).unwrap().body
}

#[tokio::test]
async fn each_file_is_served_with_its_type_and_the_security_headers() {
    for (path, content_type, starts) in [
        ("/", "text/html; charset=utf-8", "<!doctype html>"),
        (
            "/playground.js",
            "text/javascript; charset=utf-8",
            "// The msgwire playground",
        ),
        (
            "/playground.css",
            "text/css; charset=utf-8",
            "/* The playground",
        ),
        ("/favicon.svg", "image/svg+xml", "<svg "),
        (
            "/vendor/msgpack.min.js",
            "text/javascript; charset=utf-8",
            "!function(",
        ),
    ] {
        let (status, headers, body) = get_path(path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(headers[CONTENT_TYPE], content_type, "{path}");
        assert_eq!(headers[CACHE_CONTROL], "no-cache", "{path}");
        assert_eq!(
            headers[CONTENT_SECURITY_POLICY], CONTENT_SECURITY_POLICY_VALUE,
            "{path}"
        );
        assert_eq!(headers[X_CONTENT_TYPE_OPTIONS], "nosniff", "{path}");
        assert_eq!(headers[REFERRER_POLICY], "no-referrer", "{path}");
        assert_eq!(body, asset(path), "{path}: the embedded file, whole");
        assert!(
            String::from_utf8(body).unwrap().starts_with(starts),
            "{path}"
        );
    }
}

#[tokio::test]
async fn the_policy_allows_only_the_servers_own_code() {
    let (_, headers, _) = get_path("/").await;
    let policy = headers[CONTENT_SECURITY_POLICY].to_str().unwrap();
    let directives: Vec<&str> = policy.split(';').map(str::trim).collect();
    for wanted in [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self' ws: wss:",
        "frame-ancestors 'none'",
    ] {
        assert!(directives.contains(&wanted), "{wanted} in {policy}");
    }
    assert!(
        !policy.contains("unsafe"),
        "no unsafe-inline or unsafe-eval"
    );
}

#[tokio::test]
async fn a_matching_etag_gets_not_modified_and_a_stale_one_the_file() {
    let (_, headers, _) = get_path("/playground.js").await;
    let tag = headers[ETAG].to_str().unwrap().to_owned();
    assert!(
        tag.starts_with('"') && tag.ends_with('"') && tag.len() == 42,
        "{tag}"
    );
    let (_, other, _) = get_path("/").await;
    assert_ne!(other[ETAG], headers[ETAG], "each file has its own tag");

    for if_none_match in [
        tag.clone(),
        format!("W/{tag}"),
        format!("\"x\", {tag}"),
        "*".into(),
    ] {
        let request = Request::get("/playground.js")
            .header(IF_NONE_MATCH, &if_none_match)
            .body(Body::empty())
            .unwrap();
        let (status, headers, body) = send(request).await;
        assert_eq!(status, StatusCode::NOT_MODIFIED, "{if_none_match}");
        assert!(body.is_empty());
        assert_eq!(headers[ETAG].to_str().unwrap(), tag);
    }
    let request = Request::get("/playground.js")
        .header(IF_NONE_MATCH, "\"0123\"")
        .body(Body::empty())
        .unwrap();
    let (status, _, body) = send(request).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, asset("/playground.js"));
}

#[tokio::test]
async fn head_is_answered_and_other_paths_and_methods_are_not() {
    let head = Request::builder()
        .method(Method::HEAD)
        .uri("/")
        .body(Body::empty())
        .unwrap();
    let (status, headers, body) = send(head).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[CONTENT_TYPE], "text/html; charset=utf-8");
    assert!(body.is_empty());

    let (status, _, _) = get_path("/vendor/msgpack.min.js.map").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let post = Request::post("/").body(Body::empty()).unwrap();
    let (status, _, _) = send(post).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
}

/// The values of `attribute="..."` in `html`.
fn attribute_values<'a>(html: &'a str, attribute: &str) -> Vec<&'a str> {
    let needle = format!(" {attribute}=\"");
    html.match_indices(&needle)
        .filter_map(|(at, _)| {
            let rest = &html[at + needle.len()..];
            rest.find('"').map(|end| &rest[..end])
        })
        .collect()
}

#[test]
fn the_page_links_only_to_files_that_are_served() {
    let html = std::str::from_utf8(asset("/")).unwrap();
    let mut linked: BTreeSet<String> = attribute_values(html, "src")
        .into_iter()
        .chain(attribute_values(html, "href"))
        .map(|relative| format!("/{relative}"))
        .collect();
    linked.insert("/".into());
    let served: BTreeSet<String> = ASSETS.iter().map(|a| a.path.to_owned()).collect();
    assert_eq!(linked, served);
}

#[test]
fn every_element_the_script_looks_up_is_on_the_page() {
    let html = std::str::from_utf8(asset("/")).unwrap();
    let script = std::str::from_utf8(asset("/playground.js")).unwrap();
    let ids: BTreeSet<&str> = attribute_values(html, "id").into_iter().collect();
    let looked_up: BTreeSet<&str> = script
        .match_indices("$(\"")
        .filter_map(|(at, _)| {
            let rest = &script[at + 3..];
            rest.find('"').map(|end| &rest[..end])
        })
        .collect();
    assert!(looked_up.len() > 10, "{looked_up:?}");
    let missing: Vec<&&str> = looked_up.difference(&ids).collect();
    assert!(missing.is_empty(), "not on the page: {missing:?}");
}

/// The vendored bundle must be what npm ships, not an edited copy: when the interop
/// packages are installed (scripts/test installs them), compare byte for byte.
#[test]
fn the_vendored_bundle_is_the_one_npm_ships() {
    let modules = std::env::var_os("MSGWIRE_NODE_MODULES").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/interop/node_modules"),
        Into::into,
    );
    let package = modules.join("@msgpack/msgpack");
    if !package.exists() {
        // Not installed here (a plain `cargo test` on a fresh checkout); scripts/test
        // always installs it, so the check runs there.
        eprintln!("{} is not installed: nothing to compare", package.display());
        return;
    }
    let shipped = std::fs::read(package.join("dist.umd/msgpack.min.js")).unwrap();
    assert!(
        shipped == asset("/vendor/msgpack.min.js"),
        "assets/vendor/msgpack.min.js differs from {}: copy it again (see assets/vendor/README.md)",
        package.display()
    );
    let license = std::fs::read(package.join("LICENSE")).unwrap();
    let vendored_license = include_bytes!("../../assets/vendor/LICENSE");
    assert!(license == vendored_license, "assets/vendor/LICENSE differs");
    let manifest = std::fs::read_to_string(package.join("package.json")).unwrap();
    let readme = include_str!("../../assets/vendor/README.md");
    let version = manifest
        .lines()
        .find_map(|l| l.trim().strip_prefix("\"version\": \""))
        .and_then(|v| v.split('"').next())
        .unwrap();
    assert!(
        readme.contains(&format!("`@msgpack/msgpack`\n{version} ")),
        "assets/vendor/README.md names version {version}"
    );
}
