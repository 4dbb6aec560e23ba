//! Cost of a full contract check (key, headers, identity, envelope, payload) against parsing
//! the payload alone, per topic of the sample catalog. Target: ratio ≤ 1.5 on ~500-byte messages.
//!
//! (a) is `serde_json::from_slice` into a `Value`, what a consumer without evkit runs on a record's
//! payload. The contract parses faster than that (one UTF-8 pass over the buffer, then
//! `serde_json::from_str`), so the table also gives b/a′ against that parse: the cost of the
//! checks alone.
//!
//! (b) runs on the catalog as a service with the generated crate loads it: build-time validators
//! (jsonschema's `validator` macro, `evkit_events::generated::PRECOMPILED`) answer `is_valid`.
//! The last column, `b_rt/a`, is the same check with runtime validators only (`Catalog::load`), as
//! `evkit validate` and a catalog without a generated crate run it.
//!
//! `cargo bench -p evkit-benches --bench validate` prints criterion's numbers, then the ratios.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput};

fn bench(c: &mut Criterion) -> Vec<(String, usize)> {
    let catalog = evkit_benches::catalog().expect("sample catalog");
    let mut sizes = Vec::new();
    let mut group = c.benchmark_group("validate");
    for topic in catalog.topics() {
        let sample = evkit_benches::sample(topic, 500).expect("topic has an example");
        let contract = topic.contract();
        assert!(
            contract.check(&sample.message()).is_ok(),
            "bench sample must be valid"
        );
        sizes.push((sample.topic.clone(), sample.payload.len()));
        group.throughput(Throughput::Bytes(sample.payload.len() as u64));
        group.bench_with_input(BenchmarkId::new("parse", &sample.topic), &sample, |b, s| {
            b.iter(|| serde_json::from_slice::<serde_json::Value>(black_box(&s.payload)).unwrap());
        });
        group.bench_with_input(BenchmarkId::new("check", &sample.topic), &sample, |b, s| {
            b.iter(|| contract.check(black_box(&s.message())).unwrap());
        });
    }
    group.finish();
    sizes
}

/// Criterion's point estimate (ns) of the median for one benchmark, from its saved results.
fn median_ns(function: &str, topic: &str) -> Option<f64> {
    let dir = std::env::var("CARGO_TARGET_DIR")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../target").to_owned());
    let path = format!("{dir}/criterion/validate/{function}/{topic}/new/estimates.json");
    let text = std::fs::read_to_string(path).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v.pointer("/median/point_estimate")?.as_f64()
}

/// Side (a): `serde_json::from_slice` of a payload.
fn parse(payload: &[u8]) {
    black_box(serde_json::from_slice::<serde_json::Value>(black_box(payload)).unwrap());
}

/// Side (b): the full contract check of a sample.
fn check(contract: &evkit_schema::Contract, sample: &evkit_benches::Sample) {
    black_box(contract.check(black_box(&sample.message())).unwrap());
}

/// Median over rounds of (time of a batch of `b`) / (time of a batch of `a`), the two batches
/// run back to back, so a slow moment of a shared machine hits both sides alike.
fn paired_ratio(mut a: impl FnMut(), mut b: impl FnMut()) -> f64 {
    const BATCH: u32 = 2_000;
    let time = |f: &mut dyn FnMut()| {
        let t = std::time::Instant::now();
        for _ in 0..BATCH {
            f();
        }
        t.elapsed().as_secs_f64()
    };
    for _ in 0..3 {
        time(&mut a);
        time(&mut b);
    }
    let mut ratios: Vec<f64> = (0..101)
        .map(|_| {
            let ta = time(&mut a);
            let tb = time(&mut b);
            tb / ta
        })
        .collect();
    ratios.sort_by(f64::total_cmp);
    ratios[ratios.len() / 2]
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    let sizes = bench(&mut c);
    c.final_summary();
    let catalog = evkit_benches::catalog().expect("sample catalog");
    let runtime = evkit_benches::catalog_runtime().expect("sample catalog");
    println!("\nallocator: {}", evkit_benches::ALLOCATOR);
    println!(
        "\n| topic | payload bytes | (a) parse | (b) parse + check | b/a (criterion medians) | b/a (paired) | b/a′ (paired) | b_rt/a (paired) |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for (topic, len) in sizes {
        let t = catalog.topic(&topic).expect("topic");
        let sample = evkit_benches::sample(t, 500).expect("sample");
        let contract = t.contract();
        let paired = paired_ratio(|| parse(&sample.payload), || check(contract, &sample));
        // a′: the stricter baseline, the parse the contract itself runs (one UTF-8 pass over the
        // buffer, then `serde_json::from_str`).
        let strict = paired_ratio(
            || {
                black_box(evkit_schema::parse_json(black_box(&sample.payload)).unwrap());
            },
            || check(contract, &sample),
        );
        let without = runtime.contract(&topic).expect("topic");
        let runtime_only = paired_ratio(|| parse(&sample.payload), || check(without, &sample));
        if let (Some(a), Some(b)) = (median_ns("parse", &topic), median_ns("check", &topic)) {
            println!(
                "| {topic} | {len} | {:.2} µs | {:.2} µs | {:.2} | {paired:.2} | {strict:.2} | {runtime_only:.2} |",
                a / 1000.0,
                b / 1000.0,
                b / a
            );
        }
    }
    // The identity cache's worst case: every message carries an identity not seen recently
    // (8,192 distinct identities cycled through a cache of 1,024).
    let t = catalog.topic("platform.evkit.todo-created").expect("topic");
    let base = evkit_benches::sample(t, 500).expect("sample");
    let samples: Vec<evkit_benches::Sample> = (0..8192)
        .map(|i| {
            let mut s = base.clone();
            s.headers[0].1 = evkit_schema::encode_identity(&format!("org{i}"), "User").into_bytes();
            s
        })
        .collect();
    let contract = t.contract();
    let mut next = 0usize;
    let paired = paired_ratio(
        || parse(&base.payload),
        || {
            next = (next + 1) % samples.len();
            check(contract, &samples[next]);
        },
    );
    println!(
        "| {} (a new identity every message) | {} | | | | {paired:.2} | | |",
        t.name(),
        base.payload.len()
    );
    // Many tenants: 2,000 messages of about 700 bytes, each from a tenant of its own (its own
    // identity, org_id and key), against parsing the same messages.
    let tenants = evkit_benches::many_tenants(t, 2_000, 700).expect("a plain-JSON topic");
    let (mut i, mut j) = (0usize, 0usize);
    let paired = paired_ratio(
        || {
            i = (i + 1) % tenants.len();
            parse(&tenants[i].payload);
        },
        || {
            j = (j + 1) % tenants.len();
            check(contract, &tenants[j]);
        },
    );
    println!(
        "| {} (2,000 tenants, an identity of its own each) | {} | | | | {paired:.2} | | |",
        t.name(),
        tenants[0].payload.len()
    );
}
