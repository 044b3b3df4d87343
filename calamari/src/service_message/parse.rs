//! Parsing `##octopus[...]` messages out of script output (reference §4.1).
//!
//! Filled in by the scripts work (issue 5): a stateful parser fed one line at a time that
//! returns plain text and decoded [`ServiceMessage`](super::ServiceMessage)s, handling either
//! quote style, several messages per line and messages split over lines.
