//! The one mapping from NATS failures to coordkv's error vocabulary.

use crate::error::{Error, ErrorKind, Result};
use async_nats::jetstream::{self};
use std::error::Error as StdError;
use std::future::Future;
use std::time::Duration;

pub(super) fn is_missing_stream(err: &(dyn StdError + 'static)) -> bool {
    jetstream_code(err) == Some(10059) || chain_text(err).contains("stream not found")
}

pub(super) fn chain_text(err: &(dyn StdError + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = s.source();
    }
    text
}

/// The JetStream API error code anywhere in the chain (`10071`, `10059`, …).
pub(super) fn jetstream_code(err: &(dyn StdError + 'static)) -> Option<u64> {
    let mut current = Some(err);
    while let Some(e) = current {
        if let Some(js) = e.downcast_ref::<jetstream::Error>() {
            return Some(js.error_code().0);
        }
        current = e.source();
    }
    // Some error kinds carry the API error inside the kind, not as a source; their
    // text always reads "... (code N, error code M)".
    let text = chain_text(err);
    let at = text.find("error code ")? + "error code ".len();
    let digits: String = text[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// A request that got no answer within `limit`.
pub(super) fn no_answer(what: &str, limit: Duration) -> Error {
    Error::new(
        ErrorKind::Timeout,
        format!("{what}: no answer within {} ms", limit.as_millis()),
    )
}

/// Awaits one NATS request bounded by `limit`: its failure mapped by [`map_error`], its
/// silence a `Timeout` naming `what`.
pub(super) async fn within<T, E: StdError + 'static>(
    limit: Duration,
    what: &str,
    request: impl Future<Output = std::result::Result<T, E>>,
) -> Result<T> {
    match tokio::time::timeout(limit, request).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(map_error(&e)),
        Err(_) => Err(no_answer(what, limit)),
    }
}

/// THE mapping from NATS failures to coordkv's error vocabulary.
pub fn map_error(err: &(dyn StdError + 'static)) -> Error {
    let text = chain_text(err);
    let lower = text.to_ascii_lowercase();
    let kind = match jetstream_code(err) {
        // wrong last sequence, and its constant-form twin: a lost compare-and-set
        Some(10071) | Some(10164) => ErrorKind::Conflict,
        // JetStream not enabled (server / account)
        Some(10076) | Some(10039) => {
            return Error::new(
                ErrorKind::Unavailable,
                format!("JetStream is not enabled for this server or account: {text}"),
            )
        }
        // the bucket's stream does not exist (deleted under us)
        Some(10059) => ErrorKind::Unavailable,
        // insufficient resources, message too large, maximum bytes / messages
        Some(10023) | Some(10054) | Some(10028) | Some(10077) => ErrorKind::Limit,
        _ if lower.contains("permissions violation") => ErrorKind::PermissionDenied,
        _ if lower.contains("authorization violation")
            || lower.contains("authentication")
            || lower.contains("failed signing nonce")
            || lower.contains("user authentication expired") =>
        {
            ErrorKind::Unauthorized
        }
        // async-nats spells "no responders" on a JetStream API subject this way.
        _ if lower.contains("no responders")
            || lower.contains("no stream found")
            || lower.contains("requested jetstream resource does not exist") =>
        {
            return Error::new(
                ErrorKind::Unavailable,
                format!(
                    "nothing answered on the JetStream subject (JetStream disabled, or the \
                     bucket's stream is gone): {text}"
                ),
            )
        }
        _ if lower.contains("timed out") || lower.contains("timeout") => {
            return Error::new(
                ErrorKind::Timeout,
                format!(
                "NATS did not answer in time (server down, or a cluster electing a leader): {text}"
            ),
            )
        }
        _ if lower.contains("max payload")
            || lower.contains("maximum payload")
            || lower.contains("exceeds") =>
        {
            ErrorKind::Limit
        }
        _ if lower.contains("broken pipe")
            || lower.contains("disconnected")
            || lower.contains("connection")
            || lower.contains("i/o")
            || lower.contains("io error")
            || lower.contains("dns")
            || lower.contains("tls")
            || lower.contains("max reconnects") =>
        {
            ErrorKind::Unavailable
        }
        _ if lower.contains("server parse") || lower.contains("failed to parse server") => {
            ErrorKind::InvalidArgument
        }
        _ => ErrorKind::Internal,
    };
    Error::new(kind, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jetstream_error_codes_decide_the_kind() {
        let conflict: jetstream::Error = serde_json::from_str(
            r#"{"code": 400, "err_code": 10071, "description": "wrong last sequence: 7"}"#,
        )
        .unwrap();
        assert_eq!(map_error(&conflict).kind(), ErrorKind::Conflict);
        let constant: jetstream::Error = serde_json::from_str(
            r#"{"code": 400, "err_code": 10164, "description": "wrong last sequence"}"#,
        )
        .unwrap();
        assert_eq!(map_error(&constant).kind(), ErrorKind::Conflict);
        let disabled: jetstream::Error = serde_json::from_str(
            r#"{"code": 503, "err_code": 10076, "description": "jetstream not enabled"}"#,
        )
        .unwrap();
        let e = map_error(&disabled);
        assert_eq!(e.kind(), ErrorKind::Unavailable);
        assert!(e.message().contains("JetStream is not enabled"), "{e}");
    }
}
