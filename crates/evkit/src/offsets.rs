//! At-least-once commit positions.

use std::collections::{HashMap, VecDeque};

use crate::Error;

/// A position to commit: the next offset to read on `topic`/`partition`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Position {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// The next offset to read (one past the last message that may be forgotten).
    pub offset: i64,
}

#[derive(Debug, Default)]
struct Partition {
    /// Begun and not finished, in offset order (offsets begin in increasing order, so a queue
    /// stays sorted without a tree's per-message allocation).
    in_flight: VecDeque<i64>,
    /// The last offset begun.
    last_begun: Option<i64>,
    /// The position last handed out for commit.
    committed: Option<i64>,
}

impl Partition {
    /// Everything below this offset is finished.
    fn safe(&self) -> Option<i64> {
        match self.in_flight.front() {
            Some(first) => Some(*first),
            None => self.last_begun.map(|o| o + 1),
        }
    }
}

/// One partition of an [`OffsetTracker`], to begin a run of its messages in
/// ([`OffsetTracker::begin_in`]).
#[derive(Debug)]
pub struct PartitionRun<'a> {
    topic: &'a str,
    partition: i32,
    state: &'a mut Partition,
}

impl PartitionRun<'_> {
    /// A message of this partition was handed to its handler. Offsets must increase: an offset
    /// at or below the last one begun is a duplicate delivery ([`Error::OutOfOrder`]).
    pub fn begin(&mut self, offset: i64) -> Result<(), Error> {
        let p = &mut *self.state;
        if let Some(last) = p.last_begun
            && offset <= last
        {
            return Err(Error::OutOfOrder {
                topic: self.topic.to_owned(),
                partition: self.partition,
                offset,
                last,
            });
        }
        p.last_begun = Some(offset);
        p.in_flight.push_back(offset);
        Ok(())
    }
}

/// Tracks, per partition, which consumed messages are still being handled, and says how far
/// the consumer group may commit: up to the lowest offset still in flight, so a crash never skips
/// a message whose handler had not finished, even when later messages finished first.
///
/// Offsets must be begun in increasing order within a partition (consumption order); gaps
/// (compacted or transaction-marker offsets) are fine.
#[derive(Debug, Default)]
pub struct OffsetTracker {
    /// Topic → partition → state; keyed by topic first so a lookup borrows the name.
    partitions: HashMap<String, HashMap<i32, Partition>>,
}

impl OffsetTracker {
    /// An empty tracker.
    pub fn new() -> Self {
        OffsetTracker::default()
    }

    /// A message was handed to its handler.
    pub fn begin(&mut self, topic: &str, partition: i32, offset: i64) -> Result<(), Error> {
        self.begin_in(topic, partition).begin(offset)
    }

    /// Begins a run of messages of one partition, looking the partition up once: call
    /// [`PartitionRun::begin`] for each, in consumption order.
    pub fn begin_in<'a>(&'a mut self, topic: &'a str, partition: i32) -> PartitionRun<'a> {
        // Allocates the name only for a topic's first message.
        if !self.partitions.contains_key(topic) {
            self.partitions.insert(topic.to_owned(), HashMap::new());
        }
        let Some(partitions) = self.partitions.get_mut(topic) else {
            unreachable!("inserted above")
        };
        PartitionRun {
            topic,
            partition,
            state: partitions.entry(partition).or_default(),
        }
    }

    /// A message's handling is over: acknowledged, or safely dead-lettered.
    pub fn finish(&mut self, topic: &str, partition: i32, offset: i64) -> Result<(), Error> {
        let removed = self.partition_mut(topic, partition).is_some_and(|p| {
            // Usually the oldest one finishes.
            if p.in_flight.front() == Some(&offset) {
                p.in_flight.pop_front();
                return true;
            }
            match p.in_flight.binary_search(&offset) {
                Ok(i) => p.in_flight.remove(i).is_some(),
                Err(_) => false,
            }
        });
        if removed {
            Ok(())
        } else {
            Err(Error::UnknownOffset {
                topic: topic.to_owned(),
                partition,
                offset,
            })
        }
    }

    /// Every message of the partition up to and including `offset` was handled (a worker that
    /// handles a partition's messages in order reports its progress so). Returns how many
    /// in-flight messages this finished.
    pub fn finish_through(&mut self, topic: &str, partition: i32, offset: i64) -> usize {
        let Some(p) = self.partition_mut(topic, partition) else {
            return 0;
        };
        let before = p.in_flight.len();
        while p.in_flight.front().is_some_and(|o| *o <= offset) {
            p.in_flight.pop_front();
        }
        before - p.in_flight.len()
    }

    /// How many messages are being handled on this partition.
    pub fn in_flight(&self, topic: &str, partition: i32) -> usize {
        self.partitions
            .get(topic)
            .and_then(|t| t.get(&partition))
            .map_or(0, |p| p.in_flight.len())
    }

    fn partition_mut(&mut self, topic: &str, partition: i32) -> Option<&mut Partition> {
        self.partitions.get_mut(topic)?.get_mut(&partition)
    }

    fn all(&self) -> impl Iterator<Item = &Partition> {
        self.partitions.values().flat_map(HashMap::values)
    }

    /// Positions that moved since the last call, to commit now.
    pub fn take_commits(&mut self) -> Vec<Position> {
        let mut out: Vec<Position> = self
            .partitions
            .iter_mut()
            .flat_map(|(topic, t)| {
                t.iter_mut()
                    .map(move |(partition, p)| (topic, partition, p))
            })
            .filter_map(|(topic, partition, p)| {
                let safe = p.safe()?;
                if p.committed.is_some_and(|c| c >= safe) {
                    return None;
                }
                p.committed = Some(safe);
                Some(Position {
                    topic: topic.clone(),
                    partition: *partition,
                    offset: safe,
                })
            })
            .collect();
        out.sort();
        out
    }

    /// `true` when some partition has a position not yet committed.
    pub fn pending(&self) -> bool {
        self.all().any(|p| {
            p.safe()
                .is_some_and(|safe| p.committed.is_none_or(|c| c < safe))
        })
    }

    /// A commit of this partition failed: the next [`OffsetTracker::take_commits`] offers its
    /// position again.
    pub fn commit_failed(&mut self, topic: &str, partition: i32) {
        if let Some(p) = self.partition_mut(topic, partition) {
            p.committed = None;
        }
    }

    /// Forget what was committed, so the next [`OffsetTracker::take_commits`] offers every
    /// partition's position again. The consumer does this before its final commit: an earlier
    /// commit that failed locally may still reach the broker late (librdkafka retries it) and
    /// overwrite a newer position, so the last word restates them all.
    pub fn restate(&mut self) {
        for p in self.partitions.values_mut().flat_map(HashMap::values_mut) {
            p.committed = None;
        }
    }

    /// The partition was revoked: returns its final position (if it moved) and forgets it.
    pub fn revoke(&mut self, topic: &str, partition: i32) -> Option<Position> {
        let p = self.partitions.get_mut(topic)?.remove(&partition)?;
        let safe = p.safe()?;
        (p.committed != Some(safe)).then(|| Position {
            topic: topic.to_owned(),
            partition,
            offset: safe,
        })
    }
}
