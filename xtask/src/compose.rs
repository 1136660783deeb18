//! Layered experiment files: `extends`, profiles and `[grid]` expansion.
//!
//! An experiment file may name one base file or a list of them (`extends = "base.toml"` or
//! `extends = ["a.toml", "b.toml"]`, paths relative to the file). Bases are read first, in
//! order, and every later layer is deep-merged over them: tables merge key by key, any other
//! value (including arrays) is replaced. A profile file (`experiments/<table>/profiles/
//! <profile>.toml`) adds two more layers: `[defaults]` over every experiment of the table,
//! then `[runs.<id>]` over the experiment whose file stem is `<id>`.
//!
//! `[grid]` maps a key (dotted for nested keys: `"distill.temperature"`) to a list of values;
//! `reproduce` runs the cartesian product, and names each point by its axis values
//! (`seed-0`, `temperature-2_seed-0`). `train`/`distill` run one point and ignore the grid.
//!
//! Unknown keys anywhere are errors that name the key and the file that set it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use toml::{Table, Value};

/// A file's merged layers and the files they came from (bases first).
#[derive(Debug, Clone)]
pub struct Layered {
    /// The merged table.
    pub table: Table,
    /// Every file that contributed, in merge order.
    pub files: Vec<PathBuf>,
}

/// Read `path` and its `extends` chain, deep-merged (bases first).
pub fn load_layered(path: &Path) -> Result<Layered> {
    let mut stack = BTreeSet::new();
    let mut files = Vec::new();
    let table = load_rec(path, &mut stack, &mut files)?;
    Ok(Layered { table, files })
}

fn load_rec(path: &Path, stack: &mut BTreeSet<PathBuf>, files: &mut Vec<PathBuf>) -> Result<Table> {
    let canonical = path.canonicalize().with_context(|| format!("reading experiment file {}", path.display()))?;
    if !stack.insert(canonical.clone()) {
        bail!("experiment file {} extends itself (cycle through `extends`)", path.display());
    }
    let text = std::fs::read_to_string(path).with_context(|| format!("reading experiment file {}", path.display()))?;
    let mut own: Table = toml::from_str(&text).with_context(|| format!("in experiment file {}", path.display()))?;
    let bases = match own.remove("extends") {
        None => Vec::new(),
        Some(Value::String(s)) => vec![s],
        Some(Value::Array(a)) => a
            .into_iter()
            .map(|v| match v {
                Value::String(s) => Ok(s),
                other => bail!("in experiment file {}: extends entry {other} is not a path string", path.display()),
            })
            .collect::<Result<_>>()?,
        Some(other) => bail!("in experiment file {}: extends = {other} must be a path or a list of paths", path.display()),
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut merged = Table::new();
    for base in bases {
        let base_path = dir.join(&base);
        let table = load_rec(&base_path, stack, files)
            .with_context(|| format!("in experiment file {}: extends = {base:?}", path.display()))?;
        merge(&mut merged, table);
    }
    merge(&mut merged, own);
    files.push(path.to_path_buf());
    stack.remove(&canonical);
    Ok(merged)
}

/// Deep-merge `over` into `base`: tables merge recursively, other values are replaced.
pub fn merge(base: &mut Table, over: Table) {
    for (key, value) in over {
        match (base.get_mut(&key), value) {
            (Some(Value::Table(b)), Value::Table(o)) => merge(b, o),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

/// A profile: overrides for every experiment of a table, and per experiment.
#[derive(Debug, Clone, Default)]
pub struct Profile {
    /// Profile name (`smoke`, `cpu`, `paper`).
    pub name: String,
    /// The profile file (absent for a profile without overrides).
    pub file: Option<PathBuf>,
    /// `[defaults]`
    pub defaults: Table,
    /// `[runs.<id>]`
    pub runs: Table,
    /// `[evaluation]`: settings of the evaluation stage of `reproduce`.
    pub evaluation: Table,
}

impl Profile {
    /// Load `experiments/<table>/profiles/<name>.toml`; a missing file is an empty profile
    /// only for `paper` (the experiment files ARE the paper protocol).
    pub fn load(table_dir: &Path, name: &str) -> Result<Self> {
        let file = table_dir.join("profiles").join(format!("{name}.toml"));
        if !file.exists() {
            if name == "paper" {
                return Ok(Self { name: name.into(), ..Self::default() });
            }
            bail!("profile {name:?}: no file {}", file.display());
        }
        let text = std::fs::read_to_string(&file).with_context(|| format!("reading profile {}", file.display()))?;
        let mut t: Table = toml::from_str(&text).with_context(|| format!("in profile {}", file.display()))?;
        let mut take = |key: &str| -> Result<Table> {
            match t.remove(key) {
                None => Ok(Table::new()),
                Some(Value::Table(x)) => Ok(x),
                Some(other) => bail!("in profile {}: [{key}] must be a table, found {other}", file.display()),
            }
        };
        let (defaults, runs, evaluation) = (take("defaults")?, take("runs")?, take("evaluation")?);
        t.remove("description");
        if let Some(key) = t.keys().next() {
            bail!("in profile {}: unknown key {key:?} (expected description, [defaults], [runs.<id>], [evaluation])", file.display());
        }
        Ok(Self { name: name.into(), file: Some(file), defaults, runs, evaluation })
    }

    /// Apply the profile to the layered experiment of run id `id`.
    pub fn apply(&self, mut layered: Layered, id: &str) -> Result<Layered> {
        let file = || self.file.clone().unwrap_or_default();
        if !self.defaults.is_empty() {
            merge(&mut layered.table, self.defaults.clone());
            layered.files.push(file());
        }
        match self.runs.get(id) {
            None => {}
            Some(Value::Table(t)) => {
                merge(&mut layered.table, t.clone());
                layered.files.push(file());
            }
            Some(other) => bail!("in profile {}: runs.{id} must be a table, found {other}", file().display()),
        }
        Ok(layered)
    }
}

/// One point of a grid: its name (`seed-0`, `temperature-2_seed-0`) and its table (the
/// `[grid]` removed, the axis values set).
#[derive(Debug, Clone)]
pub struct GridPoint {
    /// Directory-safe name of the point.
    pub name: String,
    /// The experiment table at this point.
    pub table: Table,
}

/// Expand `[grid]` into its cartesian product (axes in key order; `seed` last so names read
/// `…_seed-N`). Without a grid, one point named by the table's `seed` (default 0).
pub fn expand_grid(mut table: Table, origin: &str) -> Result<Vec<GridPoint>> {
    let grid = match table.remove("grid") {
        None => Table::new(),
        Some(Value::Table(g)) => g,
        Some(other) => bail!("{origin}: [grid] must be a table, found {other}"),
    };
    let mut axes: Vec<(String, Vec<Value>)> = Vec::new();
    for (key, values) in grid {
        let Value::Array(values) = values else { bail!("{origin}: grid.{key} must be a list of values") };
        if values.is_empty() {
            bail!("{origin}: grid.{key} is an empty list");
        }
        axes.push((key, values));
    }
    axes.sort_by_key(|(k, _)| (k == "seed", k.clone()));
    if !axes.iter().any(|(k, _)| k == "seed") {
        let seed = table.get("seed").cloned().unwrap_or(Value::Integer(0));
        axes.push(("seed".into(), vec![seed]));
    }
    let mut points = vec![GridPoint { name: String::new(), table }];
    for (key, values) in axes {
        let mut next = Vec::with_capacity(points.len() * values.len());
        for p in &points {
            for v in &values {
                let mut table = p.table.clone();
                set_dotted(&mut table, &key, v.clone()).with_context(|| format!("{origin}: grid.{key}"))?;
                let short = key.rsplit('.').next().unwrap_or(&key);
                let label = format!("{short}-{}", value_label(v));
                let name = if p.name.is_empty() { label } else { format!("{}_{label}", p.name) };
                next.push(GridPoint { name, table });
            }
        }
        points = next;
    }
    Ok(points)
}

fn value_label(v: &Value) -> String {
    let raw = match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    raw.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' { c } else { '_' }).collect()
}

fn set_dotted(table: &mut Table, key: &str, value: Value) -> Result<()> {
    let mut parts = key.split('.').peekable();
    let mut cur = table;
    while let Some(part) = parts.next() {
        if parts.peek().is_none() {
            cur.insert(part.to_string(), value);
            return Ok(());
        }
        let entry = cur.entry(part.to_string()).or_insert_with(|| Value::Table(Table::new()));
        cur = match entry {
            Value::Table(t) => t,
            _ => bail!("{part} is not a table"),
        };
    }
    Ok(())
}

/// Deserialize a merged table into `T`; an unknown-key error names the key AND the file(s)
/// of the layer stack that set it.
pub fn deserialize<T: serde::de::DeserializeOwned>(layered: &Layered, what: &str) -> Result<T> {
    match T::deserialize(toml::Value::Table(layered.table.clone())) {
        Ok(v) => Ok(v),
        Err(e) => {
            let msg = e.to_string();
            let key = msg.split('`').nth(1).map(str::to_string);
            let culprits: Vec<String> = match &key {
                Some(k) if msg.contains("unknown field") => layered
                    .files
                    .iter()
                    .filter(|f| file_sets_key(f, k))
                    .map(|f| f.display().to_string())
                    .collect(),
                _ => Vec::new(),
            };
            let files: Vec<String> = layered.files.iter().map(|f| f.display().to_string()).collect();
            if culprits.is_empty() {
                bail!("{what} ({}): {msg}", files.join(" + "))
            } else {
                bail!("{what}: key `{}` set in {}: {msg}", key.unwrap_or_default(), culprits.join(", "))
            }
        }
    }
}

fn file_sets_key(file: &Path, key: &str) -> bool {
    fn walk(t: &Table, key: &str) -> bool {
        t.iter().any(|(k, v)| k == key || matches!(v, Value::Table(inner) if walk(inner, key)))
    }
    std::fs::read_to_string(file).ok().and_then(|s| toml::from_str::<Table>(&s).ok()).is_some_and(|t| walk(&t, key))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("distillery-compose-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("profiles")).unwrap();
        d
    }

    #[test]
    fn extends_chain_merges_deeply_and_later_layers_win() {
        let d = dir("extends");
        std::fs::write(d.join("base.toml"), "seed = 1\n[optim]\nlr = 0.1\nepochs = 200\n[model]\narch = \"resnet32\"\n").unwrap();
        std::fs::write(d.join("mid.toml"), "extends = \"base.toml\"\n[optim]\nepochs = 10\n").unwrap();
        std::fs::write(d.join("top.toml"), "extends = [\"mid.toml\"]\nname = \"x\"\n[optim]\nlr = 0.05\n").unwrap();
        let l = load_layered(&d.join("top.toml")).unwrap();
        let optim = l.table["optim"].as_table().unwrap();
        assert_eq!(optim["lr"].as_float(), Some(0.05));
        assert_eq!(optim["epochs"].as_integer(), Some(10));
        assert_eq!(l.table["model"]["arch"].as_str(), Some("resnet32"));
        assert_eq!(l.table["seed"].as_integer(), Some(1));
        assert!(!l.table.contains_key("extends"));
        assert_eq!(l.files.len(), 3);
        assert!(l.files[0].ends_with("base.toml") && l.files[2].ends_with("top.toml"));
    }

    #[test]
    fn extends_cycle_is_an_error_naming_the_file() {
        let d = dir("cycle");
        std::fs::write(d.join("a.toml"), "extends = \"b.toml\"\n").unwrap();
        std::fs::write(d.join("b.toml"), "extends = \"a.toml\"\n").unwrap();
        let err = format!("{:#}", load_layered(&d.join("a.toml")).unwrap_err());
        assert!(err.contains("cycle") && err.contains("a.toml"), "{err}");
    }

    #[test]
    fn profile_defaults_then_run_overrides() {
        let d = dir("profile");
        std::fs::write(d.join("kd.toml"), "name = \"kd\"\n[optim]\nlr = 0.1\nepochs = 200\n").unwrap();
        std::fs::write(
            d.join("profiles/cpu.toml"),
            "description = \"x\"\n[defaults.optim]\nepochs = 3\n[runs.kd.optim]\nlr = 0.01\n[runs.other.optim]\nlr = 9.0\n",
        )
        .unwrap();
        let p = Profile::load(&d, "cpu").unwrap();
        let l = p.apply(load_layered(&d.join("kd.toml")).unwrap(), "kd").unwrap();
        assert_eq!(l.table["optim"]["epochs"].as_integer(), Some(3));
        assert_eq!(l.table["optim"]["lr"].as_float(), Some(0.01));
        std::fs::write(d.join("profiles/bad.toml"), "[default]\n").unwrap();
        let err = format!("{:#}", Profile::load(&d, "bad").unwrap_err());
        assert!(err.contains("bad.toml") && err.contains("\"default\""), "{err}");
        assert!(Profile::load(&d, "paper").unwrap().defaults.is_empty());
        assert!(Profile::load(&d, "nope").is_err());
    }

    #[test]
    fn grid_is_a_cartesian_product_with_seed_last_in_names() {
        let t: Table = toml::from_str(
            "name = \"kd\"\n[grid]\nseed = [0, 1]\n\"distill.temperature\" = [2.0, 4.0]\n[distill]\nmethod = \"kd\"\n",
        )
        .unwrap();
        let pts = expand_grid(t, "kd.toml").unwrap();
        let names: Vec<_> = pts.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["temperature-2.0_seed-0", "temperature-2.0_seed-1", "temperature-4.0_seed-0", "temperature-4.0_seed-1"]);
        assert_eq!(pts[3].table["seed"].as_integer(), Some(1));
        assert_eq!(pts[3].table["distill"]["temperature"].as_float(), Some(4.0));
        assert_eq!(pts[3].table["distill"]["method"].as_str(), Some("kd"));
        assert!(!pts[0].table.contains_key("grid"));
        // No grid: one point named by the seed.
        let one = expand_grid(toml::from_str("seed = 7").unwrap(), "x").unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].name, "seed-7");
        assert!(expand_grid(toml::from_str("[grid]\nseed = []").unwrap(), "x").is_err());
    }

    #[test]
    fn unknown_key_error_names_the_key_and_the_file_that_set_it() {
        #[derive(serde::Deserialize, Debug)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Optim {
            lr: f64,
        }
        #[derive(serde::Deserialize, Debug)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Exp {
            optim: Optim,
        }
        let d = dir("unknown");
        std::fs::write(d.join("base.toml"), "[optim]\nlr = 0.1\n").unwrap();
        std::fs::write(d.join("row.toml"), "extends = \"base.toml\"\n[optim]\nlrr = 0.2\n").unwrap();
        let l = load_layered(&d.join("row.toml")).unwrap();
        let err = format!("{:#}", deserialize::<Exp>(&l, "experiment").unwrap_err());
        assert!(err.contains("lrr") && err.contains("row.toml") && !err.contains("base.toml,"), "{err}");
    }
}
