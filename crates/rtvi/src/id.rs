//! Message ids for client messages.

/// A fresh message id, unique across every client in the process (and beyond): a random
/// UUIDv4 in its simple 32-hex-digit form. The server treats ids as opaque strings.
pub fn fresh_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}
