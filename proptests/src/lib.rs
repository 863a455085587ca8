//! Property tests for Vireo; the tests live in `tests/`.
