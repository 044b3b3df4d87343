//! `download-package` against real feeds on loopback that the tests start: a static NuGet
//! v3 feed, a Maven and a Helm repository (served by `feeds/server.py`, which can also
//! demand basic auth, fail the first requests, hold requests and speak HTTPS), pypiserver
//! and verdaccio. Each checks the cache file, the output variables and the messages.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use sha1::Digest as _;

use crate::util::{PROMPTLY, TestEnv, skip, wait_for, wait_until};

const STARTUP: Duration = Duration::from_secs(60);

/// A server process, killed when dropped.
struct Server {
    child: Child,
    port: u16,
    /// The request log (`server.py` only).
    log: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}/{path}", self.port)
    }

    /// The request log lines so far.
    fn requests(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log).unwrap_or_default().lines().map(str::to_string).collect()
    }

    /// How many answered requests were `GET <path>` (ignoring any query).
    fn gets(&self, path: &str) -> usize {
        self.requests().iter().filter(|l| l.starts_with(&format!("GET {path} "))).count()
    }
}

fn have(program: &str, probe: &[&str]) -> bool {
    Command::new(program).args(probe).stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
}

/// Starts `feeds/server.py` over `root` with `extra` options; `None` (after a skip) without python3.
fn static_server(env: &TestEnv, root: &Path, extra: &[&str]) -> Option<Server> {
    if !have("python3", &["--version"]) {
        skip("python3 is not installed: cannot serve the feed");
        return None;
    }
    let n = std::fs::read_dir(env.root()).map(|d| d.count()).unwrap_or(0);
    let port_file = env.path(format!("server-{n}.port"));
    let log = env.path(format!("server-{n}.log"));
    let script = crate::util::repo_root().join("tests/integration/feeds/server.py");
    let child = Command::new("python3")
        .arg(script)
        .arg("--root")
        .arg(root)
        .arg("--port-file")
        .arg(&port_file)
        .arg("--log")
        .arg(&log)
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn python3");
    let mut server = Server { child, port: 0, log };
    server.port = wait_for(STARTUP, "server.py to listen", || {
        std::fs::read_to_string(&port_file).ok().and_then(|p| p.trim().parse().ok())
    });
    Some(server)
}

/// A port the OS just handed out (for servers that cannot be asked to pick one).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// Polls until `port` on loopback accepts connections (the servers listen once ready);
/// `false` when the process exits first or the deadline passes.
fn wait_listening(child: &mut Child, port: u16) -> bool {
    let deadline = std::time::Instant::now() + STARTUP;
    while std::time::Instant::now() < deadline {
        if child.try_wait().ok().flatten().is_some() {
            return false;
        }
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

fn sha1_hex(bytes: &[u8]) -> String {
    hex::encode(sha1::Sha1::digest(bytes))
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(bytes))
}

fn sha512_b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(sha2::Sha512::digest(bytes))
}

/// Deterministic bytes standing in for a package.
fn payload(seed: u8, len: usize) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
}

/// A `.nupkg` (a zip with the nuspec at its root).
fn nupkg(id: &str, version: &str) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default();
    zip.start_file(format!("{id}.nuspec"), options).unwrap();
    let nuspec = format!(
        "<?xml version=\"1.0\"?><package><metadata><id>{id}</id><version>{version}</version></metadata></package>"
    );
    std::io::Write::write_all(&mut zip, nuspec.as_bytes()).unwrap();
    zip.start_file("content/readme.txt", options).unwrap();
    std::io::Write::write_all(&mut zip, &payload(7, 5000)).unwrap();
    zip.finish().unwrap().into_inner()
}

/// `calamari download-package` with the sandbox as TentacleHome and `args` after.
fn download(env: &TestEnv, args: &[&str]) -> crate::util::TestCommand {
    env.cmd(&["download-package"]).args(args).env("TentacleHome", env.path("tentacle"))
}

trait Args {
    fn args(self, args: &[&str]) -> Self;
}

impl Args for crate::util::TestCommand {
    fn args(mut self, args: &[&str]) -> Self {
        for a in args {
            self = self.arg(a);
        }
        self
    }
}

/// The files in `Files/<feed>` of the sandbox's TentacleHome.
fn cache_files(env: &TestEnv, feed: &str) -> Vec<PathBuf> {
    let dir = env.path("tentacle/Files").join(feed);
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(dir).map(|d| d.flatten().map(|e| e.path()).collect()).unwrap_or_default();
    files.sort();
    files
}

/// Checks the output variables against the file they name, its bytes against `expected`,
/// and its name against the cache form `<id>@S<version>@<32 hex><ext>` in `Files/<feed>`.
#[track_caller]
fn assert_cached(
    env: &TestEnv,
    run: &crate::util::Run,
    feed: &str,
    escaped_id: &str,
    version: &str,
    ext: &str,
    expected: &[u8],
) -> PathBuf {
    let path =
        PathBuf::from(run.output_variable("StagedPackage.FullPathOnRemoteMachine").expect("FullPathOnRemoteMachine"));
    assert_eq!(path.parent(), Some(env.path("tentacle/Files").join(feed).as_path()), "{run:?}");
    let name = path.file_name().unwrap().to_str().unwrap().to_string();
    let prefix = format!("{escaped_id}@S{version}@");
    assert!(name.starts_with(&prefix) && name.ends_with(ext), "cache name {name} is not {prefix}<hex>{ext}");
    let hex_part = &name[prefix.len()..name.len() - ext.len()];
    assert!(
        hex_part.len() == 32 && hex_part.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_lowercase()),
        "{name}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), expected, "the cached bytes are the feed's");
    assert_eq!(run.output_variable("StagedPackage.Hash"), Some(sha1_hex(expected)));
    assert_eq!(run.output_variable("StagedPackage.Size"), Some(expected.len().to_string()));
    assert!(cache_files(env, feed).iter().all(|f| !f.to_string_lossy().ends_with(".downloading")));
    path
}

// ---------------------------------------------------------------------------------------
// NuGet v3

/// A static NuGet v3 feed under `root`: service index, registration (with the SHA-512 of
/// `published`, which may differ from what is served) and flat container.
fn nuget_feed(root: &Path, id: &str, version: &str, served: &[u8], published: &[u8], registration: bool) {
    let lower = id.to_ascii_lowercase();
    let write = |rel: &str, bytes: &[u8]| {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    };
    let mut resources = vec![serde_json::json!({"@id": "flat/", "@type": "PackageBaseAddress/3.0.0"})];
    if registration {
        resources.push(serde_json::json!({"@id": "registration/", "@type": ["RegistrationsBaseUrl/3.6.0", "RegistrationsBaseUrl"]}));
    }
    write("v3/index.json", serde_json::json!({"version": "3.0.0", "resources": resources}).to_string().as_bytes());
    write(&format!("v3/flat/{lower}/{version}/{lower}.{version}.nupkg"), served);
    let leaf = serde_json::json!({
        "catalogEntry": {"id": id, "version": version, "packageHash": sha512_b64(published), "packageHashAlgorithm": "SHA512"},
        "packageContent": format!("../../flat/{lower}/{version}/{lower}.{version}.nupkg"),
    });
    let index =
        serde_json::json!({"count": 1, "items": [{"count": 1, "lower": version, "upper": version, "items": [leaf]}]});
    write(&format!("v3/registration/{lower}/index.json"), index.to_string().as_bytes());
}

#[test]
fn nuget_v3_downloads_into_the_cache_reuses_it_and_force_downloads_again() {
    let env = TestEnv::new();
    let package = nupkg("Acme.Web", "1.2.3");
    nuget_feed(&env.path("feed"), "Acme.Web", "1.2.3", &package, &package, true);
    let Some(server) = static_server(&env, &env.path("feed"), &[]) else { return };
    let feed_uri = server.url("v3/index.json");
    let args =
        ["--packageId", "Acme.Web", "--packageVersion", "1.2.3", "--feedId", "feeds-nuget", "--feedUri", &feed_uri];
    let nupkg_path = "/v3/flat/acme.web/1.2.3/acme.web.1.2.3.nupkg";

    let first = download(&env, &args).run();
    first.success().stdout_has("Downloading package Acme.Web v1.2.3 from feed 'feeds-nuget'");
    let path = assert_cached(&env, &first, "feeds-nuget", "Acme.Web", "1.2.3", ".nupkg", &package);
    assert_eq!(server.gets(nupkg_path), 1, "{:?}", server.requests());
    assert!(server.gets("/v3/registration/acme.web/index.json") >= 1, "the registration gave the URL and SHA-512");

    // find-package reads the layout download-package writes.
    env.cmd(&[
        "find-package",
        "--packageId",
        "Acme.Web",
        "--packageVersion",
        "1.2.3",
        "--packageHash",
        &sha1_hex(&package),
    ])
    .env("TentacleHome", env.path("tentacle"))
    .run()
    .success()
    .stdout_has("foundPackage");

    // Again: the cached file (its SHA-512 is the published one) is reused, not fetched.
    let second = download(&env, &args).run();
    second.success().stdout_has("already in the package cache");
    assert_eq!(second.output_variable("StagedPackage.FullPathOnRemoteMachine"), Some(path.display().to_string()));
    assert_eq!(second.output_variable("StagedPackage.Hash"), Some(sha1_hex(&package)));
    assert_eq!(server.gets(nupkg_path), 1, "reused without a download: {:?}", server.requests());

    // --forcePackageDownload fetches it again, into a new cache name.
    let forced = download(&env, &args).arg("--forcePackageDownload").run();
    forced.success();
    let new_path = assert_cached(&env, &forced, "feeds-nuget", "Acme.Web", "1.2.3", ".nupkg", &package);
    assert_ne!(new_path, path);
    assert_eq!(server.gets(nupkg_path), 2);
}

#[test]
fn nuget_v3_without_a_registration_uses_the_flat_container() {
    let env = TestEnv::new();
    let package = nupkg("Acme.Flat", "2.0.0");
    nuget_feed(&env.path("feed"), "Acme.Flat", "2.0.0", &package, &package, false);
    let Some(server) = static_server(&env, &env.path("feed"), &[]) else { return };
    // The feed URI without index.json works too.
    let run = download(
        &env,
        &["--packageId", "Acme.Flat", "--packageVersion", "2.0", "--feedId", "f", "--feedUri", &server.url("v3")],
    )
    .run();
    run.success();
    assert_eq!(server.gets("/v3/flat/acme.flat/2.0.0/acme.flat.2.0.0.nupkg"), 1, "{:?}", server.requests());
    assert_cached(&env, &run, "f", "Acme.Flat", "2.0", ".nupkg", &package);
}

#[test]
fn a_package_that_does_not_match_the_published_sha512_is_refused_and_not_cached() {
    let env = TestEnv::new();
    let real = nupkg("Acme.Bad", "1.0.0");
    let mut corrupt = real.clone();
    let last = corrupt.len() - 30;
    corrupt[last] ^= 0xff;
    nuget_feed(&env.path("feed"), "Acme.Bad", "1.0.0", &corrupt, &real, true);
    let Some(server) = static_server(&env, &env.path("feed"), &[]) else { return };
    let uri = server.url("v3/index.json");
    let run = download(
        &env,
        &[
            "--packageId",
            "Acme.Bad",
            "--packageVersion",
            "1.0.0",
            "--feedId",
            "bad",
            "--feedUri",
            &uri,
            "--attempts",
            "2",
            "--attemptBackoffSeconds",
            "0",
        ],
    )
    .run();
    run.code(1)
        .stderr_has(&format!("Failed to download package Acme.Bad v1.0.0 from feed: '{uri}' (feed bad, 2 attempt(s))"))
        .stderr_has(&format!(
            "package Acme.Bad v1.0.0 downloaded from {}",
            server.url("v3/flat/acme.bad/1.0.0/acme.bad.1.0.0.nupkg")
        ))
        .stderr_has(&format!("has SHA-512 {}, but the feed publishes {}", sha512_b64(&corrupt), sha512_b64(&real)))
        .stderr_has("feed 'bad'");
    assert_eq!(cache_files(&env, "bad"), Vec::<PathBuf>::new(), "nothing is left in the cache");
}

// ---------------------------------------------------------------------------------------
// Maven, behind basic auth

fn maven_repo(root: &Path, jar: &[u8], sha1_of: &[u8]) {
    let dir = root.join("com/acme/app/1.0.0");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("app-1.0.0.jar"), jar).unwrap();
    std::fs::write(dir.join("app-1.0.0.jar.sha1"), format!("{}  app-1.0.0.jar\n", sha1_hex(sha1_of))).unwrap();
}

const SECRET: &str = "Sup3r-S3cret-Pw";

#[test]
fn maven_behind_basic_auth_downloads_with_the_password_from_a_file_and_never_shows_it() {
    let env = TestEnv::new();
    let jar = payload(3, 200_000);
    maven_repo(&env.path("repo"), &jar, &jar);
    let auth = format!("deployer:{SECRET}");
    let Some(server) = static_server(&env, &env.path("repo"), &["--auth", &auth]) else { return };
    let uri = server.url("");
    let password_file = env.write("feed-password", format!("{SECRET}\n"));
    let base = [
        "--packageId",
        "com.acme:app",
        "--packageVersion",
        "1.0.0",
        "--packageVersionFormat",
        "Maven",
        "--feedType",
        "Maven",
        "--feedId",
        "maven",
        "--feedUri",
        &uri,
        "--feedUsername",
        "deployer",
    ];

    let run = download(&env, &base).arg("--feedPasswordFile").arg(&password_file).run();
    run.success().output_lacks(SECRET);
    let path = PathBuf::from(run.output_variable("StagedPackage.FullPathOnRemoteMachine").unwrap());
    let name = path.file_name().unwrap().to_str().unwrap();
    assert!(name.starts_with("com.acme%3Aapp@M1.0.0@") && name.ends_with(".jar"), "{name}");
    assert_eq!(std::fs::read(&path).unwrap(), jar);
    assert_eq!(run.output_variable("StagedPackage.Hash"), Some(sha1_hex(&jar)));
    assert_eq!(server.gets("/com/acme/app/1.0.0/app-1.0.0.jar.sha1"), 1, "the published SHA-1 was read");

    // Wrong credentials: 401, named with the feed and package; no password in the output.
    let wrong = download(&env, &base).arg("--feedPassword=not-the-password").arg("--forcePackageDownload").run();
    wrong
        .code(1)
        .stderr_has(&format!(
            "Failed to download package com.acme:app v1.0.0 from feed: '{uri}' (feed maven, 1 attempt(s))"
        ))
        .stderr_has(&format!(
            "feed 'maven' ({uri}) answered HTTP 401 for {}com/acme/app/1.0.0/app-1.0.0.jar (package com.acme:app)",
            uri
        ))
        .output_lacks("not-the-password")
        .output_lacks(SECRET);

    // Credentials in the feed URI work and are never printed.
    let with_userinfo = format!("http://deployer:{SECRET}@127.0.0.1:{}/", server.port);
    let run = download(
        &env,
        &[
            "--packageId",
            "com.acme:app",
            "--packageVersion",
            "1.0.0",
            "--packageVersionFormat",
            "Maven",
            "--feedType",
            "maven",
            "--feedId",
            "maven",
            "--feedUri",
            &with_userinfo,
            "--forcePackageDownload",
        ],
    )
    .run();
    run.success().output_lacks(SECRET).stdout_has(&format!("'{uri}'"));
}

#[test]
fn a_maven_artifact_that_does_not_match_its_sha1_file_leaves_nothing_in_the_cache() {
    let env = TestEnv::new();
    let jar = payload(4, 10_000);
    let mut corrupt = jar.clone();
    corrupt[100] ^= 1;
    maven_repo(&env.path("repo"), &corrupt, &jar);
    let Some(server) = static_server(&env, &env.path("repo"), &[]) else { return };
    let run = download(
        &env,
        &[
            "--packageId",
            "com.acme:app",
            "--packageVersion",
            "1.0.0",
            "--feedType",
            "Maven",
            "--feedId",
            "maven",
            "--feedUri",
            &server.url(""),
            "--attempts",
            "1",
        ],
    )
    .run();
    run.code(1).stderr_has(&format!(
        "package com.acme:app v1.0.0 downloaded from {} has SHA-1 {}, but the feed publishes {}",
        server.url("com/acme/app/1.0.0/app-1.0.0.jar"),
        sha1_hex(&corrupt),
        sha1_hex(&jar)
    ));
    assert_eq!(cache_files(&env, "maven"), Vec::<PathBuf>::new());
}

#[test]
fn a_missing_maven_artifact_names_the_http_404_and_is_not_retried() {
    let env = TestEnv::new();
    let jar = payload(5, 1000);
    maven_repo(&env.path("repo"), &jar, &jar);
    let Some(server) = static_server(&env, &env.path("repo"), &[]) else { return };
    let uri = server.url("");
    let run = download(
        &env,
        &[
            "--packageId",
            "com.acme:app",
            "--packageVersion",
            "2.0.0",
            "--feedType",
            "Maven",
            "--feedId",
            "maven",
            "--feedUri",
            &uri,
            "--attempts",
            "3",
            "--attemptBackoffSeconds",
            "0",
        ],
    )
    .run();
    run.code(1)
        .stderr_has(&format!(
            "Failed to download package com.acme:app v2.0.0 from feed: '{uri}' (feed maven, 1 attempt(s))"
        ))
        .stderr_has(&format!(
            "feed 'maven' ({uri}) has no package com.acme:app version 2.0.0: Failed to find the Maven artifact: {}com/acme/app/2.0.0/app-2.0.0.{{jar,war,ear,rar,zip,tar.gz,tgz,tar.bz2,tbz,tar,nupkg}} each answered HTTP 404",
            uri
        ));
    // One HEAD per extension, once: a 404 is final.
    let answered: Vec<String> = server.requests().into_iter().filter(|l| !l.starts_with("START ")).collect();
    assert_eq!(answered.len(), 11, "{answered:?}");
    assert!(
        answered.iter().all(|l| l.starts_with("HEAD /com/acme/app/2.0.0/app-2.0.0.") && l.ends_with(" 404")),
        "{answered:?}"
    );
    assert_eq!(cache_files(&env, "maven"), Vec::<PathBuf>::new());
}

// ---------------------------------------------------------------------------------------
// Helm, over HTTPS with a CA the test makes

/// A CA and a certificate for 127.0.0.1 signed by it: (ca.pem, cert.pem, key.pem).
fn make_ca(env: &TestEnv) -> Option<(PathBuf, PathBuf, PathBuf)> {
    if !have("openssl", &["version"]) {
        skip("openssl is not installed: cannot make a CA for the HTTPS feed");
        return None;
    }
    let dir = env.path("tls");
    std::fs::create_dir_all(&dir).unwrap();
    let run = |args: &[&str]| {
        let out = Command::new("openssl").args(args).current_dir(&dir).output().expect("openssl");
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=Calamari Test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "key.pem",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "cert.pem",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ]);
    Some((dir.join("ca.pem"), dir.join("cert.pem"), dir.join("key.pem")))
}

#[test]
fn helm_over_https_trusts_the_ca_in_ssl_cert_file_and_checks_the_digest() {
    let env = TestEnv::new();
    let Some((ca, cert, key)) = make_ca(&env) else { return };
    let chart = crate::util::tar_gz(
        &env,
        "acme-chart-0.1.0.tgz",
        &[("acme-chart/Chart.yaml", b"name: acme-chart\nversion: 0.1.0\n", 0o644)],
    );
    let chart_bytes = std::fs::read(&chart).unwrap();
    let repo = env.path("charts");
    std::fs::create_dir_all(repo.join("files")).unwrap();
    std::fs::copy(&chart, repo.join("files/acme-chart-0.1.0.tgz")).unwrap();
    let index = format!(
        "apiVersion: v1\nentries:\n  acme-chart:\n  - name: acme-chart\n    version: 0.2.0\n    urls: [files/none.tgz]\n  - name: acme-chart\n    version: 0.1.0\n    digest: {}\n    urls:\n    - files/acme-chart-0.1.0.tgz\n",
        sha256_hex(&chart_bytes)
    );
    std::fs::write(repo.join("index.yaml"), index).unwrap();
    let Some(server) = static_server(&env, &repo, &["--tls", cert.to_str().unwrap(), key.to_str().unwrap()]) else {
        return;
    };
    let uri = format!("https://127.0.0.1:{}/", server.port);
    let args = [
        "--packageId",
        "acme-chart",
        "--packageVersion",
        "0.1.0",
        "--feedType",
        "Helm",
        "--feedId",
        "helm",
        "--feedUri",
        &uri,
        "--attempts",
        "1",
    ];

    // Without the CA the certificate is not trusted.
    let untrusted = download(&env, &args).run();
    untrusted.code(1).stderr_has("Failed to download package acme-chart v0.1.0").stderr_has("feed 'helm'");
    assert_eq!(cache_files(&env, "helm"), Vec::<PathBuf>::new());

    let run = download(&env, &args).env("SSL_CERT_FILE", &ca).run();
    run.success();
    assert_cached(&env, &run, "helm", "acme-chart", "0.1.0", ".tgz", &chart_bytes);
}

// ---------------------------------------------------------------------------------------
// npm (verdaccio) and PyPI (pypiserver)

#[test]
fn npm_from_verdaccio_checks_the_integrity_and_reuses_the_cache() {
    let env = TestEnv::new();
    if !have("verdaccio", &["--version"]) {
        skip("verdaccio is not installed (.ci/install.d/feeds.sh installs it)");
        return;
    }
    let tarball = crate::util::tar_gz(
        &env,
        "acme-lib-1.0.0.tgz",
        &[("package/package.json", br#"{"name":"acme-lib","version":"1.0.0"}"#, 0o644)],
    );
    let bytes = std::fs::read(&tarball).unwrap();
    // Verdaccio's own storage layout: <storage>/<name>/package.json and the tarball.
    let storage = env.path("verdaccio/storage/acme-lib");
    std::fs::create_dir_all(&storage).unwrap();
    std::fs::copy(&tarball, storage.join("acme-lib-1.0.0.tgz")).unwrap();
    let packument = serde_json::json!({
        "name": "acme-lib",
        "versions": {"1.0.0": {"name": "acme-lib", "version": "1.0.0", "dist": {
            "tarball": "http://localhost:4873/acme-lib/-/acme-lib-1.0.0.tgz",
            "shasum": sha1_hex(&bytes),
            "integrity": format!("sha512-{}", sha512_b64(&bytes)),
        }}},
        "dist-tags": {"latest": "1.0.0"}, "time": {}, "_attachments": {}, "_distfiles": {}, "_uplinks": {}, "_rev": "1-0",
    });
    std::fs::write(storage.join("package.json"), packument.to_string()).unwrap();
    let config = env.write(
        "verdaccio/config.yaml",
        "storage: ./storage\nuplinks: {}\npackages:\n  '**':\n    access: $all\n    publish: $all\nlog: { type: stdout, format: pretty, level: warn }\n",
    );
    let port = free_port();
    let child = Command::new("verdaccio")
        .arg("--config")
        .arg(&config)
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn verdaccio");
    let mut server = Server { child, port, log: env.path("none.log") };
    if !wait_listening(&mut server.child, port) {
        skip("verdaccio did not start");
        return;
    }
    let uri = server.url("");
    let args = [
        "--packageId",
        "acme-lib",
        "--packageVersion",
        "1.0.0",
        "--feedType",
        "Npm",
        "--feedId",
        "npm",
        "--feedUri",
        &uri,
    ];
    let run = download(&env, &args).run();
    run.success();
    let path = assert_cached(&env, &run, "npm", "acme-lib", "1.0.0", ".tgz", &bytes);

    // Again: reused. A download always writes a fresh cache name, so the same path and a
    // single file prove nothing was downloaded.
    let again = download(&env, &args).run();
    again.success().stdout_has("already in the package cache");
    assert_eq!(again.output_variable("StagedPackage.FullPathOnRemoteMachine"), Some(path.display().to_string()));
    assert_eq!(cache_files(&env, "npm").len(), 1);
}

#[test]
fn pypi_from_pypiserver_prefers_the_wheel_and_checks_its_sha256() {
    let env = TestEnv::new();
    if !have("python3", &["-c", "import pypiserver"]) {
        skip("pypiserver is not installed (.ci/install.d/feeds.sh installs it)");
        return;
    }
    let packages = env.path("pypi");
    std::fs::create_dir_all(&packages).unwrap();
    let wheel = payload(9, 30_000);
    std::fs::write(packages.join("acme_tools-1.0.0-py3-none-any.whl"), &wheel).unwrap();
    std::fs::write(packages.join("acme-tools-1.0.0.tar.gz"), payload(10, 3000)).unwrap();
    std::fs::write(packages.join("acme_tools-0.9.0-py3-none-any.whl"), payload(11, 3000)).unwrap();
    let port = free_port();
    let child = Command::new("python3")
        .args(["-m", "pypiserver", "run", "-i", "127.0.0.1", "-p", &port.to_string(), "--hash-algo", "sha256"])
        .arg(&packages)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn pypiserver");
    let mut server = Server { child, port, log: env.path("none.log") };
    if !wait_listening(&mut server.child, port) {
        skip("pypiserver did not start");
        return;
    }
    let run = download(
        &env,
        &[
            "--packageId",
            "Acme.Tools",
            "--packageVersion",
            "1.0.0",
            "--feedType",
            "PyPi",
            "--feedId",
            "pypi",
            "--feedUri",
            &server.url(""),
        ],
    )
    .run();
    run.success();
    assert_cached(&env, &run, "pypi", "Acme.Tools", "1.0.0", ".whl", &wheel);

    let missing = download(
        &env,
        &[
            "--packageId",
            "acme-tools",
            "--packageVersion",
            "3.0.0",
            "--feedType",
            "pypi",
            "--feedId",
            "pypi",
            "--feedUri",
            &server.url(""),
        ],
    )
    .run();
    missing.code(1).stderr_has(&format!("feed 'pypi' ({}) has no package acme-tools version 3.0.0", server.url("")));
}

// ---------------------------------------------------------------------------------------
// Plain HTTP: 404, retries, argv

#[test]
fn http_404_names_the_feed_the_package_and_the_status() {
    let env = TestEnv::new();
    std::fs::create_dir_all(env.path("www")).unwrap();
    let Some(server) = static_server(&env, &env.path("www"), &[]) else { return };
    let uri = server.url("pkgs/{packageId}.{packageVersion}.zip");
    let run = download(
        &env,
        &[
            "--packageId",
            "Acme",
            "--packageVersion",
            "1.0.0",
            "--feedType",
            "Http",
            "--feedId",
            "web",
            "--feedUri",
            &uri,
        ],
    )
    .run();
    run.code(1).stderr_has(&format!(
        "Failed to download package Acme v1.0.0 from feed: '{uri}' (feed web, 1 attempt(s)): feed 'web' ({uri}) answered HTTP 404 for {} (package Acme)",
        server.url("pkgs/Acme.1.0.0.zip")
    ));
    assert_eq!(server.gets("/pkgs/Acme.1.0.0.zip"), 1, "a 404 is not retried");
}

#[test]
fn failures_are_retried_and_each_attempt_is_reported() {
    let env = TestEnv::new();
    let bytes = payload(1, 4096);
    env.write("www/Acme.1.0.0.zip", &bytes);
    let Some(server) = static_server(&env, &env.path("www"), &["--fail-first", "2"]) else { return };
    let uri = server.url("{packageId}.{packageVersion}.zip");
    let args = [
        "--packageId",
        "Acme",
        "--packageVersion",
        "1.0.0",
        "--feedType",
        "Http",
        "--feedId",
        "web",
        "--feedUri",
        &uri,
        "--attemptBackoffSeconds",
        "0",
    ];
    let run = download(&env, &args).arg("--attempts=3").run();
    run.success()
        .stdout_has("Attempt 1 of 3 to download package Acme v1.0.0 failed: ")
        .stdout_has("answered HTTP 503")
        .stdout_has("Attempt 2 of 3 to download package Acme v1.0.0 failed: ")
        .stdout_has("Waiting 0s before attempting the download from the external feed again.");
    assert!(!run.stdout.contains("Attempt 3 of 3"));
    assert_cached(&env, &run, "web", "Acme", "1.0.0", ".zip", &bytes);

    // Too few attempts: the last failure is reported with the count.
    let env2 = TestEnv::new();
    let Some(server) = static_server(&env2, &env.path("www"), &["--fail-first", "5"]) else { return };
    let uri = server.url("{packageId}.{packageVersion}.zip");
    let run = download(
        &env2,
        &[
            "--packageId",
            "Acme",
            "--packageVersion",
            "1.0.0",
            "--feedType",
            "Http",
            "--feedId",
            "web",
            "--feedUri",
            &uri,
            "--attempts",
            "2",
            "--attemptBackoffSeconds",
            "0",
        ],
    )
    .run();
    run.code(1).stderr_has("(feed web, 2 attempt(s)): feed 'web'").stderr_has("answered HTTP 503");
    assert_eq!(server.requests().iter().filter(|l| l.ends_with(" 503")).count(), 2);
}

#[test]
fn the_feed_password_is_scrubbed_from_the_process_arguments_and_masked() {
    let env = TestEnv::new();
    let bytes = payload(2, 2048);
    env.write("www/Acme.1.0.0.zip", &bytes);
    let release = env.path("release-requests");
    let auth = format!("me:{SECRET}");
    let Some(server) =
        static_server(&env, &env.path("www"), &["--auth", &auth, "--hold-until", release.to_str().unwrap()])
    else {
        return;
    };
    let uri = server.url("{packageId}.{packageVersion}.zip");
    let spawn = |args: &[&str]| {
        let mut cmd = download(&env, args).cmd;
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn calamari")
    };
    let password_option = format!("--feedPassword={SECRET}");
    let with_option = spawn(&[
        "--packageId",
        "Acme",
        "--packageVersion",
        "1.0.0",
        "--feedType",
        "Http",
        "--feedId",
        "web",
        "--feedUri",
        &uri,
        "--feedUsername",
        "me",
        &password_option,
    ]);
    // The other form: the credentials in the feed URI, as a separate argument.
    let userinfo_uri = format!("http://me:{SECRET}@127.0.0.1:{}/{{packageId}}.{{packageVersion}}.zip", server.port);
    let in_uri = spawn(&[
        "--packageId",
        "Acme",
        "--packageVersion",
        "1.0.0",
        "--feedType",
        "Http",
        "--feedId",
        "web2",
        "--feedUri",
        &userinfo_uri,
    ]);
    wait_until(PROMPTLY, "both requests to reach the server", || {
        server.requests().iter().filter(|l| l.starts_with("START")).count() >= 2
    });
    let cmdline = |child: &Child| {
        String::from_utf8_lossy(&std::fs::read(format!("/proc/{}/cmdline", child.id())).unwrap_or_default())
            .replace('\0', " ")
    };
    let (option_cmdline, uri_cmdline) = (cmdline(&with_option), cmdline(&in_uri));
    std::fs::write(&release, "").unwrap();
    for child in [with_option, in_uri] {
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
        assert!(!stdout.contains(SECRET) && !stderr.contains(SECRET), "{stdout}\n{stderr}");
    }
    if cfg!(all(target_os = "linux", target_env = "gnu")) {
        let stars = "*".repeat(SECRET.len());
        assert!(!option_cmdline.contains(SECRET), "the password is in /proc/<pid>/cmdline: {option_cmdline}");
        assert!(option_cmdline.contains(&format!("--feedPassword={stars}")), "{option_cmdline}");
        assert!(!uri_cmdline.contains(SECRET), "the password is in /proc/<pid>/cmdline: {uri_cmdline}");
        assert!(uri_cmdline.contains(&format!("http://me:{stars}@127.0.0.1:")), "{uri_cmdline}");
    }
}

// ---------------------------------------------------------------------------------------
// Options

#[test]
fn unsupported_feed_types_and_missing_options_are_user_errors() {
    let env = TestEnv::new();
    let full = |extra: &[&str]| {
        let mut args = vec![
            "--packageId",
            "Acme",
            "--packageVersion",
            "1.0.0",
            "--feedId",
            "f",
            "--feedUri",
            "http://127.0.0.1:9/",
        ];
        args.extend_from_slice(extra);
        args.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    };
    let run_with = |args: Vec<String>| {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        download(&env, &refs).run()
    };
    for feed_type in ["Docker", "S3", "GitHub", "Bogus"] {
        run_with(full(&["--feedType", feed_type]))
            .code(1)
            .stderr_has(&format!("The feed type `{feed_type}` is not supported by download-package here."));
    }
    let cases: &[(&[&str], &str)] = &[
        (
            &["--packageVersion", "1.0.0", "--feedId", "f", "--feedUri", "http://x/"],
            "No package ID was specified. Please pass --packageId YourPackage",
        ),
        (
            &["--packageId", "A", "--feedId", "f", "--feedUri", "http://x/"],
            "No package version was specified. Please pass --packageVersion 1.0.0.0",
        ),
        (
            &["--packageId", "A", "--packageVersion", "1.0.0", "--feedUri", "http://x/"],
            "No feed ID was specified. Please pass --feedId feed-id",
        ),
        (
            &["--packageId", "A", "--packageVersion", "1.0.0", "--feedId", "f"],
            "No feed URI was specified. Please pass --feedUri https://url/to/nuget/feed",
        ),
        (
            &["--packageId", "A", "--packageVersion", "1.0.0", "--feedId", "f", "--feedUri", "ftp://x/"],
            "URI specified 'ftp://x/' is not a valid URI",
        ),
        (
            &["--packageId", "A", "--packageVersion", "not a version", "--feedId", "f", "--feedUri", "http://x/"],
            "Package version 'not a version' specified is not a valid Semver version string",
        ),
        (
            &[
                "--packageId",
                "A",
                "--packageVersion",
                "1.0.0",
                "--packageVersionFormat",
                "Calendar",
                "--feedId",
                "f",
                "--feedUri",
                "http://x/",
            ],
            "The provided version format `Calendar` is not recognised.",
        ),
        (
            &[
                "--packageId",
                "A",
                "--packageVersion",
                "1.0.0",
                "--feedId",
                "f",
                "--feedUri",
                "http://x/",
                "--feedUsername",
                "me",
            ],
            "A username was specified but no password was provided.",
        ),
        (
            &[
                "--packageId",
                "A",
                "--packageVersion",
                "1.0.0",
                "--feedId",
                "f",
                "--feedUri",
                "http://x/",
                "--attempts",
                "0",
            ],
            "The requested number of download attempts should be more than zero",
        ),
        (
            &[
                "--packageId",
                "A",
                "--packageVersion",
                "1.0.0",
                "--feedId",
                "f",
                "--feedUri",
                "http://x/",
                "--attempts",
                "many",
            ],
            "The requested number of download attempts 'many' is not a valid integer number",
        ),
        (
            &[
                "--packageId",
                "A",
                "--packageVersion",
                "1.0.0",
                "--feedId",
                "f",
                "--feedUri",
                "http://x/",
                "--attemptBackoffSeconds=-1",
            ],
            "Retry requested download attempt retry backoff '-1' is not a valid integer number of seconds",
        ),
    ];
    for (args, message) in cases {
        download(&env, args).run().code(1).stderr_has(message);
    }
    // TentacleHome must be set.
    let refs: Vec<String> = full(&[]);
    let refs: Vec<&str> = refs.iter().map(String::as_str).collect();
    env.cmd(&["download-package"])
        .args(&refs)
        .run()
        .code(1)
        .stderr_has("Environment variable 'TentacleHome' has not been set.");
}

#[test]
fn a_feed_that_cannot_be_reached_is_named_with_the_network_error() {
    let env = TestEnv::new();
    let port = free_port(); // nothing listens there any more
    let uri = format!("http://127.0.0.1:{port}/{{packageId}}.{{packageVersion}}.zip");
    let run = download(
        &env,
        &[
            "--packageId",
            "Acme",
            "--packageVersion",
            "1.0.0",
            "--feedType",
            "http",
            "--feedId",
            "down",
            "--feedUri",
            &uri,
            "--attempts",
            "2",
            "--attemptBackoffSeconds",
            "0",
        ],
    )
    .run();
    run.code(1)
        .stdout_has("Attempt 1 of 2 to download package Acme v1.0.0 failed: ")
        .stderr_has(&format!("Failed to download package Acme v1.0.0 from feed: '{uri}' (feed down, 2 attempt(s)): feed 'down' ({uri}): request for http://127.0.0.1:{port}/Acme.1.0.0.zip (package Acme) failed: "));
    assert_eq!(cache_files(&env, "down"), Vec::<PathBuf>::new());
}

#[test]
fn a_download_registers_its_package_for_the_task_when_retention_is_on() {
    let env = TestEnv::new();
    let bytes = payload(3, 2048);
    env.write("www/Acme.2.0.0.zip", &bytes);
    let Some(server) = static_server(&env, &env.path("www"), &[]) else { return };
    let uri = server.url("{packageId}.{packageVersion}.zip");
    let args = [
        "--packageId",
        "Acme",
        "--packageVersion",
        "2.0.0",
        "--feedType",
        "Http",
        "--feedId",
        "web",
        "--feedUri",
        &uri,
    ];
    let journal = env.path("tentacle/PackageRetentionJournal.json");
    // Retention off (the default): downloaded, nothing registered.
    download(&env, &args).run().success();
    assert!(!journal.exists(), "no journal without Octopus.Calamari.EnablePackageRetention");
    let vars = env.variables(
        "vars.json",
        &[("Octopus.Calamari.EnablePackageRetention", "True", false), ("Octopus.Task.Id", "ServerTasks-42", false)],
    );
    download(&env, &args).arg(format!("--variables={}", vars.display())).run().success();
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&journal).unwrap()).unwrap();
    let entries = json["JournalEntries"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{json}");
    let cached = cache_files(&env, "web");
    assert_eq!(cached.len(), 1, "the second download reused the first file: {cached:?}");
    assert_eq!(entries[0]["Package"]["PackageId"]["Value"], "Acme");
    assert_eq!(entries[0]["Package"]["Version"]["Version"], "2.0.0");
    assert_eq!(entries[0]["Package"]["Path"]["Value"], cached[0].display().to_string());
    assert_eq!(entries[0]["locks"][0]["DeploymentTaskId"]["Value"], "ServerTasks-42");
}

#[test]
fn a_feed_that_is_down_falls_back_to_the_cached_copy_unless_forced() {
    let env = TestEnv::new();
    let package = nupkg("Acme.Api", "3.0.0");
    nuget_feed(&env.path("feed"), "Acme.Api", "3.0.0", &package, &package, true);
    let Some(server) = static_server(&env, &env.path("feed"), &[]) else { return };
    let feed_uri = server.url("v3/index.json");
    let args = [
        "--packageId",
        "Acme.Api",
        "--packageVersion",
        "3.0.0",
        "--feedId",
        "nuget",
        "--feedUri",
        &feed_uri,
        "--attempts",
        "1",
    ];
    download(&env, &args).run().success();
    let cached = cache_files(&env, "nuget");
    assert_eq!(cached.len(), 1);
    drop(server); // the feed goes away: its service index cannot be read any more
    let run = download(&env, &args).run();
    run.success()
        .stdout_has("The feed 'nuget' could not be reached after 1 attempt(s) (")
        .stdout_has("using the copy of Acme.Api v3.0.0 already in the package cache, whose hash could not be checked against the feed")
        .stdout_has(&format!("Package Acme.Api v3.0.0 is already in the package cache: {}", cached[0].display()));
    assert_eq!(run.output_variable("StagedPackage.Hash"), Some(sha1_hex(&package)));
    // Forced, the cached copy is not what was asked for: the failure stands.
    download(&env, &args)
        .arg("--forcePackageDownload")
        .run()
        .code(1)
        .stderr_has("Failed to download package Acme.Api v3.0.0");
    assert_eq!(cache_files(&env, "nuget"), cached, "nothing was added or removed");
}

#[test]
fn download_and_register_package_registers_for_its_task_in_one_step() {
    let env = TestEnv::new();
    let bytes = payload(5, 1024);
    env.write("www/Acme.2.0.0.zip", &bytes);
    let Some(server) = static_server(&env, &env.path("www"), &[]) else { return };
    let uri = server.url("{packageId}.{packageVersion}.zip");
    let args = [
        "--packageId",
        "Acme",
        "--packageVersion",
        "2.0.0",
        "--feedType",
        "Http",
        "--feedId",
        "web",
        "--feedUri",
        &uri,
    ];
    let journal = env.path("tentacle/PackageRetentionJournal.json");
    // No task: the reference's messages, exit 1, nothing downloaded or registered.
    let run = env.cmd(&["download-and-register-package"]).args(&args).env("TentacleHome", env.path("tentacle")).run();
    run.code(1)
        .stderr_has(&format!("Failed to download and register package Acme v2.0.0 from feed: '{uri}'"))
        .stderr_has("No task ID was specified. Please pass --taskId YourTaskId");
    assert!(cache_files(&env, "web").is_empty() && !journal.exists());
    // With one, and no retention variable: downloaded and registered.
    env.cmd(&["download-and-register-package"])
        .args(&args)
        .arg("--taskId=ServerTasks-7")
        .env("TentacleHome", env.path("tentacle"))
        .run()
        .success();
    let cached = cache_files(&env, "web");
    assert_eq!(cached.len(), 1);
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&journal).unwrap()).unwrap();
    let entries = json["JournalEntries"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{json}");
    assert_eq!(entries[0]["Package"]["PackageId"]["Value"], "Acme");
    assert_eq!(entries[0]["Package"]["Path"]["Value"], cached[0].display().to_string());
    assert_eq!(entries[0]["locks"][0]["DeploymentTaskId"]["Value"], "ServerTasks-7");
}
