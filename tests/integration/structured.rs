//! Integration tests: structured.
