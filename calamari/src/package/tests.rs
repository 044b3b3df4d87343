//! Extraction tests.
