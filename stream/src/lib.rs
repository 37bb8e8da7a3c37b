//! sluice-stream
