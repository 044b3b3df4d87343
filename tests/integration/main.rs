//! Integration tests: each runs the real `calamari` binary in a temp directory and checks
//! its exit code, stdout, stderr and the files it leaves behind.

#![allow(unreachable_pub)] // test helpers are `pub` for the test modules, not an API
#![allow(clippy::print_stdout)] // `util::skip` prints `SKIP <test>: <reason>`; some tests print measurements
#![allow(clippy::disallowed_methods)] // tests set up and inspect files with std::fs directly

// The harness: sandbox, command builder, run assertions, polling to a deadline, skips.
mod util;

// The library's layers: no import goes up, no cycle between the files of a module.
mod layers;
// The exit-code policy and error shapes: lock timeouts, OctopusLastError.
mod errors;
// CLI contract: commands, both option forms, unknown commands and options, help, version.
mod cli;
// Variables input: plain and encrypted files, passwords from file or stdin, legacy formats, bad input.
mod variables;
// The versioned install with Success.txt: install, bundles, check-install, prune, faults.
mod self_install;
// Package extraction (every format), staging, hashes, kill and concurrency, find-package.
mod package;
// Octostache templating through `evaluate` and `substitute-in-files`.
mod templating;
// run-script: bootstraps, service messages, masking, secrets, processes and signals.
mod scripts;
// PowerShell under a real pwsh: run-script, the bootstrap's helpers, exit codes, modules, deploy-package.
mod powershell;
// deploy-package: conventions in order, DeployFailed, skip-if-installed, the bundled sample.
mod deploy;
// DeploymentJournal.xml under kill and concurrency, retention (`clean`), transfer-package.
mod journal;
// Structured configuration variables (JSON, YAML, XML, properties) through deploy-package.
mod structured;
// The standalone file commands: structured-config-variables, substitute-variables-in-files, substitute-in-files.
mod file_commands;
// XML configuration transforms (XDT) and .NET configuration variables through deploy-package.
mod config_transforms;
// Releases: the atomic current link, shared paths, health gates, rollback, kill -9 trials.
mod release;
// apply-delta and delta signature/create: the Octodiff conformance vectors, messages, round trips.
mod delta;
// Script isolation: the mutex under TentacleHome, waiting, timeouts, signals, flock checks.
mod isolation;
// The machine package cache: register-package, release-package-lock, clean-packages, registration by deploy/find.
mod package_retention;
// download-package against real feeds on loopback: NuGet v3, Maven, Helm (HTTPS), npm, PyPI, HTTP.
mod feeds;
// Real sshd servers on loopback for the fleet tests (and the Ansible tests after them).
mod sshd;
// `calamari fleet` over OpenSSH: push, no re-push, repair, concurrency, drops, full disk, limits, report.
mod fleet;
// The Ansible role in contrib/ansible with ansible-core against the same sshd servers.
mod ansible;
// The nginx feature against a real nginx on loopback.
mod nginx;
// What a new user met: messages naming the real mistake, no noise about unused features.
mod rough_edges;
// Operator locks: lock acquire|status|release, and deployments refused meanwhile.
mod operator_lock;
// `releases`, `releases mark-bad|mark-good`, `rollback --to`.
mod releases;
// deploy-package --plan: what would happen, as diffs, and nothing left behind.
mod plan;
