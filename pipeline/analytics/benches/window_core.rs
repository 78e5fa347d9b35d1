//! The window core alone, without decoding or output: `cargo bench -p atenex-analytics --bench
//! window_core`. Events of 20 companies on 3 partitions, event times rising about 1 ms a record
//! with up to 4 s of disorder (nothing late), processing time equal to event time; best of five
//! runs over 2,000,000 events, one thread. Prints nanoseconds per event and events per second
//! (docs/analytics.md, Benchmark). Under `cargo test --all-targets` (no `--bench` argument) it runs
//! once over 10,000 events, as a smoke test.

use atenex_analytics::core::{Event, Output, Settings, WindowCore};
use std::time::Instant;

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let (events_n, runs) = if bench { (2_000_000, 5) } else { (10_000, 1) };
    let companies: Vec<String> = (0..20).map(|c| format!("company-{c:02}")).collect();
    // A small deterministic generator (xorshift): the same stream every run.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let base = 1_764_201_600_000i64;
    let events: Vec<(i32, i64, usize)> = (0..events_n)
        .map(|i| {
            let r = next();
            let ts = base + i as i64 - (r % 4_000) as i64;
            (
                ((r >> 20) % 3) as i32,
                ts,
                (r >> 32) as usize % companies.len(),
            )
        })
        .collect();
    let mut best = f64::MAX;
    let mut windows = 0;
    for _ in 0..runs {
        let mut core = WindowCore::new(Settings::default());
        let mut out: Vec<Output> = Vec::new();
        let mut offsets = [0i64; 3];
        let started = Instant::now();
        for &(partition, ts, company) in &events {
            let offset = offsets[partition as usize];
            offsets[partition as usize] += 1;
            let ev = Event {
                partition,
                offset,
                ts,
                chunk_id: "chunk",
                document_id: "document",
                company_id: &companies[company],
            };
            core.on_tick(ts, &mut out);
            core.handle(&ev, ts, &mut out);
            windows += out.len();
            out.clear();
        }
        core.finish(&mut out);
        windows += out.len();
        best = best.min(started.elapsed().as_secs_f64());
    }
    let ns = best * 1e9 / events_n as f64;
    println!(
        "window core: {events_n} events, best of {runs}: {ns:.1} ns/event, {:.2} M events/s ({windows} outputs over all runs)",
        events_n as f64 / best / 1e6,
    );
}
