//! The KV message codec: which operation a message's headers say it is.

use crate::entry::Operation;
use async_nats::header::{self, HeaderMap};

pub(super) const KV_OPERATION: &str = "KV-Operation";

pub(crate) fn operation_of(headers: Option<&HeaderMap>) -> Operation {
    let Some(headers) = headers else {
        return Operation::Put;
    };
    if let Some(op) = headers.get(KV_OPERATION) {
        return match op.as_str() {
            "DEL" => Operation::Delete,
            "PURGE" => Operation::Purge,
            _ => Operation::Put,
        };
    }
    match headers.get(header::NATS_MARKER_REASON).map(|r| r.as_str()) {
        Some("MaxAge") => Operation::Expired,
        Some("Purge") => Operation::Purge,
        Some("Remove") => Operation::Delete,
        _ => Operation::Put,
    }
}
