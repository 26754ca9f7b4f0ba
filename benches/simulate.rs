//! Monte Carlo speed: simulated drills per second of each shipped scenario, one thread and
//! every core, measured in one run so the ratio is meaningful on a noisy machine. The goal
//! for db-failover is one million drills per second on two cores.

use std::path::Path;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use firedrill::scenario;
use firedrill::simulate::simulate;

const RUNS: u64 = 200_000;

fn monte_carlo(c: &mut Criterion) {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut group = c.benchmark_group("simulate");
    group.throughput(Throughput::Elements(RUNS));
    for name in ["db-failover", "node-drain", "traffic-surge", "s3-block"] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("scenarios/{name}.yaml"));
        let s = scenario::load(&path).expect("shipped scenarios are valid");
        for threads in [1, cores] {
            group.bench_with_input(BenchmarkId::new(name, format!("{threads}-threads")), &threads, |b, &t| {
                b.iter(|| simulate(&s, RUNS, 7, t).expect("sim scenarios simulate"))
            });
        }
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10);
    targets = monte_carlo
}
criterion_main!(benches);
