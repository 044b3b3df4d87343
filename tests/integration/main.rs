//! Integration tests: each runs the real `calamari` binary in a temp directory and checks
//! its exit code, stdout, stderr and the files it leaves behind.

#![allow(unreachable_pub)] // test helpers are `pub` for the test modules, not an API
#![allow(clippy::print_stdout)] // tests print `SKIP <reason>` when the machine lacks something

mod util;

// CLI contract: commands, options, exit codes, help.
mod cli;
// Variables input: files, encryption, legacy formats, passwords.
mod variables;
// The versioned install with Success.txt, bundles, faults.
mod self_install;
// Package extraction, names, staging, hashes, find-package.
mod package;
// Octostache templating through `evaluate` and substitute-in-files.
mod templating;
// run-script, bootstraps, service messages, masking, processes.
mod scripts;
// deploy-package conventions and the sample deployment.
mod deploy;
// DeploymentJournal.xml, retention (`clean`), transfer-package.
mod journal;
// Structured configuration variables (JSON, YAML, XML, properties).
mod structured;
