//! Stub.
use super::{Attempt, Candidates, Edits};

pub(crate) fn replace(_text: &str, _candidates: &Candidates<'_>, _edits: &mut Edits) -> Result<(), Attempt> {
    Err(Attempt::Unparseable("not implemented".into()))
}
