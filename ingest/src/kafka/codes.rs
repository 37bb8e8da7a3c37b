//! The Kafka sink's stable error codes, and the mapping from librdkafka's errors to them.
//!
//! librdkafka reports hundreds of codes; a replay needs to tell its operator only a few
//! things: the URL is wrong, no broker answers, the topic is missing (and creation is
//! off), the credentials are refused, a deadline passed, or the broker cannot do what
//! the sink needs. Everything else keeps librdkafka's own name in the message under the
//! code of the operation that failed. Transient errors (leader moves, timeouts of one
//! request, broken connections) never reach this mapping while the delivery deadline
//! lasts: librdkafka retries them itself, and the idempotent producer makes its retries
//! safe.

use rdkafka::error::{KafkaError, RDKafkaErrorCode as C};

use crate::error::SinkError;

/// The `kafka://` URL does not parse.
pub const URL_INVALID: &str = "KAFKA_URL_INVALID";
/// No broker could be reached (connection refused, name not resolved, all down).
pub const BROKERS_UNREACHABLE: &str = "KAFKA_BROKERS_UNREACHABLE";
/// The topic does not exist and the sink may not create it (`--no-create-topics`).
pub const TOPIC_NOT_FOUND: &str = "KAFKA_TOPIC_NOT_FOUND";
/// The topic exists but has no such partition.
pub const PARTITION_NOT_FOUND: &str = "KAFKA_PARTITION_NOT_FOUND";
/// The broker refused an operation on authorization grounds (topic, cluster, idempotent
/// write) or the client failed to authenticate.
pub const NOT_AUTHORIZED: &str = "KAFKA_NOT_AUTHORIZED";
/// A delivery, metadata or read deadline passed with the brokers still not answering.
pub const TIMEOUT: &str = "KAFKA_TIMEOUT";
/// The broker lacks a feature the sink needs (an API version, zstd, idempotence).
pub const UNSUPPORTED: &str = "KAFKA_UNSUPPORTED";
/// Creating a topic failed (other than "already exists").
pub const TOPIC_CREATE_FAILED: &str = "KAFKA_TOPIC_CREATE_FAILED";
/// A record was not acknowledged for another reason.
pub const PRODUCE_FAILED: &str = "KAFKA_PRODUCE_FAILED";
/// The records of one append did not get consecutive offsets (another producer wrote to
/// the partition meanwhile): receipts could not name their positions.
pub const OFFSETS_NOT_CONSECUTIVE: &str = "KAFKA_OFFSETS_NOT_CONSECUTIVE";
/// Reading a partition back failed.
pub const READ_FAILED: &str = "KAFKA_READ_FAILED";
/// The client could not be configured or created (e.g. a bad librdkafka property).
pub const CLIENT_FAILED: &str = "KAFKA_CLIENT_FAILED";

/// The sink code for a librdkafka error code; `fallback` for the ones without their own.
pub fn code_of(code: C, fallback: &'static str) -> &'static str {
    match code {
        C::BrokerTransportFailure | C::AllBrokersDown | C::Resolve => BROKERS_UNREACHABLE,
        C::UnknownTopic | C::UnknownTopicOrPartition => TOPIC_NOT_FOUND,
        C::UnknownPartition => PARTITION_NOT_FOUND,
        C::TopicAuthorizationFailed
        | C::ClusterAuthorizationFailed
        | C::GroupAuthorizationFailed
        | C::TransactionalIdAuthorizationFailed
        | C::DelegationTokenAuthorizationFailed
        | C::Authentication
        | C::SaslAuthenticationFailed => NOT_AUTHORIZED,
        C::MessageTimedOut | C::OperationTimedOut | C::RequestTimedOut => TIMEOUT,
        C::UnsupportedVersion
        | C::UnsupportedFeature
        | C::UnsupportedCompressionType
        | C::UnsupportedForMessageFormat => UNSUPPORTED,
        _ => fallback,
    }
}

/// A [`SinkError`] for a librdkafka error met while doing `what`.
pub fn kafka_error(e: &KafkaError, fallback: &'static str, what: &str) -> SinkError {
    let code = match e {
        KafkaError::ClientConfig(..) | KafkaError::ClientCreation(_) => CLIENT_FAILED,
        _ => e
            .rdkafka_error_code()
            .map_or(fallback, |c| code_of(c, fallback)),
    };
    SinkError {
        code,
        message: format!("{what}: {e}"),
    }
}

/// A [`SinkError`] for a bare librdkafka error code (per-topic results, delivery reports).
pub fn error_code(code: C, fallback: &'static str, what: &str) -> SinkError {
    SinkError {
        code: code_of(code, fallback),
        message: format!("{what}: {code}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_the_operator_acts_on() {
        let f = PRODUCE_FAILED;
        assert_eq!(code_of(C::AllBrokersDown, f), BROKERS_UNREACHABLE);
        assert_eq!(code_of(C::BrokerTransportFailure, f), BROKERS_UNREACHABLE);
        assert_eq!(code_of(C::Resolve, f), BROKERS_UNREACHABLE);
        assert_eq!(code_of(C::UnknownTopicOrPartition, f), TOPIC_NOT_FOUND);
        assert_eq!(code_of(C::UnknownTopic, f), TOPIC_NOT_FOUND);
        assert_eq!(code_of(C::UnknownPartition, f), PARTITION_NOT_FOUND);
        assert_eq!(code_of(C::TopicAuthorizationFailed, f), NOT_AUTHORIZED);
        assert_eq!(code_of(C::ClusterAuthorizationFailed, f), NOT_AUTHORIZED);
        assert_eq!(code_of(C::SaslAuthenticationFailed, f), NOT_AUTHORIZED);
        assert_eq!(code_of(C::MessageTimedOut, f), TIMEOUT);
        assert_eq!(code_of(C::UnsupportedCompressionType, f), UNSUPPORTED);
        // Everything else keeps the operation's code.
        assert_eq!(
            code_of(C::InvalidReplicationFactor, TOPIC_CREATE_FAILED),
            TOPIC_CREATE_FAILED
        );
        assert_eq!(code_of(C::MessageSizeTooLarge, f), f);
    }

    #[test]
    fn wrapped_errors() {
        let e = kafka_error(
            &KafkaError::MessageProduction(C::TopicAuthorizationFailed),
            PRODUCE_FAILED,
            "append to t/0",
        );
        assert_eq!(e.code, NOT_AUTHORIZED);
        assert!(e.message.starts_with("append to t/0: "), "{}", e.message);
        let e = kafka_error(&KafkaError::Canceled, READ_FAILED, "read");
        assert_eq!(e.code, READ_FAILED);
        let e = kafka_error(
            &KafkaError::ClientCreation("no".into()),
            PRODUCE_FAILED,
            "connect",
        );
        assert_eq!(e.code, CLIENT_FAILED);
        let e = error_code(C::TopicAlreadyExists, TOPIC_CREATE_FAILED, "create t");
        assert_eq!(e.code, TOPIC_CREATE_FAILED);
    }
}
