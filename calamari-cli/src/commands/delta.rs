//! `calamari delta signature|create`: write Octodiff signatures and deltas (the server's
//! side of `apply-delta`), byte for byte what Octodiff writes.

use std::path::PathBuf;

use calamari::{DEFAULT_CHUNK_SIZE, DeltaRequest, Outcome, SignatureRequest, create_delta, create_signature};

use crate::context::Context;

/// Options of `delta`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(subcommand)]
    command: DeltaCommand,
}

#[derive(Debug, clap::Subcommand)]
enum DeltaCommand {
    /// Write the signature (Adler32, SHA1) of a basis file.
    Signature {
        /// The basis file.
        basis: PathBuf,
        /// The signature file to write (.octosig).
        signature: PathBuf,
        /// Bytes per chunk, 128 to 31744.
        #[arg(long = "chunkSize", value_name = "BYTES", default_value_t = DEFAULT_CHUNK_SIZE)]
        chunk_size: u32,
        /// Report progress.
        #[arg(long = "progress")]
        progress: bool,
    },
    /// Write the delta from the basis a signature describes to a new file.
    Create {
        /// The basis's signature (.octosig).
        signature: PathBuf,
        /// The new file.
        new_file: PathBuf,
        /// The delta file to write (.octodelta).
        delta: PathBuf,
        /// Report progress.
        #[arg(long = "progress")]
        progress: bool,
    },
}

pub(crate) fn exec(args: Args, ctx: &Context) -> calamari::Result<Outcome> {
    match args.command {
        DeltaCommand::Signature { basis, signature, chunk_size, progress } => {
            create_signature(&SignatureRequest { basis, signature, chunk_size, progress }, &ctx.log)
        }
        DeltaCommand::Create { signature, new_file, delta, progress } => {
            create_delta(&DeltaRequest { signature, new_file, delta, progress }, &ctx.log)
        }
    }
}
