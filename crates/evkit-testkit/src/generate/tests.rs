use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::TestRunner;
use serde_json::{Value, json};

use super::Schema;

fn draw(schema: &Value, n: usize) -> Vec<Value> {
    let s = Schema::new(schema).unwrap();
    let strategy = s.valid().unwrap();
    let mut runner = TestRunner::deterministic();
    (0..n)
        .map(|_| strategy.new_tree(&mut runner).unwrap().current())
        .collect()
}

#[test]
fn debug_sites() {
    for schema in [
        json!({"contains": {"const": 1}, "maxContains": 1}),
        json!({"propertyNames": false}),
    ] {
        let s = Schema::new(&schema).unwrap();
        println!("canonical {}", s.canonical.to_json_schema());
        let raw = super::valid::Builder::new(s.draft)
            .node(&s.canonical, None, "", 0)
            .unwrap();
        let mut runner = TestRunner::deterministic();
        for _ in 0..10 {
            let v = raw.new_tree(&mut runner).unwrap().current();
            println!("raw {v} valid={}", s.is_valid(&v));
        }
        println!("values {:?}", draw(&schema, 5));
        for site in s.sites() {
            let b = s.break_site(&site, &mut runner, 6);
            println!("{site:?} -> {b:?}");
        }
    }
}
