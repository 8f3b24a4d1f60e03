//! The store's modules form layers with no circle of imports: the engine
//! (write path, outbox, audit chain, SQL helpers) imports no capability;
//! capabilities (patients, users, record kinds) import the engine and not
//! each other; sync applies pulled pages to the capabilities; `mutation`
//! is the one place that knows them all; the facade and the use cases
//! (workstation, import, demo, open) sit on top. This test reads the
//! sources, so a new `use` that closes a circle fails here.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Module → the layer it belongs to (lower numbers may not import higher).
const LAYERS: &[(&str, u8)] = &[
    // The engine.
    ("error", 0),
    ("sql", 1),
    ("write", 2),
    ("audit", 3),
    // Capabilities.
    ("patients::rows", 4),
    ("users", 4),
    ("records", 4),
    ("patients::search", 5),
    ("patients", 6),
    ("patients::remote", 7),
    // Sync's store side, the dispatch of every change, the top.
    ("sync", 8),
    ("mutation", 9),
    ("backup", 10),
    ("open", 10),
    ("import", 10),
    ("demo", 10),
    ("workstation", 11),
    ("workstation_records", 12),
];

/// The engine's modules.
const ENGINE: [&str; 4] = ["error", "sql", "write", "audit"];

/// Names the crate root re-exports, and the module each comes from.
const REEXPORTS: &[(&str, &str)] = &[
    ("Actor", "write"),
    ("Change", "write"),
    ("Mutation", "mutation"),
    ("Workstation", "workstation"),
    ("StoreError", "error"),
    ("Result", "error"),
    ("search", "patients::search"),
];

/// Every module of `src` and the crate modules it names.
fn imports(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    let mut dirs = vec![src.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                files.push(p);
            }
        }
    }
    let name = |p: &Path| {
        let rel = p.strip_prefix(src).unwrap().with_extension("");
        let rel = rel.to_string_lossy().replace('/', "::");
        rel.strip_suffix("::mod").map(str::to_owned).unwrap_or(rel)
    };
    let modules: BTreeSet<String> = files
        .iter()
        .map(|p| name(p))
        .filter(|m| m != "lib")
        .collect();
    let mut out = BTreeMap::new();
    for p in &files {
        let m = name(p);
        if m == "lib" {
            continue;
        }
        let text: String = std::fs::read_to_string(p)
            .unwrap()
            .lines()
            .map(|l| l.split("//").next().unwrap_or(""))
            .collect::<Vec<_>>()
            .join("\n");
        let mut deps = BTreeSet::new();
        // `crate::a::b`, `crate::a`, and `use crate::{a, b::c}`.
        let mut paths: Vec<String> = Vec::new();
        for (i, _) in text.match_indices("crate::") {
            let rest = &text[i + "crate::".len()..];
            if let Some(group) = rest.strip_prefix('{') {
                let group = &group[..group.find('}').unwrap_or(group.len())];
                paths.extend(group.split(',').map(|s| s.trim().to_owned()));
            } else {
                let end = rest
                    .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                    .unwrap_or(rest.len());
                paths.push(rest[..end].to_owned());
            }
        }
        for path in paths {
            let parts: Vec<&str> = path.split("::").filter(|s| !s.is_empty()).collect();
            if let Some((_, module)) = REEXPORTS.iter().find(|(n, _)| parts.first() == Some(n)) {
                deps.insert((*module).to_owned());
                continue;
            }
            for n in (1..=parts.len().min(2)).rev() {
                let cand = parts[..n].join("::");
                if modules.contains(&cand) {
                    deps.insert(cand);
                    break;
                }
            }
        }
        deps.remove(&m);
        out.insert(m, deps);
    }
    out
}

#[test]
fn the_store_has_layers_and_no_circle_of_imports() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = imports(&src);
    let layer: BTreeMap<&str, u8> = LAYERS.iter().copied().collect();
    let mut problems = Vec::new();
    for (m, deps) in &graph {
        let Some(&mine) = layer.get(m.as_str()) else {
            problems.push(format!("{m} has no layer in this test: place it"));
            continue;
        };
        for d in deps {
            match layer.get(d.as_str()) {
                Some(&theirs) if theirs >= mine => {
                    problems.push(format!("{m} (layer {mine}) imports {d} (layer {theirs})"))
                }
                _ => {}
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // The engine names no capability at all.
    for engine in ENGINE {
        assert!(
            graph[engine]
                .iter()
                .all(|d| ["error", "sql", "write", "audit"].contains(&d.as_str())),
            "{engine} imports {:?}",
            graph[engine]
        );
    }
}
