//! Topics: how many partitions a topic has (metadata), and creating missing ones through
//! the admin API.
//!
//! ```text
//!  ensure_topic(t, n):  metadata(t) ─exists─> its own partition count
//!                           │ missing
//!                           ├─ creation off ─> KAFKA_TOPIC_NOT_FOUND
//!                           └─ CreateTopics(t, n, replication) ─(exists already: fine)─>
//!                              metadata(t) until the brokers show it ─> count
//! ```
//!
//! librdkafka's admin calls are futures; the sink is synchronous, so [`block_on`] parks
//! the calling thread until librdkafka's admin thread completes them.

use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{Client, DefaultClientContext};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::ClientContext;

use crate::error::SinkError;

use super::codes;

/// Run a future to completion on this thread (the admin futures are woken by librdkafka's
/// admin thread; nothing else needs driving).
pub fn block_on<F: Future>(fut: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut fut = std::pin::pin!(fut);
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park();
    }
}

/// Metadata errors worth asking again about (a topic being created, a leader moving).
fn transient(code: RDKafkaErrorCode) -> bool {
    matches!(
        code,
        RDKafkaErrorCode::LeaderNotAvailable
            | RDKafkaErrorCode::NotLeaderForPartition
            | RDKafkaErrorCode::RequestTimedOut
            | RDKafkaErrorCode::BrokerTransportFailure
            | RDKafkaErrorCode::NotCoordinator
            | RDKafkaErrorCode::CoordinatorLoadInProgress
    )
}

/// The partition count of `topic`, `None` if the brokers do not know it. Transient
/// errors are asked again until `timeout`.
pub fn partitions<C: ClientContext>(
    client: &Client<C>,
    topic: &str,
    timeout: Duration,
) -> Result<Option<u32>, SinkError> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let md = client
            .fetch_metadata(Some(topic), left.max(Duration::from_millis(100)))
            .map_err(|e| {
                codes::kafka_error(&e, codes::READ_FAILED, &format!("metadata of {topic}"))
            })?;
        let Some(t) = md.topics().iter().find(|t| t.name() == topic) else {
            return Ok(None);
        };
        match t.error().map(RDKafkaErrorCode::from) {
            None if !t.partitions().is_empty() => return Ok(Some(t.partitions().len() as u32)),
            None => {}
            Some(RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownTopic) => {
                return Ok(None)
            }
            Some(code) if !transient(code) => {
                return Err(codes::error_code(
                    code,
                    codes::READ_FAILED,
                    &format!("metadata of {topic}"),
                ))
            }
            Some(_) => {}
        }
        if Instant::now() >= deadline {
            return Err(SinkError {
                code: codes::TIMEOUT,
                message: format!("metadata of {topic} not available within {timeout:?}"),
            });
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Create `topic` with `count` partitions; "already exists" is success (a racing creator
/// or a metadata view that lagged).
pub fn create(
    admin: &AdminClient<DefaultClientContext>,
    topic: &str,
    count: u32,
    replication: i32,
    timeout: Duration,
) -> Result<(), SinkError> {
    let count_i32 = i32::try_from(count).map_err(|_| SinkError {
        code: codes::TOPIC_CREATE_FAILED,
        message: format!("{count} partitions is too many"),
    })?;
    let new = NewTopic::new(topic, count_i32, TopicReplication::Fixed(replication));
    let opts = AdminOptions::new()
        .operation_timeout(Some(timeout))
        .request_timeout(Some(timeout));
    let what = format!("create topic {topic} ({count} partitions)");
    let results = block_on(admin.create_topics([&new], &opts))
        .map_err(|e| codes::kafka_error(&e, codes::TOPIC_CREATE_FAILED, &what))?;
    for r in results {
        match r {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((_, code)) => {
                return Err(codes::error_code(code, codes::TOPIC_CREATE_FAILED, &what))
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_on_runs_ready_and_woken_futures() {
        assert_eq!(block_on(async { 7 }), 7);
        // A future that wakes itself from another thread once.
        struct Later(Option<std::thread::JoinHandle<()>>);
        impl Future for Later {
            type Output = u8;
            fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<u8> {
                match self.0.take() {
                    Some(h) if h.is_finished() => Poll::Ready(1),
                    Some(h) => {
                        self.0 = Some(h);
                        let w = cx.waker().clone();
                        std::thread::spawn(move || {
                            std::thread::sleep(Duration::from_millis(5));
                            w.wake();
                        });
                        Poll::Pending
                    }
                    None => Poll::Ready(2),
                }
            }
        }
        let h = std::thread::spawn(|| {});
        let v = block_on(Later(Some(h)));
        assert!(v == 1 || v == 2);
    }
}
