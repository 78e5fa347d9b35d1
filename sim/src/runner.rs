//! `atenex sim run`: scenarios over seeds, one line each, the first failing seed with the command
//! that reproduces it, and a readable diff when a snapshot differs.

use crate::scenario::Scenario;
use crate::{broker, check, model, render};
use atenex_kafka::KafkaConfig;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// How one scenario went.
#[derive(Debug)]
pub struct Report {
    pub file: PathBuf,
    pub seeds: u64,
    pub records: usize,
    pub seconds: f64,
    /// The first failure: the seed and what went wrong.
    pub failure: Option<(u64, Vec<String>)>,
}

/// The reviewed snapshot of `file`, if there is one: `<dir>/snapshots/<stem>.snap` (insta's
/// format: a header between `---` lines, then the body).
pub fn snapshot_of(file: &Path) -> Option<String> {
    let path = file
        .parent()?
        .join("snapshots")
        .join(format!("{}.snap", file.file_stem()?.to_str()?));
    let text = std::fs::read_to_string(path).ok()?;
    let body = text.splitn(3, "---\n").nth(2)?;
    Some(body.to_owned())
}

/// A line diff: `-` expected, `+` got.
pub fn diff(expected: &str, got: &str) -> String {
    similar::TextDiff::from_lines(expected, got)
        .unified_diff()
        .context_radius(2)
        .header("snapshot (reviewed)", "this run")
        .to_string()
}

/// Which driver runs a scenario.
#[derive(Debug, Clone)]
pub enum Driver {
    /// Virtual time, the cores in memory.
    Model,
    /// The real broker at this address and the real jobs; each run is also compared with the
    /// model's.
    Broker(KafkaConfig),
}

/// Loads every scenario file first, so that a mistake in any of them stops the run before
/// anything runs.
pub fn load_all(files: &[PathBuf]) -> anyhow::Result<Vec<(PathBuf, Scenario)>> {
    files
        .iter()
        .map(|f| Ok((f.clone(), Scenario::load(f)?)))
        .collect()
}

/// The seeds `atenex sim run --seeds n` explores: `n` (at least one) from the scenario's own.
pub fn seeds_from(own: u64, n: u64) -> Vec<u64> {
    (0..n.max(1)).map(|i| own.wrapping_add(i)).collect()
}

/// Runs the scenario of `file` with `seeds` (the scenario's own seed when empty); compares the
/// snapshot for the scenario's own seed.
pub async fn run_file(
    file: &Path,
    scenario: &Scenario,
    seeds: &[u64],
    driver: &Driver,
) -> anyhow::Result<Report> {
    let own = scenario.seed();
    let seeds: Vec<u64> = if seeds.is_empty() {
        vec![own]
    } else {
        seeds.to_vec()
    };
    let started = Instant::now();
    let mut records = 0;
    let mut failure = None;
    for &seed in &seeds {
        let outcome = match driver {
            Driver::Model => model::run(scenario, seed)?,
            Driver::Broker(kafka) => broker::run(scenario, seed, kafka).await?,
        };
        records += outcome.log.len();
        let mut problems = check::check(&outcome);
        if let Driver::Broker(_) = driver {
            let expected = render::render(&model::run(scenario, seed)?);
            let got = render::render(&outcome);
            if got != expected {
                problems.push(format!(
                    "the broker driver differs from the model driver:\n{}",
                    diff(&expected, &got)
                ));
            }
        }
        if seed == own
            && let Some(expected) = snapshot_of(file)
        {
            let got = render::render(&outcome);
            if got.trim_end() != expected.trim_end() {
                problems.push(format!("the snapshot differs:\n{}", diff(&expected, &got)));
            }
        }
        if !problems.is_empty() {
            // What the seed decided, to read the failure by.
            let (log, _) = crate::generate::full_log(scenario, seed)?;
            let plan = crate::faults::plan(scenario, seed, log.len());
            problems.insert(0, describe(&plan, log.len()));
            failure = Some((seed, problems));
            break;
        }
    }
    Ok(Report {
        file: file.to_owned(),
        seeds: seeds.len() as u64,
        records,
        seconds: started.elapsed().as_secs_f64(),
        failure,
    })
}

/// A seed's fault plan in words.
pub fn describe(plan: &crate::faults::Plan, records: usize) -> String {
    let list = |v: &[usize]| {
        if v.is_empty() {
            "none".to_owned()
        } else {
            v.iter()
                .map(|s| format!("#{s}"))
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    let landing: Vec<String> = plan
        .landing
        .iter()
        .map(|(s, e)| format!("#{s} (after {e} more filesystem effects)"))
        .collect();
    format!(
        "this seed: {records} records; analytics crashes before records {}; landing crashes before records {}; broker restarts before records {}; analytics freezes before records {}, instances joining before {}; landing freezes before records {}, instances joining before {}",
        list(&plan.analytics),
        if landing.is_empty() {
            "none".to_owned()
        } else {
            landing.join(", ")
        },
        list(&plan.broker),
        list(&plan.analytics_freezes),
        list(&plan.analytics_joins),
        list(&plan.landing_freezes),
        list(&plan.landing_joins)
    )
}

/// The scenario files named: files as they are, directories as their `*.toml`.
pub fn expand(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(p)?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.extension().is_some_and(|e| e == "toml"))
                .collect();
            files.sort();
            out.extend(files);
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}
