//! Integration tests: self_install.
