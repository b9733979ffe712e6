//! `conformance`: the home of the driver-conformance harness, mock drivers and test
//! peers (each arrives with its own issue), and of the cross-crate tests in `tests/`
//! that run the real gateway against the real drivers over real sockets.
//!
//! The library holds no harness yet; it re-exports the wire so cross-crate tests and
//! future harness code share one import path.

pub use proto::pb;
