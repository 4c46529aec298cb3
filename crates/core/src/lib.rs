//! The session state machine, the Transport trait and the PipecatClient.
