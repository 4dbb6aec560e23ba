//! The embedded broker: librdkafka's mock cluster, owned by a client of our own, with typed fault
//! injection and an optional TCP front on fixed ports (for `evkit dev`).
#![allow(unsafe_code)]

use std::ffi::{CStr, CString};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::producer::{BaseProducer, Producer as _};
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
use rdkafka_sys as rdsys;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::Error;

/// The raw mock cluster handle. librdkafka's mock API posts every call to the cluster's own
/// thread, so the handle may be used from any thread while its owning client lives.
struct RawCluster(*mut rdsys::rd_kafka_mock_cluster_t);

// SAFETY: see `RawCluster`: the mock cluster API is thread-safe (operations are queued to the
// cluster thread), and the pointer stays valid while `EmbeddedBroker::owner` is alive.
unsafe impl Send for RawCluster {}
// SAFETY: as above.
unsafe impl Sync for RawCluster {}

/// librdkafka's mock cluster, in-process, listening on random 127.0.0.1 ports.
///
/// Dropping it stops the cluster and closes its sockets.
pub struct EmbeddedBroker {
    // Field order matters: the raw handle is only used while `owner` lives.
    raw: RawCluster,
    owner: BaseProducer,
    brokers: i32,
    bootstrap: String,
}

impl std::fmt::Debug for EmbeddedBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedBroker")
            .field("brokers", &self.brokers)
            .field("bootstrap", &self.bootstrap)
            .finish_non_exhaustive()
    }
}

fn check(operation: &str, err: rdsys::rd_kafka_resp_err_t) -> Result<(), Error> {
    if err == rdsys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
        Ok(())
    } else {
        Err(Error::Mock {
            operation: operation.to_owned(),
            code: format!("{err:?}"),
        })
    }
}

fn c_string(operation: &str, s: &str) -> Result<CString, Error> {
    CString::new(s).map_err(|_| Error::Mock {
        operation: operation.to_owned(),
        code: format!("`{s}` contains a NUL byte"),
    })
}

impl EmbeddedBroker {
    /// Starts a mock cluster with `brokers` brokers (3 is a good default for tests).
    ///
    /// The first consumer-group join normally waits 3 s (the initial rebalance delay); it is set
    /// to 0 here so tests do not wait.
    pub fn start(brokers: i32) -> Result<EmbeddedBroker, Error> {
        let owner: BaseProducer = ClientConfig::new()
            .set("test.mock.num.brokers", brokers.to_string())
            .set("log_level", "3")
            .create()
            .map_err(crate::kafka("creating the mock cluster's owner"))?;
        // SAFETY: `owner` is a live client handle; the returned cluster belongs to it.
        let raw = unsafe { rdsys::rd_kafka_handle_mock_cluster(owner.client().native_ptr()) };
        if raw.is_null() {
            return Err(Error::Mock {
                operation: "rd_kafka_handle_mock_cluster".to_owned(),
                code: "the client created no mock cluster".to_owned(),
            });
        }
        // SAFETY: `raw` is valid (checked above); the returned string is owned by the cluster.
        let bootstrap = unsafe {
            let s = rdsys::rd_kafka_mock_cluster_bootstraps(raw);
            if s.is_null() {
                String::new()
            } else {
                CStr::from_ptr(s).to_string_lossy().into_owned()
            }
        };
        let broker = EmbeddedBroker {
            raw: RawCluster(raw),
            owner,
            brokers,
            bootstrap,
        };
        broker.set_initial_rebalance_delay(Duration::ZERO);
        Ok(broker)
    }

    /// The mock cluster's bootstrap servers (random ports on 127.0.0.1).
    pub fn bootstrap_servers(&self) -> &str {
        &self.bootstrap
    }

    /// How many brokers the cluster has (ids 1..=n).
    pub fn broker_count(&self) -> i32 {
        self.brokers
    }

    /// Creates a topic (the mock cluster's own admin API does not; a [`ForwardedBroker`]
    /// answers admin clients' `CreateTopics` with this).
    pub fn create_topic(&self, topic: &str, partitions: i32) -> Result<(), Error> {
        check(
            &format!("create topic {topic}"),
            self.create_topic_code(topic, partitions),
        )
    }

    /// [`EmbeddedBroker::create_topic`], answering with the mock cluster's error code
    /// (`TOPIC_ALREADY_EXISTS` for a topic it has).
    pub(crate) fn create_topic_code(&self, topic: &str, partitions: i32) -> RDKafkaRespErr {
        let Ok(name) = CString::new(topic) else {
            return RDKafkaRespErr::RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION;
        };
        let replication = self.brokers.min(3);
        // SAFETY: live cluster, valid C string.
        unsafe {
            rdsys::rd_kafka_mock_topic_create(self.raw.0, name.as_ptr(), partitions, replication)
        }
    }

    /// Sets the delay of the first consumer-group join.
    pub fn set_initial_rebalance_delay(&self, delay: Duration) {
        let ms = i32::try_from(delay.as_millis()).unwrap_or(i32::MAX);
        // SAFETY: live cluster.
        unsafe { rdsys::rd_kafka_mock_group_initial_rebalance_delay_ms(self.raw.0, ms) };
    }

    /// The next requests of kind `api` fail with `errors`, one error per request, in order.
    pub fn push_request_errors(&self, api: RDKafkaApiKey, errors: &[RDKafkaRespErr]) {
        // SAFETY: live cluster; `errors` outlives the call, which copies it.
        unsafe {
            rdsys::rd_kafka_mock_push_request_errors_array(
                self.raw.0,
                api as i16,
                errors.len(),
                errors.as_ptr(),
            );
        }
    }

    /// Drops the pending injected errors for `api`.
    pub fn clear_request_errors(&self, api: RDKafkaApiKey) {
        // SAFETY: live cluster.
        unsafe { rdsys::rd_kafka_mock_clear_request_errors(self.raw.0, api as i16) };
    }

    /// Every request to `topic` fails with `error` until cleared with `NoError`.
    pub fn topic_error(&self, topic: &str, error: RDKafkaRespErr) -> Result<(), Error> {
        let name = c_string("topic_error", topic)?;
        // SAFETY: live cluster, valid C string.
        unsafe { rdsys::rd_kafka_mock_topic_set_error(self.raw.0, name.as_ptr(), error) };
        Ok(())
    }

    /// Takes broker `id` down: its connections close and it refuses new ones.
    pub fn broker_down(&self, id: i32) -> Result<(), Error> {
        // SAFETY: live cluster.
        check(&format!("broker {id} down"), unsafe {
            rdsys::rd_kafka_mock_broker_set_down(self.raw.0, id)
        })
    }

    /// Brings broker `id` back.
    pub fn broker_up(&self, id: i32) -> Result<(), Error> {
        // SAFETY: live cluster.
        check(&format!("broker {id} up"), unsafe {
            rdsys::rd_kafka_mock_broker_set_up(self.raw.0, id)
        })
    }

    /// Delays every response of broker `id` by `rtt`.
    pub fn round_trip_time(&self, id: i32, rtt: Duration) -> Result<(), Error> {
        let ms = i32::try_from(rtt.as_millis()).unwrap_or(i32::MAX);
        // SAFETY: live cluster.
        check(&format!("broker {id} rtt"), unsafe {
            rdsys::rd_kafka_mock_broker_set_rtt(self.raw.0, id, ms)
        })
    }

    /// Moves the leadership of a partition to broker `id`.
    pub fn partition_leader(&self, topic: &str, partition: i32, id: i32) -> Result<(), Error> {
        let name = c_string("partition_leader", topic)?;
        // SAFETY: live cluster, valid C string.
        check(&format!("{topic}/{partition} leader {id}"), unsafe {
            rdsys::rd_kafka_mock_partition_set_leader(self.raw.0, name.as_ptr(), partition, id)
        })
    }

    /// Makes every broker reachable on a fixed address: broker `i` (1-based) on
    /// `listen.port() + i - 1`, advertised in metadata, with a TCP forwarder in front of the
    /// random port the mock broker really uses. Binds every port first, so a taken port fails
    /// before anything starts. Must run inside a Tokio runtime.
    pub async fn front(self, listen: SocketAddr) -> Result<ForwardedBroker, Error> {
        let real: Vec<SocketAddr> = self
            .bootstrap
            .split(',')
            .filter_map(|a| a.trim().parse().ok())
            .collect();
        let mut listeners = Vec::new();
        for i in 0..real.len() {
            let port = u16::try_from(usize::from(listen.port()) + i).map_err(|_| Error::Bind {
                addr: listen,
                source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "port out of range"),
            })?;
            let addr = SocketAddr::new(listen.ip(), port);
            let listener = TcpListener::bind(addr)
                .await
                .map_err(|source| Error::Bind { addr, source })?;
            let bound = listener
                .local_addr()
                .map_err(|source| Error::Bind { addr, source })?;
            listeners.push((listener, bound));
        }
        let cluster = Arc::new(self);
        let mut addresses = Vec::new();
        let mut tasks = Vec::new();
        for (i, ((listener, bound), target)) in listeners.into_iter().zip(real).enumerate() {
            let id = i32::try_from(i + 1).unwrap_or(i32::MAX);
            let host = c_string("front", &bound.ip().to_string())?;
            // SAFETY: live cluster, valid C string.
            unsafe {
                rdsys::rd_kafka_mock_broker_set_host_port(
                    cluster.raw.0,
                    id,
                    host.as_ptr(),
                    i32::from(bound.port()),
                );
            }
            addresses.push(bound);
            tasks.push(tokio::spawn(crate::front::serve(
                listener,
                target,
                Arc::downgrade(&cluster),
            )));
        }
        Ok(ForwardedBroker {
            bootstrap: addresses
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(","),
            addresses,
            tasks,
            cluster,
        })
    }
}

/// An embedded broker reachable on fixed addresses (see [`EmbeddedBroker::front`]).
/// Dropping it stops the forwarders and the cluster.
pub struct ForwardedBroker {
    bootstrap: String,
    addresses: Vec<SocketAddr>,
    tasks: Vec<JoinHandle<()>>,
    cluster: Arc<EmbeddedBroker>,
}

impl ForwardedBroker {
    /// The fixed bootstrap servers.
    pub fn bootstrap_servers(&self) -> &str {
        &self.bootstrap
    }

    /// The fixed address of each broker, in broker-id order.
    pub fn addresses(&self) -> &[SocketAddr] {
        &self.addresses
    }

    /// The cluster behind the front, for topic creation and fault injection.
    pub fn cluster(&self) -> &EmbeddedBroker {
        &self.cluster
    }
}

impl Drop for ForwardedBroker {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Drop for EmbeddedBroker {
    fn drop(&mut self) {
        // Outstanding messages of the owner are irrelevant: it never produces.
        let _ = self.owner.flush(Duration::from_millis(0));
    }
}
