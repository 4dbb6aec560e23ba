//! The evkit runtime (in progress).
//!
//! Built so far:
//! - [`Envelope`]: a consumed record, owned, with no rdkafka types, ready for a contract check;
//! - [`OffsetTracker`]: at-least-once commit positions: per partition, only up to the last
//!   contiguous finished message, however handlers finish out of order;
//! - [`dead_letter`]: the headers a dead-lettered message carries.
//!
//! The router, consumer loop, producer, retries, outbox, metrics and configuration come next
//! (see the runtime issue).

pub mod dead_letter;
mod envelope;
mod offsets;

pub use envelope::Envelope;
pub use offsets::{OffsetTracker, Position};

/// Everything that can go wrong in `evkit`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An offset finished that was never begun on that partition (a bookkeeping bug upstream).
    #[error("{topic}[{partition}]@{offset} finished but was never begun")]
    UnknownOffset {
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
        /// Offset.
        offset: i64,
    },
    /// Offsets must begin in increasing order within a partition.
    #[error("{topic}[{partition}]@{offset} begun after offset {last}")]
    OutOfOrder {
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
        /// The offset begun.
        offset: i64,
        /// The last offset begun before it.
        last: i64,
    },
}
