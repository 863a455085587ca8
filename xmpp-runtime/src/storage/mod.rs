//! Storage backends: sled (embedded default) and memory (tests).
