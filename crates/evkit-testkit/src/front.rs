//! The front of `evkit dev`: a Kafka-protocol-aware forwarder between clients and librdkafka's
//! mock brokers that answers the admin requests the mock cluster lacks.
//!
//! The mock cluster has no `CreateTopics` handler, does not list it in its `ApiVersions` reply and
//! names no controller in its Metadata reply, so every admin client waits for a controller that
//! never comes (`OperationTimedOut` from librdkafka, "Failed while waiting for controller" from
//! confluent-kafka). The front reads each connection's requests frame by frame:
//! - `CreateTopics` is answered here: each topic is created in the mock cluster (with its
//!   partition count; the broker default of 3 when the request says -1), and the reply says
//!   which were created and which already existed. `validate_only` creates nothing.
//! - The `ApiVersions` reply gains `CreateTopics` (v2 to v7); the `Metadata` reply names
//!   broker 1 as the controller when the mock names none.
//! - Everything else passes through untouched.
//!
//! Replies reach the client in request order (Kafka's rule on one connection): every request
//! that expects a reply takes a slot, filled either by the broker's next reply or by the answer
//! made here. A produce request with `acks=0` expects none. A reply the codec cannot read is
//! passed on as it came.

use std::net::SocketAddr;
use std::sync::Weak;

use bytes::{Buf as _, BufMut as _, Bytes, BytesMut};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsResponse, BrokerId, CreateTopicsRequest, CreateTopicsResponse,
    MetadataResponse, RequestHeader, ResponseHeader,
};
use kafka_protocol::protocol::{Decodable, Encodable};
use rdkafka::types::RDKafkaRespErr;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use crate::embedded::EmbeddedBroker;

/// A frame larger than this ends the connection (the brokers' default `socket.request.max.bytes`).
const MAX_FRAME: usize = 100 << 20;

/// The `CreateTopics` versions the front answers.
const CREATE_TOPICS: (i16, i16) = (2, 7);

/// Partitions of a topic whose request leaves the count to the broker (-1).
const DEFAULT_PARTITIONS: i32 = 3;

/// What the client gets next, in request order.
enum Slot {
    /// The broker's next reply, to the request of this kind and version.
    Broker(i16, i16),
    /// A reply made here (a whole frame, length included).
    Local(Bytes),
}

/// Accepts clients on `listener` and serves each through the mock broker at `target`.
pub(crate) async fn serve(
    listener: TcpListener,
    target: SocketAddr,
    cluster: Weak<EmbeddedBroker>,
) {
    loop {
        let Ok((inbound, _)) = listener.accept().await else {
            continue;
        };
        let cluster = cluster.clone();
        tokio::spawn(async move {
            if let Ok(outbound) = TcpStream::connect(target).await {
                let _ = inbound.set_nodelay(true);
                let _ = outbound.set_nodelay(true);
                // Either side closing ends the connection; errors are the peer's business.
                let _ = connection(inbound, outbound, cluster).await;
            }
        });
    }
}

async fn connection(
    inbound: TcpStream,
    outbound: TcpStream,
    cluster: Weak<EmbeddedBroker>,
) -> std::io::Result<()> {
    let (mut client_read, mut client_write) = inbound.into_split();
    let (mut broker_read, mut broker_write) = outbound.into_split();
    let (slots, mut next) = mpsc::unbounded_channel::<Slot>();
    // Replies, in order.
    let replies = tokio::spawn(async move {
        while let Some(slot) = next.recv().await {
            let frame = match slot {
                Slot::Local(frame) => frame,
                Slot::Broker(api, version) => {
                    let Some(frame) = read_frame(&mut broker_read).await? else {
                        break;
                    };
                    rewrite_reply(api, version, frame)
                }
            };
            client_write.write_all(&frame).await?;
        }
        Ok::<(), std::io::Error>(())
    });
    // Requests.
    while let Some(frame) = read_frame(&mut client_read).await? {
        let body = frame.slice(4..);
        let (api, version) = match (body.get(0..2), body.get(2..4)) {
            (Some(a), Some(v)) => (
                i16::from_be_bytes([a[0], a[1]]),
                i16::from_be_bytes([v[0], v[1]]),
            ),
            _ => break,
        };
        if api == ApiKey::CreateTopics as i16
            && let Some(reply) = create_topics(&body, version, &cluster)
        {
            if slots.send(Slot::Local(reply)).is_err() {
                break;
            }
            continue;
        }
        if expects_reply(api, version, &body) && slots.send(Slot::Broker(api, version)).is_err() {
            break;
        }
        broker_write.write_all(&frame).await?;
    }
    drop(slots);
    let _ = replies.await;
    Ok(())
}

/// One frame (its 4-byte length included), or `None` at the end of the stream.
async fn read_frame<R: tokio::io::AsyncRead + Unpin>(r: &mut R) -> std::io::Result<Option<Bytes>> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let n = usize::try_from(i32::from_be_bytes(len)).unwrap_or(usize::MAX);
    if n > MAX_FRAME {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("a {n}-byte frame"),
        ));
    }
    let mut frame = BytesMut::with_capacity(4 + n);
    frame.put_slice(&len);
    frame.resize(4 + n, 0);
    r.read_exact(&mut frame[4..]).await?;
    Ok(Some(frame.freeze()))
}

/// `false` only for a produce request with `acks=0`, which the broker does not answer.
fn expects_reply(api: i16, version: i16, body: &Bytes) -> bool {
    if api != ApiKey::Produce as i16 {
        return true;
    }
    let mut buf = body.clone();
    let header_version = ApiKey::Produce.request_header_version(version);
    if RequestHeader::decode(&mut buf, header_version).is_err() {
        return true;
    }
    // transactional_id (nullable string; compact from v9), then acks.
    let skip = if version >= 9 {
        read_varint(&mut buf).map(|n| n.saturating_sub(1))
    } else if version >= 3 {
        (buf.remaining() >= 2).then(|| {
            let n = buf.get_i16();
            usize::try_from(n).unwrap_or(0)
        })
    } else {
        Some(0)
    };
    match skip {
        Some(n) if buf.remaining() >= n + 2 => {
            buf.advance(n);
            buf.get_i16() != 0
        }
        _ => true,
    }
}

fn read_varint(buf: &mut Bytes) -> Option<usize> {
    let mut value = 0usize;
    for shift in (0..35).step_by(7) {
        if !buf.has_remaining() {
            return None;
        }
        let b = buf.get_u8();
        value |= usize::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

/// The frame of a reply: header and body, with the length in front.
fn frame(api: ApiKey, version: i16, correlation_id: i32, body: &impl Encodable) -> Option<Bytes> {
    let mut out = BytesMut::new();
    out.put_i32(0);
    ResponseHeader::default()
        .with_correlation_id(correlation_id)
        .encode(&mut out, api.response_header_version(version))
        .ok()?;
    body.encode(&mut out, version).ok()?;
    let len = i32::try_from(out.len() - 4).ok()?;
    out[0..4].copy_from_slice(&len.to_be_bytes());
    Some(out.freeze())
}

/// Answers a `CreateTopics` request by creating the topics in the mock cluster; `None` when the
/// request cannot be read (it then goes to the broker, which says what it says).
fn create_topics(body: &Bytes, version: i16, cluster: &Weak<EmbeddedBroker>) -> Option<Bytes> {
    if !(CREATE_TOPICS.0..=CREATE_TOPICS.1).contains(&version) {
        return None;
    }
    let mut buf = body.clone();
    let header = RequestHeader::decode(
        &mut buf,
        ApiKey::CreateTopics.request_header_version(version),
    )
    .ok()?;
    let request = CreateTopicsRequest::decode(&mut buf, version).ok()?;
    let cluster = cluster.upgrade()?;
    let topics = request
        .topics
        .iter()
        .map(|t| {
            let partitions = if t.num_partitions > 0 {
                t.num_partitions
            } else if !t.assignments.is_empty() {
                i32::try_from(t.assignments.len()).unwrap_or(i32::MAX)
            } else {
                DEFAULT_PARTITIONS
            };
            let (code, message) = if request.validate_only {
                (RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR, None)
            } else {
                match cluster.create_topic_code(&t.name, partitions) {
                    RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR => {
                        (RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR, None)
                    }
                    code => (code, Some(format!("{code:?}"))),
                }
            };
            CreatableTopicResult::default()
                .with_name(t.name.clone())
                .with_error_code(wire_code(code))
                .with_error_message(message.map(kafka_protocol::protocol::StrBytes::from_string))
                .with_num_partitions(partitions)
                .with_replication_factor(i16::try_from(cluster.broker_count().min(3)).unwrap_or(1))
        })
        .collect();
    frame(
        ApiKey::CreateTopics,
        version,
        header.correlation_id,
        &CreateTopicsResponse::default().with_topics(topics),
    )
}

/// A librdkafka error as a Kafka protocol error code (librdkafka's own, negative, codes are
/// `UNKNOWN_SERVER_ERROR`).
fn wire_code(code: RDKafkaRespErr) -> i16 {
    let n = code as i32;
    if n < 0 {
        -1
    } else {
        i16::try_from(n).unwrap_or(-1)
    }
}

/// The broker's reply, with `CreateTopics` added to `ApiVersions` and a controller named in
/// Metadata; anything else, or a reply the codec cannot read, as it came.
fn rewrite_reply(api: i16, version: i16, raw: Bytes) -> Bytes {
    let patched = if api == ApiKey::ApiVersions as i16 {
        patch(
            &raw,
            ApiKey::ApiVersions,
            version,
            |r: &mut ApiVersionsResponse| {
                if r.api_keys
                    .iter()
                    .any(|k| k.api_key == ApiKey::CreateTopics as i16)
                {
                    return false;
                }
                r.api_keys.push(
                    ApiVersion::default()
                        .with_api_key(ApiKey::CreateTopics as i16)
                        .with_min_version(CREATE_TOPICS.0)
                        .with_max_version(CREATE_TOPICS.1),
                );
                true
            },
        )
    } else if api == ApiKey::Metadata as i16 {
        name_a_controller(&raw, version)
    } else {
        None
    };
    patched.unwrap_or(raw)
}

/// The Metadata reply with broker 1 (the lowest id) as the controller, when the mock names a
/// broker that does not exist (it says 0). Only those four bytes change: the reply is decoded,
/// encoded twice (as it is, and with the new controller) to find where the controller sits, and
/// patched in place only when the raw bytes before it are exactly what the codec writes (the
/// mock's replies carry bytes after the last field that a re-encoded reply would drop).
fn name_a_controller(raw: &Bytes, version: i16) -> Option<Bytes> {
    let api = ApiKey::Metadata;
    let header_version = api.response_header_version(version);
    let mut buf = raw.slice(4..);
    let header = ResponseHeader::decode(&mut buf, header_version).ok()?;
    let reply = MetadataResponse::decode(&mut buf, version).ok()?;
    let ids: Vec<i32> = reply.brokers.iter().map(|b| b.node_id.0).collect();
    let first = ids.iter().copied().min()?;
    if ids.contains(&reply.controller_id.0) {
        return None;
    }
    let mut head = BytesMut::new();
    header.encode(&mut head, header_version).ok()?;
    let mut before = BytesMut::new();
    reply.encode(&mut before, version).ok()?;
    let mut after = BytesMut::new();
    reply
        .clone()
        .with_controller_id(BrokerId(first))
        .encode(&mut after, version)
        .ok()?;
    // The first byte that differs is inside the four of the controller id.
    let differs = before.iter().zip(after.iter()).position(|(a, b)| a != b)?;
    let (old, new) = (reply.controller_id.0.to_be_bytes(), first.to_be_bytes());
    let at = (differs.saturating_sub(3)..=differs).find(|&p| {
        before.get(p..p + 4) == Some(&old[..]) && after.get(p..p + 4) == Some(&new[..])
    })?;
    let start = 4 + head.len() + at;
    let same_prefix = raw.get(4 + head.len()..start) == before.get(..at);
    let same_id = raw.get(start..start + 4) == Some(&old[..]);
    if !(same_prefix && same_id) {
        return None;
    }
    let mut out = BytesMut::from(&raw[..]);
    out[start..start + 4].copy_from_slice(&new);
    Some(out.freeze())
}

/// Decodes a reply, lets `change` edit it, and encodes it again (`None`: unchanged or unreadable).
fn patch<R: Decodable + Encodable>(
    raw: &Bytes,
    api: ApiKey,
    version: i16,
    change: impl FnOnce(&mut R) -> bool,
) -> Option<Bytes> {
    let mut buf = raw.slice(4..);
    let header = ResponseHeader::decode(&mut buf, api.response_header_version(version)).ok()?;
    let mut reply = R::decode(&mut buf, version).ok()?;
    if buf.has_remaining() || !change(&mut reply) {
        return None;
    }
    frame(api, version, header.correlation_id, &reply)
}
