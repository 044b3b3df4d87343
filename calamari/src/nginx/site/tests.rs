//! The files a site becomes. The expected texts are written from what the reference's
//! approved outputs show (its `NginxFixture`), with Linux line endings.

use super::*;

const HTTP_ONLY: &str = r#"[{"protocol":"http","port":"80","ipAddress":"*","certificateLocation":null,"certificateKeyLocation":null,"securityProtocols":null,"enabled":true}]"#;

const PROXY_HEADERS: &str = r#"{\"Upgrade\":\"$http_upgrade\",\"Connection\":\"keep-alive\",\"Host\":\"$host\",\"X-Forwarded-For\":\"$proxy_add_x_forwarded_for\",\"X-Forwarded-Proto\":\"$scheme\"}"#;
const PROXY_DIRECTIVES: &str = r#"{\"proxy_http_version\":\"1.1\",\"proxy_cache_bypass\":\"$http_upgrade\"}"#;

fn proxy_location(path: &str) -> String {
    format!(
        r#"{{"path":"{path}","directives":"","headers":"","reverseProxy":"True","reverseProxyUrl":"http://localhost:5000","reverseProxyHeaders":"{PROXY_HEADERS}","reverseProxyDirectives":"{PROXY_DIRECTIVES}"}}"#
    )
}

fn static_location(path: &str) -> String {
    format!(
        r##"{{"path":"{path}","directives":"[{{\"root\":\"#{{Octopus.Action.Package.InstallationDirectoryPath}}/wwwroot\"}},{{\"try_files\":\"$uri $uri/ /index.html\"}}]","headers":"","reverseProxy":false,"reverseProxyUrl":"","reverseProxyHeaders":"","reverseProxyDirectives":""}}"##
    )
}

fn variables(pairs: &[(&str, &str)]) -> VariableDictionary {
    let mut v = VariableDictionary::new();
    for (name, value) in pairs {
        v.set(*name, Some((*value).to_string()));
    }
    v
}

fn file<'f>(files: &'f [SiteFile], path: &str) -> &'f str {
    let found = files.iter().find(|f| f.relative_path == path);
    let names: Vec<&str> = files.iter().map(|f| f.relative_path.as_str()).collect();
    &found.unwrap_or_else(|| panic!("no {path} among {names:?}")).contents
}

const PROXY_BODY: &str = "        proxy_pass http://localhost:5000;
        proxy_http_version 1.1;
        proxy_cache_bypass $http_upgrade;
        proxy_set_header Upgrade $http_upgrade;
        proxy_set_header Connection keep-alive;
        proxy_set_header Host $host;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_set_header X-Forwarded-Proto $scheme;";

#[test]
fn a_static_site_is_one_server_block_with_its_root_location() {
    let site = Site::from_variables(&variables(&[
        (names::CONFIG_NAME, "StaticContent"),
        (names::BINDINGS, HTTP_ONLY),
        (names::LOCATIONS, &format!("[{}]", static_location("/"))),
        ("Octopus.Action.Package.InstallationDirectoryPath", "/var/www/app"),
    ]))
    .unwrap();
    let files = site.files();
    assert_eq!(files.len(), 1);
    assert_eq!(
        file(&files, "conf/StaticContent.conf"),
        "server {
    listen 80;
    location / {
        root /var/www/app/wwwroot;
        try_files $uri $uri/ /index.html;
    }
}"
    );
}

#[test]
fn a_directive_named_twice_is_written_twice() {
    let location = r#"[{"path":"/","directives":"[{\"root\":\"/srv/www\"},{\"try_files\":\"$uri $uri/ /index.html\"},{\"include\":\"fastcgi_params\"},{\"include\":\"/etc/nginx/api_proxy.conf\"}]"}]"#;
    let site = Site::from_variables(&variables(&[
        (names::CONFIG_NAME, "StaticContent"),
        (names::BINDINGS, HTTP_ONLY),
        (names::LOCATIONS, location),
    ]))
    .unwrap();
    assert_eq!(
        file(&site.files(), "conf/StaticContent.conf"),
        "server {
    listen 80;
    location / {
        root /srv/www;
        try_files $uri $uri/ /index.html;
        include fastcgi_params;
        include /etc/nginx/api_proxy.conf;
    }
}"
    );
}

#[test]
fn directives_may_be_one_object() {
    let location = r#"[{"path":"/","directives":"{\"root\":\"/srv/www\",\"index\":\"index.html\"}"}]"#;
    let site = Site::from_variables(&variables(&[(names::CONFIG_NAME, "s"), (names::LOCATIONS, location)])).unwrap();
    assert_eq!(
        file(&site.files(), "conf/s.conf"),
        "server {\n    location / {\n        root /srv/www;\n        index index.html;\n    }\n}"
    );
}

#[test]
fn a_reverse_proxy_writes_proxy_pass_directives_then_headers() {
    let site = Site::from_variables(&variables(&[
        (names::CONFIG_NAME, "ReverseProxy"),
        (names::BINDINGS, HTTP_ONLY),
        (names::LOCATIONS, &format!("[{}]", proxy_location("/"))),
    ]))
    .unwrap();
    assert_eq!(
        file(&site.files(), "conf/ReverseProxy.conf"),
        format!("server {{\n    listen 80;\n    location / {{\n{PROXY_BODY}\n    }}\n}}")
    );
}

#[test]
fn https_with_certificate_files_on_disk() {
    let bindings = r#"[{"protocol":"http","port":"80","ipAddress":"*","enabled":true},{"protocol":"https","port":"443","ipAddress":"*","certificateLocation":"/etc/ssl/nginxsample/certificate.crt","certificateKeyLocation":"/etc/ssl/nginxsample/certificate.key","securityProtocols":null,"enabled":true}]"#;
    let site = Site::from_variables(&variables(&[
        (names::CONFIG_NAME, "HttpsReverseProxy"),
        (names::BINDINGS, bindings),
        (names::LOCATIONS, &format!("[{}]", proxy_location("/"))),
    ]))
    .unwrap();
    assert_eq!(
        file(&site.files(), "conf/HttpsReverseProxy.conf"),
        format!(
            "server {{
    listen 80;
    listen 443 ssl;
    ssl_certificate /etc/ssl/nginxsample/certificate.crt;
    ssl_certificate_key /etc/ssl/nginxsample/certificate.key;
    location / {{\n{PROXY_BODY}\n    }}\n}}"
        )
    );
}

#[test]
fn https_with_a_certificate_variable_writes_the_certificate_and_key() {
    let bindings = r#"[{"protocol":"http","port":"80","ipAddress":"*","enabled":true},{"protocol":"https","port":"443","ipAddress":"10.0.0.1","certificateVariable":"WebCert","securityProtocols":["TLSv1.2","TLSv1.3"],"enabled":"True"}]"#;
    let site = Site::from_variables(&variables(&[
        (names::CONFIG_NAME, "HttpsReverseProxy"),
        (names::BINDINGS, bindings),
        (names::LOCATIONS, &format!("[{}]", proxy_location("/"))),
        ("WebCert.SubjectCommonName", "www.example.com"),
        ("WebCert.CertificatePem", "-----BEGIN CERTIFICATE-----\nAAA\n-----END CERTIFICATE-----"),
        ("WebCert.PrivateKeyPem", "-----BEGIN PRIVATE KEY-----\nKKK\n-----END PRIVATE KEY-----"),
        ("WebCert.ChainPem", "-----BEGIN CERTIFICATE-----\nCCC\n-----END CERTIFICATE-----\n"),
    ]))
    .unwrap();
    let files = site.files();
    assert_eq!(
        file(&files, "conf/HttpsReverseProxy.conf"),
        format!(
            "server {{
    listen 80;
    listen 10.0.0.1:443 ssl;
    ssl_certificate /etc/ssl/www.example.com/www.example.com.crt;
    ssl_certificate_key /etc/ssl/www.example.com/www.example.com.key;
    ssl_protocols TLSv1.2 TLSv1.3;
    location / {{\n{PROXY_BODY}\n    }}\n}}"
        )
    );
    assert_eq!(
        file(&files, "ssl/www.example.com/www.example.com.crt"),
        "-----BEGIN CERTIFICATE-----\nAAA\n-----END CERTIFICATE-----\n-----BEGIN CERTIFICATE-----\nCCC\n-----END CERTIFICATE-----\n"
    );
    let key = files.iter().find(|f| f.relative_path.ends_with(".key")).unwrap();
    assert!(key.private);
    assert_eq!(key.contents, "-----BEGIN PRIVATE KEY-----\nKKK\n-----END PRIVATE KEY-----");
}

#[test]
fn the_exact_root_location_wins_and_the_others_get_a_file_each_in_order() {
    let locations = format!("[{},{},{}]", static_location("= /"), static_location("/"), proxy_location("/api/"));
    let site = Site::from_variables(&variables(&[
        ("Octopus.Action.Package.PackageId", "NginxSampleWebApp"),
        ("Octopus.Action.Package.InstallationDirectoryPath", "/var/www/NginxSampleWebApp"),
        (names::BINDINGS, HTTP_ONLY),
        (names::LOCATIONS, &locations),
        (names::HOST_NAME, "www.nginxsampleweb.app"),
    ]))
    .unwrap();
    let files = site.files();
    let paths: Vec<&str> = files.iter().map(|f| f.relative_path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "conf/NginxSampleWebApp.conf.d/location.0.conf",
            "conf/NginxSampleWebApp.conf.d/location.1api.conf",
            "conf/NginxSampleWebApp.conf"
        ]
    );
    assert_eq!(
        file(&files, "conf/NginxSampleWebApp.conf"),
        "server {
    listen 80;
    server_name www.nginxsampleweb.app;
    include /etc/nginx/conf.d/NginxSampleWebApp.conf.d/location.*.conf;
    location = / {
        root /var/www/NginxSampleWebApp/wwwroot;
        try_files $uri $uri/ /index.html;
    }
}"
    );
    assert_eq!(
        file(&files, "conf/NginxSampleWebApp.conf.d/location.0.conf"),
        "    location / {
        root /var/www/NginxSampleWebApp/wwwroot;
        try_files $uri $uri/ /index.html;
    }"
    );
    assert_eq!(
        file(&files, "conf/NginxSampleWebApp.conf.d/location.1api.conf"),
        format!("    location /api/ {{\n{PROXY_BODY}\n    }}")
    );
}

#[test]
fn the_include_line_names_the_configurations_directory() {
    let locations = format!("[{},{}]", static_location("/"), proxy_location("/api/"));
    let site = Site::from_variables(&variables(&[
        (names::CONFIG_NAME, "app"),
        (names::CONFIGURATIONS_DIRECTORY, "/srv/nginx/sites/"),
        (names::LOCATIONS, &locations),
    ]))
    .unwrap();
    assert!(
        file(&site.files(), "conf/app.conf").contains("    include /srv/nginx/sites/app.conf.d/location.*.conf;\n")
    );
}

#[test]
fn location_file_names_keep_order_and_make_no_folders() {
    assert_eq!(location_file_name("= /", 0), "0");
    assert_eq!(location_file_name("/api/", 1), "1api");
    assert_eq!(location_file_name("^/[a-z]something", 2), "2");
    assert_eq!(location_file_name("~ \\.php$", 3), "3php");
    assert_eq!(location_file_name("/a/b/", 4), "4a_b");
    assert_eq!(file_name("StaticContent/MyTest"), "StaticContent_MyTest");
    assert_eq!(file_name("/owner//repo/"), "owner_repo");
}

#[test]
fn a_config_name_with_a_slash_makes_no_folder() {
    let locations = format!("[{},{}]", static_location("/"), static_location("= /"));
    let site = Site::from_variables(&variables(&[
        ("Octopus.Action.Package.PackageId", "StaticContent/MyTest"),
        (names::LOCATIONS, &locations),
    ]))
    .unwrap();
    let paths: Vec<String> = site.files().into_iter().map(|f| f.relative_path).collect();
    assert_eq!(paths, ["conf/StaticContent_MyTest.conf.d/location.0.conf", "conf/StaticContent_MyTest.conf"]);
}

#[test]
fn bad_input_names_the_variable() {
    let err = |pairs: &[(&str, &str)]| Site::from_variables(&variables(pairs)).unwrap_err().to_string();
    assert!(err(&[(names::CONFIG_NAME, "a")]).contains(names::LOCATIONS));
    let no_root = err(&[(names::CONFIG_NAME, "a"), (names::LOCATIONS, &format!("[{}]", proxy_location("/api/")))]);
    assert!(no_root.contains("root location"), "{no_root}");
    let bad_locations = err(&[(names::CONFIG_NAME, "a"), (names::LOCATIONS, "[{\"path\": \"/\"")]);
    assert!(bad_locations.contains(names::LOCATIONS) && bad_locations.contains("not valid JSON"), "{bad_locations}");
    let bad_bindings = err(&[
        (names::CONFIG_NAME, "a"),
        (names::LOCATIONS, &format!("[{}]", static_location("/"))),
        (names::BINDINGS, "{"),
    ]);
    assert!(bad_bindings.contains(names::BINDINGS), "{bad_bindings}");
    let bad_directives =
        err(&[(names::CONFIG_NAME, "a"), (names::LOCATIONS, r#"[{"path":"/","directives":"root /srv"}]"#)]);
    assert!(bad_directives.contains("directives of location '/'"), "{bad_directives}");
    let missing_cert = err(&[
        (names::CONFIG_NAME, "a"),
        (names::LOCATIONS, &format!("[{}]", static_location("/"))),
        (names::BINDINGS, r#"[{"protocol":"https","port":"443","certificateVariable":"Cert","enabled":true}]"#),
        ("Cert.SubjectCommonName", "example.com"),
    ]);
    assert!(missing_cert.contains("Cert.CertificatePem"), "{missing_cert}");
    let no_cert = err(&[
        (names::CONFIG_NAME, "a"),
        (names::LOCATIONS, &format!("[{}]", static_location("/"))),
        (names::BINDINGS, r#"[{"protocol":"https","port":"443","enabled":true}]"#),
    ]);
    assert!(no_cert.contains("https *:443"), "{no_cert}");
    let no_name = err(&[(names::LOCATIONS, &format!("[{}]", static_location("/")))]);
    assert!(no_name.contains(names::CONFIG_NAME), "{no_name}");
}

#[test]
fn disabled_bindings_are_left_out() {
    let bindings = r#"[{"protocol":"http","port":8080,"ipAddress":"127.0.0.1","enabled":true},{"protocol":"http","port":"81","enabled":false}]"#;
    let site = Site::from_variables(&variables(&[
        (names::CONFIG_NAME, "a"),
        (names::BINDINGS, bindings),
        (names::LOCATIONS, &format!("[{}]", static_location("/"))),
    ]))
    .unwrap();
    assert_eq!(site.binding_directives, [("listen", "127.0.0.1:8080".to_string())]);
}
