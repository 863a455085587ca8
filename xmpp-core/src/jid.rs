//! JIDs per RFC 7622.
