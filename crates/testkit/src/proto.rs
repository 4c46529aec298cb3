//! Pipecat's `frames.proto` (package `pipecat`), the WebSocket wire format.
//!
//! The generated code is the same file the WebSocket transport checks in; it is included here
//! so the testkit does not depend on the transport it tests.

#![allow(missing_docs, unreachable_pub, clippy::all)]

include!("../../websocket/src/proto/pipecat.rs");
