//! The engine-output generator (in progress).
