//! The router's routes, read from its source, for the tests that must cover every one (the
//! protocol document's route list, the credentials matrix).

use std::collections::BTreeSet;

/// Every route of the router, as `METHOD /path` with `:param`s, read from the router's source
/// (`.route("/path", get(a).post(b))`) and the dashboard's (`web.rs`, all GETs).
pub fn routes() -> BTreeSet<String> {
    let src = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/http/mod.rs"),
    )
    .unwrap();
    let mut out = BTreeSet::new();
    for chunk in src.split(".route(").skip(1) {
        let Some(path) = chunk.split('"').nth(1) else {
            continue;
        };
        // The route's handlers: up to the parenthesis that closes `.route(`.
        let mut depth = 1;
        let end = chunk
            .char_indices()
            .find(|&(_, c)| {
                depth += match c {
                    '(' => 1,
                    ')' => -1,
                    _ => 0,
                };
                depth == 0
            })
            .map_or(chunk.len(), |(i, _)| i);
        let handlers = &chunk[..end];
        let path = path
            .split('/')
            .map(
                |p| match p.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                    Some(name) => format!(":{}", name.trim_start_matches('*')),
                    None => p.to_string(),
                },
            )
            .collect::<Vec<_>>()
            .join("/");
        for method in ["get", "post", "put", "patch", "delete", "any"] {
            let called = handlers
                .match_indices(&format!("{method}("))
                .any(|(i, _)| !handlers[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_'));
            if called {
                out.insert(format!("{} {path}", method.to_uppercase()));
            }
        }
    }
    out
}

/// A concrete path for a route's pattern: each parameter `{prefix}-{name}`, and `:action`
/// (the workflow actions) `pause`.
#[allow(dead_code)] // not every test binary that reads the routes calls routes by them
pub fn concrete(pattern: &str, prefix: &str) -> String {
    pattern
        .split('/')
        .map(|p| match p {
            ":action" => "pause".to_string(),
            p if p.starts_with(':') => format!("{prefix}-{}", &p[1..]),
            p => p.to_string(),
        })
        .collect::<Vec<_>>()
        .join("/")
}
