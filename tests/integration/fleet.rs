//! `calamari fleet` against real sshd servers on loopback (see `sshd.rs`): first push, no
//! re-push, half-installed repaired, two drivers at once, a dropped connection, a full
//! disk, parallel and batch limits, maxFailPercentage, the report, quoting, the password
//! never in any process's argv.

use std::path::Path;

use crate::sshd::{HostSpec, SshFleet};
#[allow(unused_imports)]
use crate::sshd as _;
use crate::util::{self, TestEnv, tar_gz};

const INSTANCE: &str = "OctopusServer";

fn version() -> String {
    let out = std::process::Command::new(util::bin()).arg("version").output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn report(path: &Path) -> Vec<serde_json::Value> {
    serde_json::from_str(&std::fs::read_to_string(path).expect("report written")).expect("report is JSON")
}

fn fleet(env: &TestEnv, fleet: &SshFleet, args: &[&str]) -> util::TestCommand {
    let mut all: Vec<String> = vec!["fleet".into()];
    all.extend(args.iter().map(|s| s.to_string()));
    all.extend(fleet.fleet_args());
    let refs: Vec<&str> = all.iter().map(String::as_str).collect();
    env.cmd(&refs)
}

/// A package with a substitution target and a deploy script that sets an output variable.
fn web_package(env: &TestEnv) -> std::path::PathBuf {
    tar_gz(
        env,
        "Acme.Web.1.0.0.tar.gz",
        &[
            ("index.html", b"Hello #{Name}", 0o644),
            ("Deploy.sh", b"echo \"deployed on $(hostname)\"\nset_octopusvariable Where \"$PWD\"\n", 0o755),
        ],
    )
}

fn deploy_variables(env: &TestEnv) -> std::path::PathBuf {
    env.variables(
        "vars.json",
        &[
            ("Octopus.Action.EnabledFeatures", "Octopus.Features.SubstituteInFiles", false),
            ("Octopus.Action.SubstituteInFiles.TargetFiles", "index.html", false),
            ("Name", "Fleet", false),
        ],
    )
}

#[test]
fn first_push_then_no_repush_and_the_report() {
    let Some(hosts) = SshFleet::start(3) else { return };
    let env = TestEnv::new();
    web_package(&env);
    deploy_variables(&env);
    let run = fleet(
        &env,
        &hosts,
        &["deploy-package", "--package=Acme.Web.1.0.0.tar.gz", "--variables=vars.json", "--report=report.json"],
    )
    .run();
    run.success().stdout_has("host1 | ").stdout_has("3 of 3 hosts succeeded").stdout_has("Pushing Calamari");
    let v = version();
    let entries = report(&env.path("report.json"));
    assert_eq!(entries.len(), 3);
    for (entry, host) in entries.iter().zip(&hosts.hosts) {
        assert_eq!(entry["host"], host.alias.as_str());
        assert_eq!(entry["exitCode"], 0, "{entry}");
        assert_eq!(entry["pushedCalamari"], true);
        assert!(entry["seconds"].as_f64().unwrap() > 0.0);
        let th = host.tentacle_home(INSTANCE);
        assert!(th.join(format!("Calamari/{v}/Success.txt")).is_file());
        assert!(th.join("Files/Acme.Web.1.0.0.tar.gz").is_file());
        let where_ = entry["outputVariables"]["Where"].as_str().expect("output variable collected");
        assert_eq!(std::fs::read_to_string(Path::new(where_).join("index.html")).unwrap(), "Hello Fleet");
        // The work directory is gone.
        assert_eq!(std::fs::read_dir(th.join("Work")).unwrap().count(), 0, "work directories left behind");
    }

    // Again: nothing pushed, the package is not sent again.
    let run = fleet(
        &env,
        &hosts,
        &["deploy-package", "--package=Acme.Web.1.0.0.tar.gz", "--variables=vars.json", "--report=report.json"],
    )
    .run();
    run.success().stdout_has("in the remote cache with the same hash: not sent");
    assert!(!run.stdout.contains("Pushing Calamari"), "{}", run.stdout);
    for entry in report(&env.path("report.json")) {
        assert_eq!(entry["pushedCalamari"], false, "{entry}");
        assert_eq!(entry["exitCode"], 0);
    }
}
