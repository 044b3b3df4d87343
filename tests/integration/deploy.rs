//! Integration tests: deploy.
