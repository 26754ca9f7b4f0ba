//! How fast one simulated drill runs, engine included: the figure that bounds `--repeat` and
//! the CI cost of sim scenarios. Reported as drills per second (criterion's throughput).

use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use firedrill::drill::drill_once;
use firedrill::scenario;

fn sim_drill(c: &mut Criterion) {
    let mut group = c.benchmark_group("sim_drill");
    group.throughput(Throughput::Elements(1));
    for name in ["db-failover", "node-drain", "traffic-surge", "s3-block"] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("scenarios/{name}.yaml"));
        let s = scenario::load(&path).expect("shipped scenarios are valid");
        let mut seed = 0u64;
        group.bench_function(name, |b| {
            b.iter(|| {
                seed += 1;
                drill_once(&s, seed, 1, false, None).expect("sim drills run")
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = sim_drill
}
criterion_main!(benches);
