//! Commit positions never pass a message whose handler has not finished.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use evkit::{Error, OffsetTracker, Position};
use proptest::prelude::*;

fn pos(partition: i32, offset: i64) -> Position {
    Position {
        topic: "t".to_owned(),
        partition,
        offset,
    }
}

#[test]
fn commits_stop_at_the_first_unfinished_message() {
    let mut t = OffsetTracker::new();
    for o in [10, 11, 12, 15] {
        t.begin("t", 0, o).unwrap();
    }
    t.finish("t", 0, 11).unwrap();
    t.finish("t", 0, 12).unwrap();
    // 10 is still being handled: nothing past it may be committed.
    assert_eq!(t.take_commits(), vec![pos(0, 10)]);
    t.finish("t", 0, 10).unwrap();
    assert_eq!(t.take_commits(), vec![pos(0, 15)]);
    assert!(t.take_commits().is_empty(), "no change, no commit");
    t.finish("t", 0, 15).unwrap();
    assert_eq!(t.take_commits(), vec![pos(0, 16)]);
}

#[test]
fn partitions_are_independent_and_revocation_flushes() {
    let mut t = OffsetTracker::new();
    t.begin("t", 0, 0).unwrap();
    t.begin("t", 1, 0).unwrap();
    t.begin("t", 1, 1).unwrap();
    t.finish("t", 1, 0).unwrap();
    t.finish("t", 1, 1).unwrap();
    assert_eq!(t.take_commits(), vec![pos(0, 0), pos(1, 2)]);
    t.finish("t", 0, 0).unwrap();
    assert_eq!(t.revoke("t", 0), Some(pos(0, 1)));
    assert_eq!(t.revoke("t", 0), None);
    assert_eq!(t.in_flight("t", 1), 0);
}

#[test]
fn bookkeeping_mistakes_are_errors_not_panics() {
    let mut t = OffsetTracker::new();
    assert!(matches!(
        t.finish("t", 0, 3),
        Err(Error::UnknownOffset { .. })
    ));
    t.begin("t", 0, 5).unwrap();
    assert!(matches!(t.begin("t", 0, 5), Err(Error::OutOfOrder { .. })));
    assert!(matches!(t.begin("t", 0, 4), Err(Error::OutOfOrder { .. })));
    t.finish("t", 0, 5).unwrap();
    assert!(matches!(
        t.finish("t", 0, 5),
        Err(Error::UnknownOffset { .. })
    ));
}

#[test]
fn a_run_begun_in_one_partition_is_tracked_as_begun_one_by_one() {
    let mut t = OffsetTracker::new();
    t.begin("t", 1, 9).unwrap();
    let mut run = t.begin_in("t", 0);
    for o in [3, 4, 7] {
        run.begin(o).unwrap();
    }
    // A duplicate in the run is refused, naming where it came from, and leaves the run going.
    match run.begin(7) {
        Err(Error::OutOfOrder {
            topic,
            partition,
            offset,
            last,
        }) => assert_eq!((topic.as_str(), partition, offset, last), ("t", 0, 7, 7)),
        other => panic!("{other:?}"),
    }
    run.begin(8).unwrap();
    assert_eq!(t.in_flight("t", 0), 4);
    assert_eq!(t.in_flight("t", 1), 1);
    t.finish("t", 0, 4).unwrap();
    assert_eq!(t.take_commits(), vec![pos(0, 3), pos(1, 9)]);
    assert_eq!(t.finish_through("t", 0, 8), 3);
    assert_eq!(t.take_commits(), vec![pos(0, 9)]);
    // The other partition was not touched by the run.
    assert!(matches!(t.begin("t", 1, 9), Err(Error::OutOfOrder { .. })));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    /// Any finishing order: every committed position is at most the lowest unfinished offset, and
    /// once all finish the position is one past the last offset.
    #[test]
    fn never_commits_past_an_unfinished_message(
        (offsets, finish) in prop::collection::vec(1i64..4, 1..60).prop_flat_map(|gaps| {
            let offsets: Vec<i64> = gaps.iter().scan(0i64, |o, g| { *o += g; Some(*o) }).collect();
            (Just(offsets.clone()), Just(offsets).prop_shuffle())
        }),
    ) {
        let mut t = OffsetTracker::new();
        for o in &offsets {
            t.begin("t", 0, *o).unwrap();
        }
        let mut done = std::collections::BTreeSet::new();
        let mut last_commit = i64::MIN;
        for o in finish {
            t.finish("t", 0, o).unwrap();
            done.insert(o);
            for p in t.take_commits() {
                let lowest_unfinished = offsets.iter().find(|x| !done.contains(x)).copied();
                if let Some(u) = lowest_unfinished {
                    prop_assert!(p.offset <= u, "committed {} past unfinished {}", p.offset, u);
                }
                prop_assert!(p.offset > last_commit, "commits only move forward");
                last_commit = p.offset;
            }
        }
        prop_assert_eq!(last_commit, offsets.last().unwrap() + 1);
    }
}

#[test]
fn a_failed_commit_is_offered_again() {
    let mut t = evkit::OffsetTracker::new();
    t.begin("t", 0, 0).unwrap();
    t.finish("t", 0, 0).unwrap();
    assert_eq!(t.take_commits().len(), 1);
    assert!(!t.pending());
    t.commit_failed("t", 0);
    assert!(t.pending());
    let again = t.take_commits();
    assert_eq!((again.len(), again[0].offset), (1, 1));
}

#[test]
fn restate_offers_every_position_once_more() {
    let mut t = OffsetTracker::new();
    t.begin("t", 0, 0).unwrap();
    t.begin("t", 1, 4).unwrap();
    t.finish("t", 0, 0).unwrap();
    t.finish("t", 1, 4).unwrap();
    assert_eq!(t.take_commits(), vec![pos(0, 1), pos(1, 5)]);
    assert!(t.take_commits().is_empty());
    t.restate();
    assert_eq!(t.take_commits(), vec![pos(0, 1), pos(1, 5)]);
    assert!(!t.pending());
}

#[test]
fn finish_through_covers_every_earlier_message_of_the_partition_only() {
    let mut t = OffsetTracker::new();
    for o in [3, 4, 7, 9] {
        t.begin("t", 0, o).unwrap();
    }
    t.begin("t", 1, 4).unwrap();
    // Offsets 3, 4 and 7 (gaps included) are done; 9 is not, nor is partition 1.
    assert_eq!(t.finish_through("t", 0, 8), 3);
    assert_eq!(t.in_flight("t", 0), 1);
    assert_eq!(t.take_commits(), vec![pos(0, 9), pos(1, 4)]);
    assert_eq!(t.finish_through("t", 0, 8), 0, "nothing left below 9");
    assert_eq!(
        t.finish_through("u", 0, 100),
        0,
        "an unknown topic finishes nothing"
    );
    assert_eq!(t.finish_through("t", 0, 9), 1);
    assert_eq!(t.take_commits(), vec![pos(0, 10)]);
}
