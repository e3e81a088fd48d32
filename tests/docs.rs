//! The documents cannot drift from the code: every relative link and `#anchor` in `README.md`
//! and `docs/` resolves; the settings table of `docs/configuration.md` is exactly what the
//! gateway's clap definitions say (names, defaults and help); every route of the router is in
//! `docs/protocol.md`; no file cites a document the repository does not have. (The README's
//! tour runs in `tests/tour.rs`.)
//!
//! `AFW_WRITE_DOCS=1 cargo test --test docs` rewrites the settings table from the code.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use clap::CommandFactory;

#[path = "support/routes.rs"]
mod routes;
use routes::routes;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn documents() -> Vec<PathBuf> {
    let mut out = vec![root().join("README.md"), root().join("BENCHMARKS.md")];
    for e in std::fs::read_dir(root().join("docs")).expect("docs/") {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "md") {
            out.push(p);
        }
    }
    out
}

/// GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// The anchors of a Markdown file's headings (outside code blocks), numbered as GitHub does
/// when a heading repeats.
fn anchors(text: &str) -> BTreeSet<String> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut out = BTreeSet::new();
    let mut fenced = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced || !line.starts_with('#') {
            continue;
        }
        let s = slug(line.trim_start_matches('#'));
        let n = seen.entry(s.clone()).or_insert(0);
        out.insert(if *n == 0 {
            s.clone()
        } else {
            format!("{s}-{n}")
        });
        *n += 1;
    }
    out
}

/// The targets of a Markdown file's inline links, outside code blocks and code spans.
fn links(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut fenced = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        // Drop code spans, whose brackets are not links.
        let mut plain = String::new();
        let mut code = false;
        for c in line.chars() {
            if c == '`' {
                code = !code;
            } else if !code {
                plain.push(c);
            }
        }
        let mut rest = plain.as_str();
        while let Some(i) = rest.find("](") {
            let after = &rest[i + 2..];
            let Some(end) = after.find(')') else { break };
            out.push(after[..end].to_string());
            rest = &after[end..];
        }
    }
    out
}

#[test]
fn every_relative_link_and_anchor_resolves() {
    let mut broken = Vec::new();
    for doc in documents() {
        let text = std::fs::read_to_string(&doc).unwrap();
        for target in links(&text) {
            if target.starts_with("http://") || target.starts_with("https://") {
                continue;
            }
            let (file, anchor) = match target.split_once('#') {
                Some((f, a)) => (f, Some(a)),
                None => (target.as_str(), None),
            };
            let path = if file.is_empty() {
                doc.clone()
            } else {
                doc.parent().unwrap().join(file)
            };
            if !path.exists() {
                broken.push(format!("{}: {target} (no such file)", doc.display()));
                continue;
            }
            if let Some(a) = anchor {
                let there = std::fs::read_to_string(&path).unwrap_or_default();
                if !anchors(&there).contains(a) {
                    broken.push(format!("{}: {target} (no such heading)", doc.display()));
                }
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

/// The settings table as the clap definitions make it: one row per setting, with its default
/// and its help text.
fn settings_table() -> String {
    // One table per group of the config, under the group's help heading, in the code's order.
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    for arg in afw_gateway::Config::command().get_arguments() {
        let Some(env) = arg.get_env() else { continue };
        if arg.is_hide_set() {
            continue; // an older name, listed apart
        }
        let heading = arg.get_help_heading().unwrap_or("Other").to_string();
        if groups.last().map(|(h, _)| h != &heading).unwrap_or(true) {
            assert!(
                groups.iter().all(|(h, _)| h != &heading),
                "the settings of {heading} are not together"
            );
            groups.push((heading.clone(), Vec::new()));
        }
        let default: Vec<String> = arg
            .get_default_values()
            .iter()
            .map(|v| v.to_string_lossy().into_owned())
            .collect();
        let default = match default.join(",") {
            d if d.is_empty() && arg.get_action().takes_values() => "unset".to_string(),
            d if d.is_empty() => "`false`".to_string(),
            d => format!("`{d}`"),
        };
        let help = arg
            .get_long_help()
            .or(arg.get_help())
            .map(|h| h.to_string())
            .unwrap_or_default()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .replace('|', "\\|");
        let rows = &mut groups.last_mut().unwrap().1;
        rows.push(format!(
            "| `{}` | {default} | {help} |",
            env.to_string_lossy()
        ));
    }
    groups
        .into_iter()
        .map(|(heading, rows)| {
            format!(
                "## {heading}\n\n| Variable | Default | Meaning |\n|---|---|---|\n{}\n",
                rows.join("\n")
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_settings_table_is_the_code_s() {
    let path = root().join("docs/configuration.md");
    let text = std::fs::read_to_string(&path).unwrap();
    let (begin, end) = ("<!-- settings:begin -->\n", "<!-- settings:end -->");
    let (Some(b), Some(e)) = (text.find(begin), text.find(end)) else {
        panic!("docs/configuration.md has no settings table between its markers")
    };
    let want = format!("\n{}\n", settings_table());
    let have = text.get(b + begin.len()..e).unwrap_or("");
    if std::env::var("AFW_WRITE_DOCS").is_ok() {
        let new = format!("{}{begin}{want}{}", &text[..b], &text[e..]);
        std::fs::write(&path, new).unwrap();
        return;
    }
    assert!(
        have == want,
        "docs/configuration.md's settings table is not the code's; rewrite it with \
         AFW_WRITE_DOCS=1 cargo test --test docs (every setting once, with its default and help)"
    );
}

/// A path with each parameter (`:id`, `:sessionId`, `{id}`, `{pause,resume,cancel}`, `…`)
/// written `:_`, so the router's names and the document's may differ.
fn shape(path: &str) -> String {
    path.split('/')
        .map(|p| {
            if p.starts_with(':') || p.starts_with('{') || p == "…" {
                ":_".to_string()
            } else {
                p.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// The (method, path shape) pairs the protocol's route tables name: each row's first cell, with
/// its methods (`PUT` / `PATCH /api/…`, `GET /`, `/index.html`, …) and aliases.
fn documented(doc: &str) -> BTreeSet<(String, String)> {
    let methods = ["GET", "POST", "PUT", "PATCH", "DELETE"];
    let mut out = BTreeSet::new();
    for line in doc.lines().filter(|l| l.starts_with("| `")) {
        let cell = line.split(" | ").next().unwrap_or("");
        let mut current: Vec<&str> = Vec::new();
        for token in cell.split(['`', ' ', ',', '(', ')']) {
            if methods.contains(&token) {
                current.push(token);
            } else if token.starts_with('/') && token != "/" {
                let path = shape(token.trim_end_matches('?'));
                let used: Vec<&str> = if current.is_empty() {
                    vec!["ANY"]
                } else {
                    current.clone()
                };
                for m in used {
                    out.insert((m.to_string(), path.clone()));
                }
                current.clear();
            }
        }
    }
    out
}

#[test]
fn every_route_is_in_the_protocol() {
    let doc = std::fs::read_to_string(root().join("docs/protocol.md")).unwrap();
    let routes = routes();
    assert!(routes.len() > 50, "{routes:?}");
    let shown = documented(&doc);
    let missing: Vec<&String> = routes
        .iter()
        .filter(|r| {
            let (method, path) = r.split_once(' ').unwrap();
            let path = shape(path);
            // `any` routes are documented for any method, or by their path alone.
            let methods = if method == "ANY" {
                vec!["ANY", "GET", "POST"]
            } else {
                vec![method, "ANY"]
            };
            !methods
                .iter()
                .any(|m| shown.contains(&(m.to_string(), path.clone())))
        })
        .collect();
    assert!(
        missing.is_empty(),
        "docs/protocol.md does not document {missing:?}"
    );
}

#[test]
fn nothing_cites_a_document_the_repository_lacks() {
    let mut cites = Vec::new();
    let mut files = documents();
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                if !p.ends_with("node_modules") {
                    walk(&p, out);
                }
            } else if p.extension().is_some_and(|x| {
                ["rs", "lua", "sh", "mjs", "js", "yml", "yaml", "py"].contains(&x.to_str().unwrap())
            }) {
                out.push(p);
            }
        }
    }
    for dir in [
        "src",
        "tests",
        "scripts",
        "deploy",
        "web-demo",
        "loadgen/src",
    ] {
        walk(&root().join(dir), &mut files);
    }
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap_or_default();
        for (n, line) in text.lines().enumerate() {
            let bad = [
                "PROTOCOL §",
                "PROTOCOL.md",
                "ARCHITECTURE.md",
                "beside this repository",
            ]
            .iter()
            .any(|c| line.contains(c))
                || line.to_lowercase().contains("seed 00")
                || line.to_lowercase().contains("seeds 00");
            if bad && !f.ends_with("tests/docs.rs") {
                cites.push(format!("{}:{}: {}", f.display(), n + 1, line.trim()));
            }
        }
    }
    assert!(
        cites.is_empty(),
        "these cite documents a clone does not have (name what they were, or link docs/):\n{}",
        cites.join("\n")
    );
}

#[test]
fn the_readme_is_a_front_door() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let n = readme.lines().count();
    assert!(
        n <= 250,
        "README.md is {n} lines; reference material goes in docs/"
    );
    assert!(readme.contains("cargo run --release") && readme.contains("scripts/test.sh"));
}

#[test]
fn the_code_s_citations_of_the_documents_resolve() {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs" || x == "lua") {
                out.push(p);
            }
        }
    }
    let mut files = Vec::new();
    walk(&root().join("src"), &mut files);
    let mut broken = Vec::new();
    let mut cited = 0;
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        for (i, _) in text.match_indices("docs/") {
            let tail: String = text[i..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || "/._-#".contains(*c))
                .collect();
            let tail = tail.trim_end_matches(['.', ')']);
            let (file, anchor) = tail.split_once('#').unwrap_or((tail, ""));
            if !file.ends_with(".md") {
                continue;
            }
            cited += 1;
            let Ok(doc) = std::fs::read_to_string(root().join(file)) else {
                broken.push(format!("{}: {tail} (no such file)", f.display()));
                continue;
            };
            if !anchor.is_empty() && !anchors(&doc).contains(anchor) {
                broken.push(format!("{}: {tail} (no such heading)", f.display()));
            }
        }
    }
    assert!(cited >= 10, "{cited}");
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}
