//! Integration tests: templating.
