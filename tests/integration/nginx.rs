//! The nginx feature through the real binary against a real nginx, started by each test
//! on loopback with its own prefix, main configuration and configurations directory
//! (`Octopus.Action.Nginx.ConfigurationsDirectory`, `Calamari.Nginx.ConfigurationFile`):
//! a static site served from the deployed release, a reverse proxy to a local backend, the
//! next release served after the reload, and a rejected directive that leaves the previous
//! site serving with nothing changed in the configurations directory.

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::util::{PROMPTLY, Run, TestEnv, skip, wait_for};

const FEATURES: &str = "Octopus.Action.EnabledFeatures";

/// A running nginx with its own prefix under the test's directory.
struct Nginx {
    prefix: PathBuf,
    port: u16,
}

impl Nginx {
    /// Starts nginx on a free loopback port; `None` (after [`skip`]) when there is no
    /// nginx, except under CI, where `.ci/install.d/nginx.sh` installs it.
    fn start(env: &TestEnv) -> Option<Nginx> {
        let Some(program) = nginx_program() else {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "nginx is not installed under CI: .ci/install.d/nginx.sh should have installed it"
            );
            skip("nginx is not installed (apt-get install nginx-light)");
            return None;
        };
        if !is_root() {
            skip("the nginx tests run nginx as root with its own prefix; not root");
            return None;
        }
        let prefix = env.path("nginx");
        std::fs::create_dir_all(prefix.join("conf.d")).unwrap();
        std::fs::create_dir_all(prefix.join("ssl")).unwrap();
        std::fs::create_dir_all(prefix.join("temp")).unwrap();
        let port = free_port();
        let p = prefix.display();
        std::fs::write(
            prefix.join("nginx.conf"),
            format!(
                "user root;\nworker_processes 1;\npid {p}/nginx.pid;\nerror_log {p}/error.log;\n\
                 events {{ worker_connections 64; }}\n\
                 http {{\n  access_log off;\n  client_body_temp_path {p}/temp/body;\n  proxy_temp_path {p}/temp/proxy;\n\
                 fastcgi_temp_path {p}/temp/fastcgi;\n  uwsgi_temp_path {p}/temp/uwsgi;\n  scgi_temp_path {p}/temp/scgi;\n\
                 include {p}/conf.d/*.conf;\n}}\n"
            ),
        )
        .unwrap();
        let status =
            Command::new(program).arg("-c").arg(prefix.join("nginx.conf")).arg("-p").arg(&prefix).status().unwrap();
        assert!(
            status.success(),
            "nginx starts: {}",
            std::fs::read_to_string(prefix.join("error.log")).unwrap_or_default()
        );
        Some(Nginx { prefix, port })
    }

    fn conf_dir(&self) -> PathBuf {
        self.prefix.join("conf.d")
    }

    /// The variables every deployment to this nginx sets.
    fn variables(&self, locations: &str) -> Vec<(String, String)> {
        vec![
            (FEATURES.into(), "Octopus.Features.Nginx".into()),
            (
                "Octopus.Action.Nginx.Server.Bindings".into(),
                format!(r##"[{{"protocol":"http","port":"{}","ipAddress":"127.0.0.1","enabled":true}}]"##, self.port),
            ),
            ("Octopus.Action.Nginx.Server.Locations".into(), locations.into()),
            ("Octopus.Action.Nginx.ConfigurationsDirectory".into(), self.conf_dir().display().to_string()),
            ("Octopus.Action.Nginx.CertificatesDirectory".into(), self.prefix.join("ssl").display().to_string()),
            ("Calamari.Nginx.ConfigurationFile".into(), self.prefix.join("nginx.conf").display().to_string()),
        ]
    }

    /// `GET path` on the site: (status, body), `None` when nothing answers.
    fn get(&self, path: &str) -> Option<(u16, String)> {
        http_get(self.port, path)
    }

    /// `nginx -t` on the live configuration passes.
    fn test_passes(&self) -> bool {
        Command::new(nginx_program().unwrap())
            .arg("-t")
            .arg("-c")
            .arg(self.prefix.join("nginx.conf"))
            .output()
            .unwrap()
            .status
            .success()
    }

    /// The configurations directory: every path under it, with file contents.
    fn conf_snapshot(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> =
            walk(&self.conf_dir()).into_iter().filter(|(name, _)| !name.contains("calamari-previous")).collect();
        out.sort();
        out
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let pid = std::fs::read_to_string(self.prefix.join("nginx.pid")).unwrap_or_default();
        if let Ok(pid) = pid.trim().parse::<i32>() {
            // SIGQUIT: graceful shutdown of the master and its workers.
            // SAFETY: kill has no memory preconditions.
            unsafe { libc::kill(pid, libc::SIGQUIT) };
        }
    }
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn nginx_program() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).map(|d| d.join("nginx")).find(|p| p.is_file())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn walk(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let path = entry.path();
        let name = path.display().to_string();
        if path.is_dir() {
            out.push((name, "<dir>".into()));
            out.extend(walk(&path));
        } else {
            out.push((name, std::fs::read_to_string(&path).unwrap_or_default()));
        }
    }
    out
}

fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status = response.split_whitespace().nth(1)?.parse().ok()?;
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    Some((status, body))
}

/// Waits until `GET path` answers `body`.
#[track_caller]
fn wait_for_body(nginx: &Nginx, path: &str, body: &str) {
    wait_for(PROMPTLY, &format!("GET {path} to answer {body:?}"), || {
        nginx.get(path).filter(|(status, b)| *status == 200 && b == body)
    });
}

/// A static location serving `wwwroot` of the deployed release.
fn static_root() -> String {
    r##"[{"path":"/","directives":"[{\"root\":\"#{Octopus.Action.Package.InstallationDirectoryPath}/wwwroot\"},{\"try_files\":\"$uri $uri/ =404\"}]"}]"##.to_string()
}

fn package(env: &TestEnv, version: &str) -> PathBuf {
    let body = format!("release {version}\n");
    crate::util::tar_gz(
        env,
        format!("Acme.Site.{version}.tar.gz"),
        &[("wwwroot/index.html", body.as_bytes(), 0o644), ("wwwroot/about.txt", b"about\n", 0o644)],
    )
}

fn deploy(env: &TestEnv, package: &Path, vars: &[(String, String)]) -> Run {
    let apps = env.path("Applications").display().to_string();
    let mut all: Vec<(&str, &str, bool)> = vec![
        ("Octopus.Tentacle.Agent.ApplicationDirectoryPath", &apps, false),
        ("Octopus.Environment.Name", "Test", false),
    ];
    all.extend(vars.iter().map(|(k, v)| (k.as_str(), v.as_str(), false)));
    let file = env.variables(&format!("vars-{}.json", package.file_name().unwrap().to_string_lossy()), &all);
    env.cmd(&[
        "deploy-package",
        &format!("--package={}", package.display()),
        &format!("--variables={}", file.display()),
    ])
    .env("TentacleHome", env.path("home"))
    .run()
}

#[test]
fn a_static_site_is_served_from_the_release_and_the_next_release_after_the_reload() {
    let env = TestEnv::new();
    let Some(nginx) = Nginx::start(&env) else { return };
    let vars = nginx.variables(&static_root());
    let run = deploy(&env, &package(&env, "1.0.0"), &vars);
    run.success().stdout_has("Validating nginx configuration").stdout_has("Reloading nginx configuration");
    let conf = std::fs::read_to_string(nginx.conf_dir().join("Acme.Site.conf")).unwrap();
    let release = env.path("Applications/Test/Acme.Site/1.0.0");
    assert_eq!(
        conf,
        format!(
            "server {{\n    listen 127.0.0.1:{};\n    location / {{\n        root {}/wwwroot;\n        try_files $uri $uri/ =404;\n    }}\n}}",
            nginx.port,
            release.display()
        )
    );
    wait_for_body(&nginx, "/index.html", "release 1.0.0\n");

    deploy(&env, &package(&env, "1.0.1"), &vars).success();
    wait_for_body(&nginx, "/index.html", "release 1.0.1\n");
    let previous = nginx.conf_dir().join(".Acme.Site.conf.calamari-previous");
    assert!(
        std::fs::read_to_string(&previous).unwrap().contains("Acme.Site/1.0.0/wwwroot"),
        "the previous configuration is kept beside the new one"
    );
    assert!(nginx.test_passes());
}

#[test]
fn a_reverse_proxy_location_reaches_a_local_backend() {
    let env = TestEnv::new();
    let Some(nginx) = Nginx::start(&env) else { return };
    let backend = TcpListener::bind("127.0.0.1:0").unwrap();
    let backend_port = backend.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in backend.incoming() {
            let Ok(mut stream) = stream else { break };
            let mut request = [0u8; 4096];
            let n = stream.read(&mut request).unwrap_or(0);
            let request = String::from_utf8_lossy(&request[..n]);
            let line = request.lines().next().unwrap_or_default().to_string();
            let forwarded = request.lines().find(|l| l.starts_with("X-Test-Header:")).unwrap_or("none").to_string();
            let body = format!("backend saw {line} with {forwarded}");
            let _ = write!(stream, "HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n{body}", body.len());
        }
    });
    let locations = format!(
        r##"[{{"path":"/","directives":"[{{\"root\":\"#{{Octopus.Action.Package.InstallationDirectoryPath}}/wwwroot\"}}]"}},{{"path":"/api/","reverseProxy":"True","reverseProxyUrl":"http://127.0.0.1:{backend_port}","reverseProxyHeaders":"{{\"X-Test-Header\":\"from-nginx\"}}","reverseProxyDirectives":"{{\"proxy_http_version\":\"1.1\"}}"}}]"##
    );
    deploy(&env, &package(&env, "2.0.0"), &nginx.variables(&locations)).success();
    let location_file = nginx.conf_dir().join("Acme.Site.conf.d/location.0api.conf");
    assert_eq!(
        std::fs::read_to_string(&location_file).unwrap(),
        format!(
            "    location /api/ {{\n        proxy_pass http://127.0.0.1:{backend_port};\n        proxy_http_version 1.1;\n        proxy_set_header X-Test-Header from-nginx;\n    }}"
        )
    );
    let server = std::fs::read_to_string(nginx.conf_dir().join("Acme.Site.conf")).unwrap();
    assert!(
        server.contains(&format!("    include {}/Acme.Site.conf.d/location.*.conf;\n", nginx.conf_dir().display()))
    );
    wait_for_body(&nginx, "/api/orders", "backend saw GET /api/orders HTTP/1.1 with X-Test-Header: from-nginx");
    wait_for_body(&nginx, "/index.html", "release 2.0.0\n");
}

#[test]
fn a_rejected_directive_changes_nothing_and_the_previous_site_keeps_serving() {
    let env = TestEnv::new();
    let Some(nginx) = Nginx::start(&env) else { return };
    deploy(&env, &package(&env, "1.0.0"), &nginx.variables(&static_root())).success();
    wait_for_body(&nginx, "/index.html", "release 1.0.0\n");
    let before = nginx.conf_snapshot();

    let bad = r##"[{"path":"/","directives":"{\"root\":\"/srv\",\"no_such_directive\":\"on\"}"},{"path":"/extra/","directives":"{\"root\":\"/srv\"}"}]"##;
    let run = deploy(&env, &package(&env, "1.0.1"), &nginx.variables(bad));
    run.code(1)
        .stderr_has("nginx rejected the new configuration")
        .stderr_has("(on a staged copy)")
        .stderr_has("unknown directive \"no_such_directive\"");
    run.stdout_has("Testing the new configuration of Acme.Site before installing it");
    assert_eq!(nginx.conf_snapshot(), before, "nothing was written where nginx reads");
    assert!(!nginx.conf_dir().join("Acme.Site.conf.d").exists(), "the new locations directory was never installed");
    assert!(nginx.test_passes(), "the live configuration still passes nginx -t");
    // The previous release still answers, after a reload too.
    let reload = Command::new(nginx_program().unwrap())
        .args(["-s", "reload", "-c"])
        .arg(nginx.prefix.join("nginx.conf"))
        .status()
        .unwrap();
    assert!(reload.success());
    wait_for_body(&nginx, "/index.html", "release 1.0.0\n");
}

#[test]
fn a_removed_location_is_taken_out_and_kept_aside() {
    let env = TestEnv::new();
    let Some(nginx) = Nginx::start(&env) else { return };
    let with_extra = r##"[{"path":"/","directives":"{\"root\":\"#{Octopus.Action.Package.InstallationDirectoryPath}/wwwroot\"}"},{"path":"= /about","directives":"{\"return\":\"200 'about page'\"}"}]"##;
    deploy(&env, &package(&env, "1.0.0"), &nginx.variables(with_extra)).success();
    wait_for_body(&nginx, "/about", "about page");
    deploy(&env, &package(&env, "1.0.1"), &nginx.variables(&static_root())).success();
    // The old workers finish their requests after the reload: wait for the new configuration.
    wait_for(PROMPTLY, "GET /about to answer 404 once the location is gone", || {
        nginx.get("/about").filter(|(status, _)| *status == 404)
    });
    wait_for_body(&nginx, "/about.txt", "about\n");
    assert!(!nginx.conf_dir().join("Acme.Site.conf.d").exists());
    assert!(nginx.conf_dir().join(".Acme.Site.conf.d.calamari-previous/location.0about.conf").is_file());
}

#[test]
fn https_with_a_certificate_variable_installs_the_certificate_and_a_private_key() {
    let env = TestEnv::new();
    let Some(nginx) = Nginx::start(&env) else { return };
    let key = env.path("key.pem");
    let cert = env.path("cert.pem");
    let made = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=site.example"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output();
    if !made.is_ok_and(|o| o.status.success()) {
        skip("openssl could not make a test certificate");
        return;
    }
    let https_port = free_port();
    let mut vars = nginx.variables(&static_root());
    vars.retain(|(k, _)| k != "Octopus.Action.Nginx.Server.Bindings");
    vars.push((
        "Octopus.Action.Nginx.Server.Bindings".into(),
        format!(
            r##"[{{"protocol":"http","port":"{}","ipAddress":"127.0.0.1","enabled":true}},{{"protocol":"https","port":"{https_port}","ipAddress":"127.0.0.1","certificateVariable":"SiteCert","enabled":true}}]"##,
            nginx.port
        ),
    ));
    vars.push(("SiteCert.SubjectCommonName".into(), "site.example".into()));
    vars.push(("SiteCert.CertificatePem".into(), std::fs::read_to_string(&cert).unwrap()));
    vars.push(("SiteCert.PrivateKeyPem".into(), std::fs::read_to_string(&key).unwrap()));
    deploy(&env, &package(&env, "3.0.0"), &vars).success();
    let dir = nginx.prefix.join("ssl/site.example");
    let installed_key = dir.join("site.example.key");
    assert_eq!(std::fs::read_to_string(&installed_key).unwrap(), std::fs::read_to_string(&key).unwrap());
    use std::os::unix::fs::PermissionsExt as _;
    assert_eq!(std::fs::metadata(&installed_key).unwrap().permissions().mode() & 0o777, 0o600);
    assert!(std::fs::read_to_string(dir.join("site.example.crt")).unwrap().starts_with("-----BEGIN CERTIFICATE-----"));
    let server = std::fs::read_to_string(nginx.conf_dir().join("Acme.Site.conf")).unwrap();
    assert!(server.contains(&format!(
        "    listen 127.0.0.1:{https_port} ssl;\n    ssl_certificate {}/site.example.crt;\n",
        dir.display()
    )));
    wait_until_listening(https_port);
}

fn wait_until_listening(port: u16) {
    wait_for(PROMPTLY, &format!("nginx to listen on {port}"), || TcpStream::connect(("127.0.0.1", port)).ok());
}

/// `vars` with `name` set to `value` (replacing it when present).
fn with(vars: &[(String, String)], name: &str, value: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = vars.iter().filter(|(k, _)| k != name).cloned().collect();
    out.push((name.into(), value.into()));
    out
}

#[test]
fn bad_bindings_locations_or_a_missing_certificate_fail_before_anything_is_written() {
    let env = TestEnv::new();
    let Some(nginx) = Nginx::start(&env) else { return };
    let vars = nginx.variables(&static_root());
    let bindings = "Octopus.Action.Nginx.Server.Bindings";
    deploy(&env, &package(&env, "1.0.0"), &with(&vars, bindings, r##"[{"protocol":"http","port":"80""##))
        .code(1)
        .stderr_has("Octopus.Action.Nginx.Server.Bindings cannot be used: it is not valid JSON");
    let https = r##"[{"protocol":"https","port":"8443","certificateVariable":"Missing","enabled":true}]"##;
    deploy(&env, &package(&env, "1.0.1"), &with(&vars, bindings, https))
        .code(1)
        .stderr_has("'Missing' has no value for Missing.SubjectCommonName");
    deploy(
        &env,
        &package(&env, "1.0.2"),
        &with(&vars, "Octopus.Action.Nginx.Server.Locations", r##"[{"path":"/api/"}]"##),
    )
    .code(1)
    .stderr_has("needs a root location");
    assert!(nginx.conf_snapshot().is_empty(), "nothing in conf.d: {:?}", nginx.conf_snapshot());
}

#[test]
fn without_nginx_on_the_path_the_step_fails_with_the_reference_message() {
    let env = TestEnv::new();
    let empty = env.path("empty-path");
    std::fs::create_dir_all(&empty).unwrap();
    let pkg = package(&env, "1.0.0");
    let apps = env.path("Applications").display().to_string();
    let file = env.variables(
        "vars.json",
        &[
            (FEATURES, "Octopus.Features.Nginx", false),
            ("Octopus.Tentacle.Agent.ApplicationDirectoryPath", &apps, false),
        ],
    );
    let run = env
        .cmd(&["deploy-package", &format!("--package={}", pkg.display()), &format!("--variables={}", file.display())])
        .env("PATH", &empty)
        .run();
    if is_root() {
        run.code(1).stderr_has("The executable 'nginx' does not exist, or cannot be located using the PATH");
    } else {
        // Not root: the check asks sudo, which is not on this PATH either.
        run.code(1).stderr_has("The executable 'nginx' does not exist");
    }
}

#[test]
fn a_missing_configurations_directory_is_named() {
    let env = TestEnv::new();
    if nginx_program().is_none() {
        skip("nginx is not installed (apt-get install nginx-light)");
        return;
    }
    let vars = vec![
        (FEATURES.to_string(), "Octopus.Features.Nginx".to_string()),
        ("Octopus.Action.Nginx.Server.Locations".to_string(), static_root()),
        ("Octopus.Action.Nginx.ConfigurationsDirectory".to_string(), env.path("no/such/dir").display().to_string()),
    ];
    deploy(&env, &package(&env, "1.0.0"), &vars)
        .code(1)
        .stderr_has(&format!("The nginx configurations directory '{}'", env.path("no/such/dir").display()));
}

/// `calamari` run through `setpriv` without `CAP_SYS_ADMIN`: root, but unable to make the
/// private mount namespace of the staged test.
fn without_sys_admin(mut command: crate::util::TestCommand) -> crate::util::TestCommand {
    let old = &command.cmd;
    let mut new = Command::new("setpriv");
    new.args(["--bounding-set=-sys_admin", "--inh-caps=-sys_admin", "--"]).arg(old.get_program()).args(old.get_args());
    for (key, value) in old.get_envs() {
        match value {
            Some(value) => new.env(key, value),
            None => new.env_remove(key),
        };
    }
    if let Some(dir) = old.get_current_dir() {
        new.current_dir(dir);
    }
    command.cmd = new;
    command
}

#[test]
fn without_a_mount_namespace_a_rejected_configuration_is_installed_tested_and_put_back() {
    let env = TestEnv::new();
    let Some(nginx) = Nginx::start(&env) else { return };
    if !Command::new("setpriv").arg("--version").output().is_ok_and(|o| o.status.success()) {
        skip("setpriv (util-linux) is not installed");
        return;
    }
    deploy(&env, &package(&env, "1.0.0"), &nginx.variables(&static_root())).success();
    wait_for_body(&nginx, "/index.html", "release 1.0.0\n");
    let before = nginx.conf_snapshot();

    let bad = r#"[{"path":"/","directives":"{\"root\":\"/srv\",\"no_such_directive\":\"on\"}"},{"path":"/extra/","directives":"{\"root\":\"/srv\"}"}]"#;
    let pkg = package(&env, "1.0.1");
    let apps = env.path("Applications").display().to_string();
    let mut all: Vec<(&str, &str, bool)> = vec![("Octopus.Tentacle.Agent.ApplicationDirectoryPath", &apps, false)];
    let vars = nginx.variables(bad);
    all.extend(vars.iter().map(|(k, v)| (k.as_str(), v.as_str(), false)));
    let file = env.variables("vars-bad.json", &all);
    let command = env
        .cmd(&["deploy-package", &format!("--package={}", pkg.display()), &format!("--variables={}", file.display())])
        .env("TentacleHome", env.path("home"));
    let run = without_sys_admin(command).run();
    run.code(1)
        .stderr_has("nginx rejected the new configuration")
        .stderr_has("unknown directive \"no_such_directive\"")
        .stdout_has("it is tested once installed, and put back if nginx rejects it")
        .stdout_has(&format!("Put back the previous {}", nginx.conf_dir().join("Acme.Site.conf").display()))
        .output_lacks("(on a staged copy)");
    assert_eq!(nginx.conf_snapshot(), before, "every file was put back");
    assert!(nginx.test_passes());
    wait_for_body(&nginx, "/index.html", "release 1.0.0\n");
}

#[test]
fn a_failed_reload_puts_the_previous_files_back() {
    let env = TestEnv::new();
    let Some(nginx) = Nginx::start(&env) else { return };
    deploy(&env, &package(&env, "1.0.0"), &nginx.variables(&static_root())).success();
    let before = nginx.conf_snapshot();
    // Stop nginx: the configuration is valid but there is no master to reload.
    let stopped = Command::new(nginx_program().unwrap())
        .args(["-s", "stop", "-c"])
        .arg(nginx.prefix.join("nginx.conf"))
        .status()
        .unwrap();
    assert!(stopped.success());
    crate::util::wait_until(PROMPTLY, "nginx to remove its pid file", || !nginx.prefix.join("nginx.pid").exists());
    let with_location =
        r#"[{"path":"/","directives":"{\"root\":\"/srv\"}"},{"path":"/extra/","directives":"{\"root\":\"/srv\"}"}]"#;
    deploy(&env, &package(&env, "1.0.1"), &nginx.variables(with_location))
        .code(1)
        .stderr_has("nginx could not reload its configuration")
        .stderr_has("nginx.pid");
    assert_eq!(nginx.conf_snapshot(), before, "the previous files were put back");
    assert!(!nginx.conf_dir().join("Acme.Site.conf.d").exists());
}
