//! Tabletop predictions: Monte Carlo over the `sim` model, before a drill is run.
//!
//! The main type is [`Prediction`], made by [`simulate`]. Each run drives the very [`StackModel`]
//! the `sim` environment uses (one model, not two that could drift apart), but jumps from one
//! change of the stack to the next instead of sampling probes, with the scenario compiled
//! once into a [`SimulationPlan`] and one model per thread reset between runs: no allocation per run.
//! Run `i` draws from a stream fixed by the master seed and `i` alone, and results are merged
//! in fixed-size chunks in run order, so a seed gives the same prediction on any thread count.
//!
//! What it predicts is the true recovery of the model (the stack serving every probed target
//! without shedding), not what probes at a given interval would measure; MTTD alone includes
//! the probe phase, because detection is a probe's doing.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use serde::Serialize;

use crate::dist::Dist;
use crate::env::sim::{ProbeReach, StackModel};
use crate::rng::Rng;
use crate::scenario::{Effect, EnvironmentSpec, Fault, Scenario};
use crate::score::TargetKind;

/// Runs merged together; fixed so that results do not depend on the thread count.
const CHUNK: usize = 4096;

/// Why a scenario cannot be simulated.
#[derive(Debug, thiserror::Error)]
pub enum SimulateError {
    /// Only `sim` scenarios have a model to simulate.
    #[error("{0}: only scenarios of environment `sim` can be simulated")]
    NotSim(String),
    /// A step has no duration to draw.
    #[error("{scenario}: step `{step}` has neither a budget nor a sim duration")]
    NoDuration {
        /// Scenario.
        scenario: String,
        /// Step.
        step: String,
    },
    /// No probe observes availability.
    #[error("{0}: no availability probe the model can answer, so there is no recovery to predict")]
    NoProbe(String),
}

/// A scenario compiled for fast repeated runs.
pub struct SimulationPlan {
    model: StackModel,
    fault: Fault,
    fault_end: f64,
    steps: Vec<(Dist, Effect, u32)>,
    targets: Vec<ProbeReach>,
    probe_interval: f64,
    horizon: f64,
}

impl SimulationPlan {
    /// Compiles a `sim` scenario.
    pub fn compile(s: &Scenario) -> Result<SimulationPlan, SimulateError> {
        let EnvironmentSpec::Sim(stack) = &s.environment else { return Err(SimulateError::NotSim(s.name.clone())) };
        let model = StackModel::new(stack.clone(), 0);
        let steps = s
            .steps
            .iter()
            .map(|st| {
                let dist = st
                    .sim_duration
                    .clone()
                    .ok_or_else(|| SimulateError::NoDuration { scenario: s.name.clone(), step: st.name.clone() })?;
                Ok((dist, st.sim_effect, st.sim_replicas))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let available: Vec<_> =
            s.availability_probes().filter_map(|(_, p)| model.target_of(&p.check).map(|t| (t, p))).collect();
        if available.is_empty() {
            return Err(SimulateError::NoProbe(s.name.clone()));
        }
        Ok(SimulationPlan {
            fault: s.fault.clone(),
            fault_end: s.fault.duration().map_or(f64::INFINITY, |d| d.as_secs_f64()),
            steps,
            targets: available.iter().map(|(t, _)| *t).collect(),
            probe_interval: available.iter().map(|(_, p)| p.interval.as_secs_f64()).fold(f64::INFINITY, f64::min),
            horizon: s.deadline.as_secs_f64(),
            model,
        })
    }
}

/// One simulated drill.
struct Run {
    /// `INFINITY` when not recovered by the deadline; 0 without impact.
    rto: f64,
    /// `None` without impact.
    mttd: Option<f64>,
    rpo: f64,
}

fn run_one(plan: &SimulationPlan, model: &mut StackModel, seed: u64, durations: &mut [f64]) -> Run {
    model.reset(seed);
    let mut phase = Rng::derive(seed, 2);
    model.inject(&plan.fault);
    let healthy_now = |m: &StackModel| plan.targets.iter().all(|t| m.healthy(*t));
    let mut healthy = healthy_now(model);
    let mut impact = (!healthy).then_some(0.0);
    let mut recovered_at = 0.0;
    let mut step = 0;
    let mut step_start = 0.0;
    let mut step_end = match plan.steps.first() {
        Some((d, _, _)) => model.sample(d),
        None => f64::INFINITY,
    };
    let mut fault_end = plan.fault_end;
    durations.fill(0.0);
    loop {
        // Once healthy with the procedure done and the fault over, nothing left in the model
        // can make the stack unhealthy again: the outcome is known.
        if healthy && step_end == f64::INFINITY && fault_end == f64::INFINITY {
            break;
        }
        let next = model.next_change().min(step_end).min(fault_end);
        if next > plan.horizon {
            break;
        }
        model.advance(next);
        if next == step_end {
            let (_, effect, replicas) = plan.steps[step];
            model.apply(effect, replicas);
            durations[step] = next - step_start;
            step += 1;
            step_start = next;
            step_end = match plan.steps.get(step) {
                Some((d, _, _)) => next + model.sample(d),
                None => f64::INFINITY,
            };
        }
        if next == fault_end {
            model.revert(&plan.fault);
            fault_end = f64::INFINITY;
        }
        let now = healthy_now(model);
        if now != healthy {
            if now {
                recovered_at = next;
            } else {
                impact.get_or_insert(next);
            }
            healthy = now;
        }
    }
    let rto = match (impact, healthy) {
        (None, _) => 0.0,
        (Some(_), true) => recovered_at,
        (Some(_), false) => f64::INFINITY,
    };
    Run { rto, mttd: impact.map(|t| t + phase.f64() * plan.probe_interval), rpo: model.lost_window() }
}

/// Sums and values of one chunk of runs.
#[derive(Default)]
struct Chunk {
    rto: Vec<f64>,
    rpo: Vec<f64>,
    mttd: Vec<f64>,
    no_impact: u64,
    /// Over recovered runs: n, Σrto, Σrto², Σdᵢ, Σdᵢ·rto.
    n: f64,
    sum_rto: f64,
    sum_rto2: f64,
    sum_d: Vec<f64>,
    sum_d_rto: Vec<f64>,
}

/// The ranks [`stats`] and [`histogram`] read, per percentile.
const PERCENTILES: [f64; 5] = [50.0, 90.0, 95.0, 99.0, 99.5];

/// Puts the values at the ranks of [`PERCENTILES`] (and the minimum and maximum) where a sort
/// would, in linear time: a full sort of a million runs would cost more than the runs.
fn select_percentiles(v: &mut [f64]) {
    if v.is_empty() {
        return;
    }
    let n = v.len();
    let mut ranks: Vec<usize> =
        PERCENTILES.iter().map(|p| (((p / 100.0) * n as f64).ceil().max(1.0) as usize).min(n) - 1).collect();
    ranks.extend([0, n - 1]);
    ranks.sort_unstable();
    ranks.dedup();
    let mut from = 0;
    for r in ranks {
        if r >= from {
            v[from..].select_nth_unstable_by(r - from, f64::total_cmp);
            from = r + 1;
        }
    }
}

/// Percentiles and mean of one metric over the runs, in seconds.
#[derive(Clone, Debug, Serialize)]
pub struct Stats {
    /// Runs the values are over.
    pub runs: u64,
    /// Mean of the finite values.
    pub mean: Option<f64>,
    /// Median (`None`: beyond the deadline, not recovered).
    pub p50: Option<f64>,
    /// 90th percentile.
    pub p90: Option<f64>,
    /// 95th percentile.
    pub p95: Option<f64>,
    /// 99th percentile.
    pub p99: Option<f64>,
    /// Largest value.
    pub max: Option<f64>,
}

/// The statistics of values that have been through [`select_percentiles`].
fn stats(sorted: &[f64]) -> Stats {
    let (count, sum) = sorted.iter().filter(|v| v.is_finite()).fold((0u64, 0.0), |(n, s), v| (n + 1, s + v));
    let pct = |p| crate::metrics::percentile(sorted, p).filter(|v| v.is_finite());
    Stats {
        runs: sorted.len() as u64,
        mean: (count > 0).then(|| sum / count as f64),
        p50: pct(50.0),
        p90: pct(90.0),
        p95: pct(95.0),
        p99: pct(99.0),
        max: sorted.last().copied().filter(|v| v.is_finite()),
    }
}

/// The probability of meeting one target, with its 95% confidence interval (Wilson).
#[derive(Clone, Debug, Serialize)]
pub struct Odds {
    /// `rto`, `rpo` or `mttd`.
    pub target: TargetKind,
    /// The limit, seconds.
    pub limit_s: f64,
    /// Share of runs that met it.
    pub probability: f64,
    /// Lower end of the 95% interval.
    pub low: f64,
    /// Upper end of the 95% interval.
    pub high: f64,
}

fn wilson(met: u64, n: u64) -> (f64, f64, f64) {
    if n == 0 {
        return (0.0, 0.0, 1.0);
    }
    let (z, n, p) = (1.959_963_984_540_054, n as f64, met as f64 / n as f64);
    let denom = 1.0 + z * z / n;
    let centre = (p + z * z / (2.0 * n)) / denom;
    let half = z * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt() / denom;
    (p, (centre - half).max(0.0), (centre + half).min(1.0))
}

/// How much one step contributes to the RTO.
#[derive(Clone, Debug, Serialize)]
pub struct StepShare {
    /// Step name.
    pub step: String,
    /// Mean duration, seconds.
    pub mean_s: f64,
    /// Share of the RTO's variance it explains: cov(step, RTO) / var(RTO).
    pub variance_share: f64,
}

/// A Monte Carlo prediction of a scenario.
#[derive(Clone, Debug, Serialize)]
pub struct Prediction {
    /// Scenario name.
    pub scenario: String,
    /// Master seed.
    pub seed: u64,
    /// Runs.
    pub runs: u64,
    /// RTO over all runs (`None` percentiles are past the deadline).
    pub rto: Stats,
    /// RPO over all runs.
    pub rpo: Stats,
    /// MTTD over the runs with impact.
    pub mttd: Stats,
    /// Runs without visible impact.
    pub no_impact: u64,
    /// Runs not recovered by the deadline.
    pub unrecovered: u64,
    /// The chance of meeting each target.
    pub odds: Vec<Odds>,
    /// What each step contributes to the RTO.
    pub steps: Vec<StepShare>,
    /// RTO histogram: `(from s, to s, runs)`, recovered runs only.
    pub histogram: Vec<(f64, f64, u64)>,
}

/// Runs `runs` simulated drills of a scenario on `threads` threads.
pub fn simulate(s: &Scenario, runs: u64, seed: u64, threads: usize) -> Result<Prediction, SimulateError> {
    let plan = SimulationPlan::compile(s)?;
    let n_chunks = (runs as usize).div_ceil(CHUNK);
    let next = AtomicUsize::new(0);
    let done: Mutex<Vec<Option<Chunk>>> = Mutex::new((0..n_chunks).map(|_| None).collect());
    let k = plan.steps.len();
    std::thread::scope(|scope| {
        for _ in 0..threads.max(1).min(n_chunks.max(1)) {
            scope.spawn(|| {
                let mut model = plan.model.clone();
                let mut durations = vec![0.0; k];
                loop {
                    let c = next.fetch_add(1, Ordering::Relaxed);
                    if c >= n_chunks {
                        break;
                    }
                    let from = c * CHUNK;
                    let to = ((c + 1) * CHUNK).min(runs as usize);
                    let mut chunk = Chunk { sum_d: vec![0.0; k], sum_d_rto: vec![0.0; k], ..Chunk::default() };
                    chunk.rto.reserve(to - from);
                    for i in from..to {
                        let run_seed = Rng::derive(seed, i as u64).next_u64();
                        let r = run_one(&plan, &mut model, run_seed, &mut durations);
                        chunk.rto.push(r.rto);
                        chunk.rpo.push(r.rpo);
                        match r.mttd {
                            Some(m) => chunk.mttd.push(m),
                            None => chunk.no_impact += 1,
                        }
                        if r.rto.is_finite() {
                            chunk.n += 1.0;
                            chunk.sum_rto += r.rto;
                            chunk.sum_rto2 += r.rto * r.rto;
                            for (j, d) in durations.iter().enumerate() {
                                chunk.sum_d[j] += d;
                                chunk.sum_d_rto[j] += d * r.rto;
                            }
                        }
                    }
                    done.lock().expect("no thread panics holding it")[c] = Some(chunk);
                }
            });
        }
    });
    let chunks: Vec<Chunk> = done.into_inner().expect("threads joined").into_iter().flatten().collect();
    let mut all = Chunk { sum_d: vec![0.0; k], sum_d_rto: vec![0.0; k], ..Chunk::default() };
    for c in chunks {
        all.rto.extend(c.rto);
        all.rpo.extend(c.rpo);
        all.mttd.extend(c.mttd);
        all.no_impact += c.no_impact;
        all.n += c.n;
        all.sum_rto += c.sum_rto;
        all.sum_rto2 += c.sum_rto2;
        for j in 0..k {
            all.sum_d[j] += c.sum_d[j];
            all.sum_d_rto[j] += c.sum_d_rto[j];
        }
    }
    let count = |values: &[f64], limit: f64| values.iter().filter(|v| **v <= limit).count() as u64;
    let mut odds = Vec::new();
    for (name, limit, values, extra) in [
        (TargetKind::Rto, s.rto, &all.rto, 0),
        (TargetKind::Rpo, s.rpo, &all.rpo, 0),
        // A run without impact had nothing to detect: it meets the MTTD target.
        (TargetKind::Mttd, s.mttd, &all.mttd, all.no_impact),
    ] {
        if let Some(limit) = limit {
            let (p, low, high) = wilson(count(values, limit.as_secs_f64()) + extra, runs);
            odds.push(Odds { target: name, limit_s: limit.as_secs_f64(), probability: p, low, high });
        }
    }
    let var = all.sum_rto2 / all.n.max(1.0) - (all.sum_rto / all.n.max(1.0)).powi(2);
    let steps = s
        .steps
        .iter()
        .enumerate()
        .map(|(j, st)| {
            let mean_d = all.sum_d[j] / all.n.max(1.0);
            let cov = all.sum_d_rto[j] / all.n.max(1.0) - mean_d * all.sum_rto / all.n.max(1.0);
            StepShare {
                step: st.name.clone(),
                mean_s: mean_d,
                variance_share: if var > 1e-12 { cov / var } else { 0.0 },
            }
        })
        .collect();
    for v in [&mut all.rto, &mut all.rpo, &mut all.mttd] {
        select_percentiles(v);
    }
    let unrecovered = all.rto.iter().filter(|v| !v.is_finite()).count() as u64;
    Ok(Prediction {
        scenario: s.name.clone(),
        seed,
        runs,
        histogram: histogram(&all.rto),
        rto: stats(&all.rto),
        rpo: stats(&all.rpo),
        mttd: stats(&all.mttd),
        no_impact: all.no_impact,
        unrecovered,
        odds,
        steps,
    })
}

/// Twenty bins from the shortest recovered RTO to its 99.5th percentile, the last bin also
/// holding the long tail beyond it (which would otherwise squash the chart). `values` has
/// been through [`select_percentiles`].
fn histogram(values: &[f64]) -> Vec<(f64, f64, u64)> {
    let finite = || values.iter().copied().filter(|v| v.is_finite());
    let (Some(lo), Some(max)) = (finite().reduce(f64::min), finite().reduce(f64::max)) else { return vec![] };
    let hi = crate::metrics::percentile(values, 99.5).filter(|v| v.is_finite()).unwrap_or(max);
    let bins = 20;
    let width = ((hi - lo) / bins as f64).max(1e-9);
    let mut counts = vec![0u64; bins];
    for v in finite() {
        counts[(((v - lo) / width) as usize).min(bins - 1)] += 1;
    }
    counts
        .into_iter()
        .enumerate()
        .map(|(i, c)| (lo + i as f64 * width, if i == bins - 1 { max } else { lo + (i + 1) as f64 * width }, c))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::drill::drill_once;
    use crate::scenario;

    /// RTO = 60 s (fixed) + uniform(30 s, 90 s) (the promotion step) + 5 s (reconnect); the
    /// replica is 2 s behind, so RPO = 2 s exactly.
    const KNOWN: &str = r#"
name: known
environment:
  kind: sim
  database: { replication_lag: 2s, reconnect: 5s }
fault: { kind: db_failover }
probes:
  - name: orders
    check: { kind: http, url: "http://shop/orders" }
    interval: 500ms
  - name: ledger
    check: { kind: write_ledger, dsn: "postgres://db/x" }
    interval: 100ms
procedure:
  kind: steps
  steps:
    - name: diagnose
      manual: look
      sim: { duration: 60s }
    - name: promote
      run: [promote]
      sim: { duration: { kind: uniform, min: 30s, max: 90s }, effect: promote_replica }
targets: { rto: 2m, rpo: 5s }
stability: { samples: 3, min_duration: 1s }
"#;

    fn known() -> Scenario {
        scenario::parse(KNOWN, Path::new("known.yaml")).unwrap()
    }

    #[test]
    fn converges_to_the_closed_form() {
        let p = simulate(&known(), 200_000, 11, 2).unwrap();
        // Mean 125 s; quantile q at 95 + 60 q.
        let close = |got: Option<f64>, want: f64, tol: f64| {
            let got = got.unwrap();
            assert!((got - want).abs() < tol, "got {got}, want {want} ± {tol}");
        };
        close(p.rto.mean, 125.0, 0.2);
        close(p.rto.p50, 125.0, 0.4);
        close(p.rto.p90, 149.0, 0.4);
        close(p.rto.p99, 154.4, 0.4);
        close(p.rto.max, 155.0, 0.1);
        close(p.rpo.p50, 2.0, 1e-9);
        // P(RTO <= 120 s) = (120 - 95) / 60.
        let odds = p.odds.iter().find(|o| o.target == TargetKind::Rto).unwrap();
        let exact = 25.0 / 60.0;
        assert!(odds.low <= exact && exact <= odds.high, "{odds:?}");
        assert!((odds.probability - exact).abs() < 0.005);
        // The promotion step is the only variable one: it explains all the variance.
        let promote = &p.steps[1];
        assert!((promote.variance_share - 1.0).abs() < 0.01, "{promote:?}");
        assert!(p.steps[0].variance_share.abs() < 0.01);
    }

    #[test]
    fn a_seed_gives_the_same_prediction_on_any_thread_count() {
        let s = scenario::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/traffic-surge.yaml")).unwrap();
        let one = serde_json::to_string(&simulate(&s, 20_000, 5, 1).unwrap()).unwrap();
        let three = serde_json::to_string(&simulate(&s, 20_000, 5, 3).unwrap()).unwrap();
        assert_eq!(one, three);
        let other = serde_json::to_string(&simulate(&s, 20_000, 6, 3).unwrap()).unwrap();
        assert_ne!(one, other);
    }

    #[test]
    fn predicts_what_drills_of_the_same_model_measure() {
        // The engine drives the same model through probes: its measured RTOs must average to
        // the prediction, within the sampling error of 60 drills (sd of U(30, 90) is 17.3 s).
        let s = known();
        let measured: Vec<f64> =
            (0..60).map(|seed| drill_once(&s, seed, 1, false, None).unwrap().metrics.rto.seconds().unwrap()).collect();
        let mean = measured.iter().sum::<f64>() / measured.len() as f64;
        assert!((mean - 125.0).abs() < 9.0, "engine mean RTO {mean}");
    }
}
