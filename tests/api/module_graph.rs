//! The crate's top-level modules form layers: no module reaches, through any chain of
//! `crate::` paths, back to itself; `billing` uses nothing of the crate and `db` nothing but
//! `billing` (and `private_files`, a leaf of file-permission helpers). Test code (`#[cfg(test)]`
//! modules at the end of a file) is not part of the graph.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::Path,
};

type Graph = BTreeMap<String, BTreeSet<String>>;

/// Source without comments and without its trailing test module.
fn code(src: &str) -> String {
    let src = src.split("#[cfg(test)]").next().unwrap_or_default();
    src.lines()
        .map(|l| l.split("//").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n")
}

fn ident_at(s: &str) -> Option<&str> {
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    (end > 0).then(|| &s[..end])
}

/// Every top-level module a piece of code names through `crate::`, including the first
/// segment of each path in a `crate::{a, b::c}` group.
fn uses(code: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (i, _) in code.match_indices("crate::") {
        let rest = &code[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let (mut depth, mut start) = (1, true);
            let mut j = 0;
            while depth > 0 && j < group.len() {
                let c = group[j..].chars().next().unwrap();
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 1 => start = true,
                    c if depth == 1 && start && (c.is_ascii_alphabetic() || c == '_') => {
                        let name = ident_at(&group[j..]).unwrap();
                        out.insert(name.to_string());
                        start = false;
                        j += name.len();
                        continue;
                    }
                    _ => {}
                }
                j += c.len_utf8();
            }
        } else if let Some(name) = ident_at(rest) {
            out.insert(name.to_string());
        }
    }
    out
}

fn collect(dir: &Path, module: Option<&str>, graph: &mut Graph) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_str().unwrap().to_string();
        let top = module.map_or(name.clone(), str::to_string);
        if path.is_dir() {
            collect(&path, Some(&top), graph);
        } else if path.extension().is_some_and(|e| e == "rs") {
            if module.is_none() && (name == "lib" || name == "main") {
                continue;
            }
            let src = std::fs::read_to_string(&path).unwrap();
            let mut deps = uses(&code(&src));
            deps.remove(&top);
            graph.entry(top).or_default().extend(deps);
        }
    }
}

fn graph(root: &Path) -> Graph {
    let mut g = Graph::new();
    collect(root, None, &mut g);
    g
}

/// A chain of modules that leads from one back to itself, if there is one.
fn cycle(g: &Graph) -> Option<Vec<String>> {
    fn visit(
        g: &Graph,
        m: &str,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|p| p == m) {
            let mut c = path[at..].to_vec();
            c.push(m.to_string());
            return Some(c);
        }
        if done.contains(m) {
            return None;
        }
        path.push(m.to_string());
        for d in g.get(m).into_iter().flatten() {
            if let Some(c) = visit(g, d, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(m.to_string());
        None
    }
    let mut done = BTreeSet::new();
    g.keys()
        .find_map(|m| visit(g, m, &mut Vec::new(), &mut done))
}

#[test]
fn the_module_graph_has_no_cycle_and_keeps_its_bottom_layers_pure() {
    let g = graph(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/src")));
    assert!(
        g.len() > 10 && g.contains_key("billing") && g.contains_key("http"),
        "{g:?}"
    );
    if let Some(c) = cycle(&g) {
        panic!("module cycle: {}", c.join(" → "));
    }
    let allowed = |m: &str| -> &[&str] {
        match m {
            "billing" | "private_files" | "telemetry" | "metrics" => &[],
            "db" => &["billing", "private_files"],
            _ => unreachable!(),
        }
    };
    for m in ["billing", "db", "private_files", "telemetry", "metrics"] {
        let extra: Vec<_> = g[m]
            .iter()
            .filter(|d| !allowed(m).contains(&d.as_str()))
            .collect();
        assert!(extra.is_empty(), "{m} must not use {extra:?}");
    }
}

/// The names of HTTP types a piece of code uses: axum's, hyper's, the `http` crate's, or the
/// crate's own HTTP edge.
fn http_names(code: &str) -> Vec<&'static str> {
    [
        "axum",
        "hyper",
        "http::",
        "HeaderMap",
        "StatusCode",
        "crate::http",
        "crate::state",
    ]
    .into_iter()
    .filter(|n| code.contains(n))
    .collect()
}

#[test]
fn the_service_layer_names_no_http_type() {
    let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/src/services"));
    let mut checked = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let src = std::fs::read_to_string(&path).unwrap();
        let found = http_names(&code(&src));
        assert!(found.is_empty(), "{} names {found:?}", path.display());
        checked += 1;
    }
    assert!(checked >= 4, "the service files were read");
    let g = graph(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/src")));
    assert!(
        !g["services"].contains("http") && !g["services"].contains("state"),
        "services uses {:?}",
        g["services"]
    );
}

#[test]
fn the_check_finds_paths_in_groups_and_cycles() {
    assert_eq!(
        http_names("use axum::http::request::Parts;"),
        ["axum", "http::"]
    );
    assert_eq!(http_names("fn f(h: &HeaderMap)"), ["HeaderMap"]);
    assert!(http_names("use crate::{db::Db, billing::Catalog};").is_empty());
    let names = uses(&code(
        "use crate::{a::X, b, c::{d::E, f}};\nlet x = crate::g::h(); // crate::z\n#[cfg(test)]\nuse crate::t;",
    ));
    assert_eq!(
        names.into_iter().collect::<Vec<_>>(),
        ["a", "b", "c", "g"],
        "inner paths, comments and test code are not top-level uses"
    );
    let g: Graph = [("a", "b"), ("b", "c"), ("c", "a"), ("d", "a")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), BTreeSet::from([v.to_string()])))
        .collect();
    assert_eq!(cycle(&g).unwrap(), ["a", "b", "c", "a"]);
    let mut acyclic = g.clone();
    acyclic.remove("c");
    assert_eq!(cycle(&acyclic), None);
}

/// The sibling modules one folder's file names, through `super::` or the folder's full path
/// (`crate::services::…`): each path's first segment when it is a sibling, or the sibling a
/// name the folder's `mod.rs` re-exports comes from (`super::Inbox` is `inbox`'s).
fn sibling_uses(
    code: &str,
    folder: &str,
    siblings: &BTreeSet<String>,
    reexports: &BTreeMap<String, String>,
) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let full = format!("crate::{folder}::");
    for prefix in ["super::", full.as_str()] {
        let mut rest = code;
        while let Some(i) = rest.find(prefix) {
            // `crate::services::` also contains nothing `super::` would; skip `super::super::`.
            let after = &rest[i + prefix.len()..];
            rest = after;
            let names = uses(&format!("crate::{after}"));
            for n in names {
                if siblings.contains(&n) {
                    out.insert(n);
                } else if let Some(m) = reexports.get(&n) {
                    out.insert(m.clone());
                }
            }
        }
    }
    out
}

/// `pub use child::{A, B};` / `pub use child::A;` in a folder's `mod.rs`: name → child.
fn reexports_of(mod_rs: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for stmt in code(mod_rs).split(';') {
        let Some(path) = stmt.trim().strip_prefix("pub use ") else {
            continue;
        };
        let Some((child, names)) = path.split_once("::") else {
            continue;
        };
        let names = names.trim().trim_start_matches('{').trim_end_matches('}');
        for n in names.split(',') {
            let last = n.trim().rsplit("::").next().unwrap_or_default();
            let last = last.split(" as ").last().unwrap_or_default().trim();
            if !last.is_empty() {
                out.insert(last.to_string(), child.trim().to_string());
            }
        }
    }
    out
}

/// The graph among the modules of one folder.
fn folder_graph(dir: &Path, folder: &str) -> Graph {
    let children: Vec<(String, std::path::PathBuf)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir() || p.extension().is_some_and(|e| e == "rs"))
        .map(|p| (p.file_stem().unwrap().to_str().unwrap().to_string(), p))
        .filter(|(n, _)| n != "mod")
        .collect();
    let siblings: BTreeSet<String> = children.iter().map(|(n, _)| n.clone()).collect();
    let reexports = std::fs::read_to_string(dir.join("mod.rs"))
        .map(|s| reexports_of(&s))
        .unwrap_or_default();
    let mut g = Graph::new();
    for (name, path) in children {
        let files: Vec<std::path::PathBuf> = if path.is_dir() {
            std::fs::read_dir(&path)
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|e| e == "rs"))
                .collect()
        } else {
            vec![path]
        };
        let mut deps = BTreeSet::new();
        for f in files {
            let src = std::fs::read_to_string(&f).unwrap();
            deps.extend(sibling_uses(&code(&src), folder, &siblings, &reexports));
        }
        deps.remove(&name);
        g.insert(name, deps);
    }
    g
}

#[test]
fn no_folder_has_a_cycle_among_its_sibling_modules() {
    let src = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/src"));
    let mut folders = 0;
    for entry in std::fs::read_dir(src).unwrap() {
        let dir = entry.unwrap().path();
        if !dir.is_dir() {
            continue;
        }
        let folder = dir.file_name().unwrap().to_str().unwrap().to_string();
        let g = folder_graph(&dir, &folder);
        if let Some(c) = cycle(&g) {
            panic!("module cycle in src/{folder}/: {}", c.join(" → "));
        }
        folders += 1;
    }
    assert!(folders >= 8, "every folder was read ({folders})");
}

#[test]
fn the_sibling_check_reads_super_paths_groups_and_reexports() {
    let siblings: BTreeSet<String> = ["console", "reconcile", "inbox", "usage"]
        .map(String::from)
        .into();
    let reexports =
        reexports_of("pub mod inbox;\npub use inbox::{Inbox, InboxError};\npub use usage::Usage;");
    assert_eq!(reexports.get("Inbox").map(String::as_str), Some("inbox"));
    assert_eq!(reexports.get("Usage").map(String::as_str), Some("usage"));
    let found = sibling_uses(
        &code("use super::{reconcile::ReconcileError, Inbox, InboxError};\nlet j = crate::services::usage::Payer;\n// super::console"),
        "services",
        &siblings,
        &reexports,
    );
    assert_eq!(
        found.into_iter().collect::<Vec<_>>(),
        ["inbox", "reconcile", "usage"]
    );
}
