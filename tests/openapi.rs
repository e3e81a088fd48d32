//! `GET /api/openapi.json`: an OpenAPI 3.1 document that `openapi-spec-validator` (from PyPI,
//! installed by scripts/test.sh in target/pyvenv) accepts, whose operations are exactly the
//! router's routes (read from the router's source: a route added without its documentation,
//! or documentation of a route that is gone, fails here), each with its parameters, a tag, a
//! unique operation id, and the error shape.

mod support;

use std::collections::BTreeSet;
use std::process::Command;

use serde_json::Value;
use support::Gateway;

#[path = "support/routes.rs"]
mod routes;

async fn document() -> Value {
    let gw = Gateway::start(support::config(None)).await;
    let r = gw
        .http
        .get(gw.url("/api/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/json");
    let doc = r.json().await.unwrap();
    gw.stop().await;
    doc
}

/// `METHOD /path` for each operation, paths written as the router's (`{id}` → `:id`).
fn operations(doc: &Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        let path: Vec<String> = path
            .split('/')
            .map(
                |p| match p.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                    Some(name) => format!(":{name}"),
                    None => p.to_string(),
                },
            )
            .collect();
        for method in item.as_object().unwrap().keys() {
            out.insert(format!("{} {}", method.to_uppercase(), path.join("/")));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_is_valid_openapi_3_1() {
    let doc = document().await;
    assert_eq!(doc["openapi"], "3.1.0");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, doc.to_string()).unwrap();
    let python = support::python();
    let out = Command::new(&python)
        .args(["-m", "openapi_spec_validator"])
        .arg(&file)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {python} ({e}): run scripts/test.sh"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !text.contains("No module named"),
        "{python} lacks openapi-spec-validator; scripts/test.sh installs it in target/pyvenv:\n{text}"
    );
    assert!(
        out.status.success(),
        "the document does not validate:\n{text}"
    );
    assert!(text.contains("OK"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_is_documented_and_every_operation_is_a_route() {
    let doc = document().await;
    let documented = operations(&doc);
    let routes = routes::routes();
    assert!(routes.len() > 60, "{routes:?}");
    for route in &routes {
        let (method, path) = route.split_once(' ').unwrap();
        // An `any` route is documented once (its answer is the same for every method).
        let found = if method == "ANY" {
            documented
                .iter()
                .any(|d| d.split_once(' ').unwrap().1 == path)
        } else {
            documented.contains(route)
        };
        assert!(found, "{route} is not in the OpenAPI document (annotate its handler with #[utoipa::path] and list it in src/http/openapi.rs)");
    }
    let paths_of_routes: BTreeSet<&str> = routes
        .iter()
        .map(|r| r.split_once(' ').unwrap().1)
        .collect();
    for op in &documented {
        let (method, path) = op.split_once(' ').unwrap();
        let any = routes.contains(&format!("ANY {path}"));
        assert!(
            routes.contains(op) || (any && paths_of_routes.contains(path)),
            "{method} {path} is documented but the router has no such route"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_operation_has_its_parameters_a_tag_a_unique_id_and_the_error_shape() {
    let doc = document().await;
    let mut ids = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let id = op["operationId"].as_str().unwrap();
            assert!(ids.insert(id.to_string()), "{id} twice");
            assert!(
                !op["tags"].as_array().unwrap().is_empty(),
                "{method} {path}: no tag"
            );
            // Each `{param}` of the path is a path parameter of the operation.
            let params: BTreeSet<&str> = op["parameters"]
                .as_array()
                .map(|ps| {
                    ps.iter()
                        .filter(|p| p["in"] == "path")
                        .map(|p| p["name"].as_str().unwrap())
                        .collect()
                })
                .unwrap_or_default();
            for seg in path.split('/').filter(|s| s.starts_with('{')) {
                let name = seg.trim_matches(['{', '}']);
                assert!(
                    params.contains(name),
                    "{method} {path}: no parameter {name}"
                );
            }
            let responses = op["responses"].as_object().unwrap();
            assert!(!responses.is_empty(), "{method} {path}: no response");
            if path.starts_with("/api/")
                && !path.starts_with("/api/files")
                && !path.starts_with("/api/history")
                && path != "/api/health/redis"
            {
                let err = &responses["503"]["content"]["application/json"]["schema"]["$ref"];
                assert_eq!(err, "#/components/schemas/ErrorBody", "{method} {path}");
            }
        }
    }
    // Bodies and queries are the handlers' own types: a sample of each.
    let create = &doc["paths"]["/api/sessions"]["post"]["requestBody"]["content"]
        ["application/json"]["schema"]["$ref"];
    assert_eq!(create, "#/components/schemas/CreateSession");
    let session = &doc["components"]["schemas"]["CreateSession"];
    assert_eq!(
        session["additionalProperties"], false,
        "deny_unknown_fields: {session}"
    );
    assert!(
        session["properties"]["userId"].is_object(),
        "camelCase: {session}"
    );
    let list = doc["paths"]["/api/sessions"]["get"]["parameters"]
        .as_array()
        .unwrap();
    let names: BTreeSet<&str> = list.iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        BTreeSet::from(["status", "userId", "limit", "cursor"])
    );
    let error = &doc["components"]["schemas"]["ErrorBody"]["properties"];
    for field in ["error", "message", "requestId"] {
        assert!(error[field].is_object(), "ErrorBody has {field}");
    }
}
