//! TLS: certificates, rustls configuration, channel binding.
