//! The shape of the code, checked: files stay small, layers import only from below (no import
//! cycle between the modules of `src/`), every Lua script takes its keys in `KEYS[]` and
//! builds none, and only `src/store/redis/` talks to Redis.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Longest file under `src/`, its unit tests aside.
const MAX_LINES: usize = 420;

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn files(dir: &Path, ext: &str, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            files(&p, ext, out);
        } else if p.extension().is_some_and(|e| e == ext) {
            out.push(p);
        }
    }
}

fn rust_files() -> Vec<(Vec<String>, String)> {
    let mut paths = Vec::new();
    files(&src(), "rs", &mut paths);
    paths
        .into_iter()
        .filter_map(|p| {
            let rel = p.strip_prefix(src()).unwrap().with_extension("");
            let mut module: Vec<String> = rel.iter().map(|c| c.to_string_lossy().into()).collect();
            if module.last().is_some_and(|m| m == "mod") {
                module.pop();
            }
            if module == ["lib"] || module == ["main"] {
                return None;
            }
            let text = std::fs::read_to_string(&p).unwrap();
            // Unit tests and comments say nothing about the layering.
            let code = match text.find("#[cfg(test)]\nmod tests") {
                Some(i) => &text[..i],
                None => &text,
            };
            let code: String = code
                .lines()
                .map(|l| l.split("//").next().unwrap_or(""))
                .collect::<Vec<_>>()
                .join("\n");
            Some((module, code))
        })
        .collect()
}

#[test]
fn no_source_file_is_long() {
    for (module, code) in rust_files() {
        let n = code.lines().count();
        assert!(n <= MAX_LINES, "src/{} has {n} lines", module.join("/"));
    }
    // The tests and the load generator: at most 450 lines a file (split by scenario family).
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for dir in ["tests", "loadgen/src"] {
        let mut paths = Vec::new();
        files(&root.join(dir), "rs", &mut paths);
        for p in paths
            .iter()
            .filter(|p| !p.to_string_lossy().contains("node_modules"))
        {
            let text = std::fs::read_to_string(p).unwrap();
            let code = text
                .split("#[cfg(test)]\nmod tests")
                .next()
                .unwrap_or(&text);
            let n = code.lines().count();
            assert!(n <= 450, "{} has {n} lines", p.display());
        }
    }
}

/// The modules each module refers to (`crate::…` and `super::…` paths), resolved to the
/// longest module path that exists.
fn references() -> BTreeMap<Vec<String>, BTreeSet<Vec<String>>> {
    let all = rust_files();
    let modules: BTreeSet<Vec<String>> = all.iter().map(|(m, _)| m.clone()).collect();
    let mut refs = BTreeMap::new();
    for (module, code) in &all {
        let mut found = BTreeSet::new();
        for (start, _) in code
            .match_indices("crate::")
            .chain(code.match_indices("super::"))
        {
            if code[..start].ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == ':') {
                continue;
            }
            let path: Vec<&str> = code[start..]
                .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                .next()
                .unwrap()
                .split("::")
                .filter(|s| !s.is_empty())
                .collect();
            let mut base: Vec<String> = Vec::new();
            let mut rest = &path[..];
            if rest[0] == "super" {
                base = module[..module.len() - 1].to_vec();
                rest = &rest[1..];
                while rest.first() == Some(&"super") {
                    base.pop();
                    rest = &rest[1..];
                }
            } else {
                rest = &rest[1..];
            }
            let full: Vec<String> = base
                .into_iter()
                .chain(rest.iter().map(|s| s.to_string()))
                .collect();
            if let Some(target) = (1..=full.len())
                .rev()
                .map(|n| full[..n].to_vec())
                .find(|m| modules.contains(m))
            {
                found.insert(target);
            }
        }
        refs.insert(module.clone(), found);
    }
    refs
}

/// A cycle among modules cut at `depth` path segments (a module and its own children aside).
fn cycle_at(depth: usize) -> Option<Vec<String>> {
    let mut graph: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    for (from, tos) in references() {
        for to in tos {
            let (a, b) = (
                from[..from.len().min(depth)].to_vec(),
                to[..to.len().min(depth)].to_vec(),
            );
            if a.starts_with(&b) || b.starts_with(&a) {
                continue;
            }
            graph.entry(a).or_default().insert(b);
        }
    }
    fn visit(
        n: &Vec<String>,
        graph: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
        stack: &mut Vec<Vec<String>>,
        done: &mut BTreeSet<Vec<String>>,
    ) -> Option<Vec<String>> {
        if let Some(i) = stack.iter().position(|s| s == n) {
            let mut cycle: Vec<String> = stack[i..].iter().map(|m| m.join("::")).collect();
            cycle.push(n.join("::"));
            return Some(cycle);
        }
        if !done.insert(n.clone()) {
            return None;
        }
        stack.push(n.clone());
        for next in graph.get(n).into_iter().flatten() {
            if let Some(c) = visit(next, graph, stack, done) {
                return Some(c);
            }
        }
        stack.pop();
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|n| visit(n, &graph, &mut Vec::new(), &mut done))
}

#[test]
fn no_import_cycle_between_modules() {
    for depth in 1..=3 {
        assert_eq!(cycle_at(depth), None, "an import cycle at depth {depth}");
    }
    let refs = references();
    let top = |m: &str| vec![m.to_string()];
    for below in ["domain", "store", "service", "realtime"] {
        for (module, tos) in &refs {
            if module[0] == below {
                assert!(
                    !tos.contains(&top("http")) && !tos.contains(&top("app")),
                    "src/{} reaches up into http or app",
                    module.join("/")
                );
            }
        }
    }
    for (module, tos) in &refs {
        if module[0] == "domain" {
            for to in tos {
                assert!(
                    ["domain", "time"].contains(&to[0].as_str()),
                    "the domain imports src/{}",
                    to.join("/")
                );
            }
        }
    }
}

#[test]
fn scripts_take_every_key_in_keys() {
    let mut scripts = Vec::new();
    files(&src().join("store/redis/scripts"), "lua", &mut scripts);
    assert!(scripts.len() >= 8);
    for path in scripts {
        let text = std::fs::read_to_string(&path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        assert!(text.contains("-- KEYS:"), "{name} does not say its KEYS");
        // Locals bound to KEYS entries.
        let mut key_vars = BTreeSet::new();
        for line in text.lines() {
            let Some(rest) = line.trim().strip_prefix("local ") else {
                continue;
            };
            let Some((names, values)) = rest.split_once('=') else {
                continue;
            };
            for (n, v) in names.split(',').zip(values.split("],")) {
                if v.trim().starts_with("KEYS[") {
                    key_vars.insert(n.trim().to_string());
                }
            }
        }
        for call in text.split("redis.call(").skip(1) {
            let mut args = call.split([',', ')']);
            let command = args.next().unwrap_or("").trim().trim_matches('\'');
            // Channels are not keys (a sharded one must share the keys' slot: `keys.rs`).
            if ["TIME", "PUBLISH", "SPUBLISH"].contains(&command) {
                continue;
            }
            let key = args.next().unwrap_or("").trim();
            assert!(
                key.starts_with("KEYS[") || key_vars.contains(key),
                "{name}: {command} on {key:?}, which is not one of KEYS"
            );
        }
    }
}

#[test]
fn only_the_redis_store_talks_to_redis() {
    for (module, code) in rust_files() {
        if module.starts_with(&["store".to_string(), "redis".to_string()]) {
            continue;
        }
        for line in code.lines().filter(|l| l.contains("redis::")) {
            let parses_a_url =
                module == ["config", "store"] && line.contains("redis::Client::open");
            let opens_the_store = module == ["store"] && line.contains("redis::RedisStore::start");
            // `afw-gateway backup`, `restore` and `cleanup` are the front of the Redis store's.
            let backs_it_up = module == ["backup"] && line.contains("crate::store::redis::");
            assert!(
                parses_a_url || opens_the_store || backs_it_up,
                "src/{} uses redis: {line}",
                module.join("/")
            );
        }
    }
}

/// Every store trait (`pub trait …Store` in `src/store/{service}.rs`) has its conformance file,
/// `tests/conformance/{service}.rs`, run against both stores: a service cannot land without
/// proving the memory store and Redis agree.
#[test]
fn every_store_trait_has_a_conformance_file() {
    let conformance = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance");
    let main = std::fs::read_to_string(conformance.join("main.rs")).unwrap();
    let mut traits = 0;
    for entry in std::fs::read_dir(src().join("store")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let Some(name) = text
            .lines()
            .find_map(|l| l.strip_prefix("pub trait ")?.split(':').next())
            .filter(|n| n.ends_with("Store"))
        else {
            continue;
        };
        traits += 1;
        let service = path.file_stem().unwrap().to_string_lossy();
        assert!(
            conformance.join(format!("{service}.rs")).exists(),
            "{name} (src/store/{service}.rs) has no tests/conformance/{service}.rs"
        );
        assert!(
            main.contains(&format!("mod {service};")),
            "tests/conformance/main.rs does not run {service}"
        );
        let case = std::fs::read_to_string(conformance.join(format!("{service}.rs"))).unwrap();
        assert!(
            case.contains("conformance!"),
            "tests/conformance/{service}.rs runs no case on both stores"
        );
    }
    assert!(traits >= 9, "found {traits} store traits");
}
