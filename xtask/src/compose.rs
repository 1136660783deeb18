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
//!
//! Sizes are bounded before any work: an `extends` graph contributes at most
//! [`MAX_LAYERS`] files (repeated bases count each time, so a chain of files that each
//! extend the next one twice is an error rather than 2^n reads), and a grid has at most
//! [`MAX_GRID_POINTS`] points.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use toml::{Table, Value};

/// Most files one experiment's `extends` graph may contribute (counting repeats).
pub const MAX_LAYERS: usize = 64;
/// Most points a `[grid]` may expand to (each point is a training run).
pub const MAX_GRID_POINTS: usize = 4096;

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
    if files.len() + stack.len() >= MAX_LAYERS {
        bail!(
            "experiment file {}: its `extends` graph has more than {MAX_LAYERS} layers (bases \
             repeated through several paths count each time)",
            path.display()
        );
    }
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
    let count = axes.iter().try_fold(1usize, |n, (_, v)| n.checked_mul(v.len()));
    if count.is_none_or(|n| n > MAX_GRID_POINTS) {
        let sizes: Vec<String> = axes.iter().map(|(k, v)| format!("{k}: {}", v.len())).collect();
        bail!("{origin}: [grid] has more than {MAX_GRID_POINTS} points ({})", sizes.join(" x "));
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

    // Fuzzing (helpers and case counts: `crate::npy::fuzz`).

    use crate::npy::fuzz;
    use proptest::prelude::*;
    use proptest::sample::Index;

    const BASE: &str = "seed = 1\ndescription = \"base\"\n[optim]\nlr = 0.1\nepochs = 200\nmilestones = [100, 150]\n[model]\narch = \"resnet32\"\n";
    const TOP: &str = "extends = [\"base.toml\"]\nname = \"kd\"\n[optim]\nlr = 0.05\n[grid]\nseed = [0, 1]\n\"distill.temperature\" = [2.0, 4.0]\n";
    const PROFILE: &str = "description = \"x\"\n[defaults.optim]\nepochs = 3\n[runs.top.optim]\nlr = 0.01\n[evaluation]\nood = [\"svhn\"]\n";

    /// Which of the three files is damaged, and how: blind damage, or random bytes.
    #[derive(Debug, Clone)]
    struct ComposeCase {
        target: usize,
        damage: fuzz::Damage,
        random: Option<Vec<u8>>,
    }

    fn compose_case() -> impl Strategy<Value = ComposeCase> {
        (0usize..3, fuzz::damage(), prop::option::weighted(0.2, prop::collection::vec(any::<u8>(), 0..64)))
            .prop_map(|(target, damage, random)| ComposeCase { target, damage, random })
    }

    /// A damaged experiment, base or profile: loading, applying the profile and expanding the
    /// grid return, and an error names the damaged file.
    #[test]
    fn fuzz_compose_damaged_files() {
        let d = dir("fuzz-damaged");
        let files = [d.join("base.toml"), d.join("top.toml"), d.join("profiles/cpu.toml")];
        fuzz::runner(512)
            .run(&compose_case(), |c| {
                for (f, text) in files.iter().zip([BASE, TOP, PROFILE]) {
                    std::fs::write(f, text).unwrap();
                }
                let mut bytes = c.random.clone().unwrap_or_else(|| [BASE, TOP, PROFILE][c.target].as_bytes().to_vec());
                c.damage.apply(&mut bytes);
                let target = &files[c.target];
                std::fs::write(target, &bytes).unwrap();
                let layered = load_layered(&files[1]);
                let profile = Profile::load(&d, "cpu");
                match c.target {
                    2 => fuzz::names_file(&profile, target)?,
                    _ => fuzz::names_file(&layered, target)?,
                }
                if let (Ok(l), Ok(p)) = (layered, profile) {
                    prop_assert!(l.files.len() <= MAX_LAYERS);
                    let origin = files[1].display().to_string();
                    if let Ok(l) = p.apply(l, "top") {
                        let grid = expand_grid(l.table, &origin);
                        fuzz::names_file(&grid, &files[1])?;
                    }
                }
                Ok(())
            })
            .unwrap();
        std::fs::remove_dir_all(&d).unwrap();
    }

    /// Random `extends` graphs of up to six files (entries may repeat, point back, or name a
    /// missing file), and ladders (each file extends the next one 2-4 times: repeat^depth
    /// layers): a cycle or a missing base is an error naming the files involved, a graph past
    /// [`MAX_LAYERS`] is an error, and anything else loads every layer.
    #[test]
    fn fuzz_extends_graphs() {
        let d = dir("fuzz-extends");
        let random = (1usize..=6).prop_flat_map(|n| {
            let edges = prop::collection::vec(any::<Index>(), 0..=3).prop_map(move |e| {
                e.iter().map(|ix| ix.index(n + 1)).collect::<Vec<usize>>()
            });
            (Just(n), prop::collection::vec((edges, any::<bool>()), n))
        });
        let ladder = (2usize..=6, 2usize..=4).prop_map(|(n, repeat)| {
            let edges = (0..n).map(|i| (if i + 1 < n { vec![i + 1; repeat] } else { Vec::new() }, false));
            (n, edges.collect::<Vec<_>>())
        });
        let graph = prop_oneof![random, ladder];
        fuzz::runner(256)
            .run(&graph, |(n, edges)| {
                for i in 0..=6 {
                    let _ = std::fs::remove_file(d.join(format!("f{i}.toml")));
                }
                // Node n stands for a file that does not exist.
                let name = |i: usize| format!("f{i}.toml");
                let targets: Vec<Vec<usize>> = edges.iter().map(|(e, _)| e.clone()).collect();
                for (i, ((_, as_string), t)) in edges.iter().zip(&targets).enumerate() {
                    let list: Vec<String> = t.iter().map(|&j| format!("{:?}", name(j))).collect();
                    let extends = match (t.len(), as_string) {
                        (0, _) => String::new(),
                        (1, true) => format!("extends = {}\n", list[0]),
                        _ => format!("extends = [{}]\n", list.join(", ")),
                    };
                    std::fs::write(d.join(name(i)), format!("{extends}[layer]\nf{i} = {i}\n")).unwrap();
                }
                // What the graph reachable from f0 holds: a cycle, a missing file, its layers.
                fn walk(i: usize, n: usize, t: &[Vec<usize>], on: &mut Vec<bool>, cycle: &mut bool, missing: &mut bool) -> u128 {
                    if i == n {
                        *missing = true;
                        return 0;
                    }
                    if on[i] {
                        *cycle = true;
                        return 0;
                    }
                    on[i] = true;
                    let below: u128 = t[i].iter().map(|&j| walk(j, n, t, on, cycle, missing)).sum();
                    on[i] = false;
                    1 + below
                }
                let (mut cycle, mut missing) = (false, false);
                let layers = walk(0, n, &targets, &mut vec![false; n], &mut cycle, &mut missing);
                let root = d.join(name(0));
                let result = load_layered(&root);
                fuzz::names_file(&result, &root)?;
                match &result {
                    Ok(l) => {
                        prop_assert!(!cycle && !missing, "cycle {cycle} / missing {missing} accepted");
                        prop_assert!(layers <= MAX_LAYERS as u128, "{layers} layers accepted");
                        prop_assert_eq!(l.files.len() as u128, layers);
                    }
                    Err(e) => {
                        let msg = format!("{e:#}");
                        prop_assert!(cycle || missing || layers > MAX_LAYERS as u128, "valid graph refused: {msg}");
                        if !cycle && layers <= MAX_LAYERS as u128 {
                            prop_assert!(msg.contains(&name(n)), "the missing file is not named: {msg}");
                        }
                    }
                }
                Ok(())
            })
            .unwrap();
        std::fs::remove_dir_all(&d).unwrap();
    }

    /// Random grids, and large ones: up to [`MAX_GRID_POINTS`] points expand fully (or fail on
    /// a key that is not a table, naming the file); more are an error before any expansion.
    #[test]
    fn fuzz_grid_sizes() {
        let key = prop::sample::select(vec!["seed", "lr", "optim.lr", "optim", "distill.temperature", "a.b.c", "a"]);
        let random = prop::collection::btree_map(key, 1usize..=10, 0..=4);
        // Four compatible axes of 7-10 values: 2,401 to 10,000 points, either side of the limit.
        let large = prop::collection::vec(7usize..=10, 4).prop_map(|sizes| {
            ["seed", "lr", "distill.temperature", "a.b.c"].into_iter().zip(sizes).collect()
        });
        let axes: BoxedStrategy<std::collections::BTreeMap<&str, usize>> = prop_oneof![random, large].boxed();
        fuzz::runner(256)
            .run(&axes, |axes| {
                let mut grid = Table::new();
                for (k, len) in &axes {
                    grid.insert(k.to_string(), Value::Array((0..*len as i64).map(Value::Integer).collect()));
                }
                let mut table = Table::new();
                table.insert("grid".into(), Value::Table(grid));
                let origin = "experiments/fuzz/row.toml";
                let count: usize = axes.values().product();
                match expand_grid(table, origin) {
                    Ok(points) => {
                        prop_assert!(count <= MAX_GRID_POINTS, "{count} points expanded");
                        prop_assert_eq!(points.len(), count);
                    }
                    Err(e) => {
                        let msg = format!("{e:#}");
                        prop_assert!(msg.contains(origin), "{msg}");
                        prop_assert!(count > MAX_GRID_POINTS || msg.contains("not a table"), "{msg}");
                    }
                }
                Ok(())
            })
            .unwrap();
    }
}
