//! The reference's `TransformFileLocatorFixture` scenarios (and the advanced cases of its
//! convention fixture), on real directories: `P` is the package (the extraction directory)
//! and `T` a directory outside it, both under a temp dir; `P/` and `T/` in a definition
//! stand for their absolute paths.

use super::*;

struct Scenario {
    root: tempfile::TempDir,
}

impl Scenario {
    fn new(files: &[&str]) -> Scenario {
        let root = tempfile::tempdir().unwrap();
        for f in files {
            let path = root.path().join(f);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, "<x/>").unwrap();
        }
        Scenario { root }
    }

    fn abs(&self, rel: &str) -> String {
        self.root.path().join(rel).display().to_string()
    }

    /// The transforms `definition` applies to `source`, relative to the temp dir.
    fn transforms(&self, definition: &str, source: &str) -> Vec<String> {
        // Both stand-ins are replaced in one pass: the temp dir's random name may itself end
        // in `P` or `T`, which a second replacement would then rewrite.
        let definition = definition
            .replace("P/", "\u{1}/")
            .replace("T/", "\u{2}/")
            .replace('\u{1}', &self.abs("P"))
            .replace('\u{2}', &self.abs("T"));
        let def = Definition::parse(&definition).unwrap();
        let (log, _, _) = Log::capture();
        transform_files(&self.root.path().join(source), &def, false, &self.root.path().join("P"), &log)
            .into_iter()
            .map(|p| p.strip_prefix(self.root.path()).unwrap().display().to_string())
            .collect()
    }
}

#[test]
fn definitions() {
    let cases: &[(&str, &str, Option<&str>, bool, bool)] = &[
        ("Release", "Release", None, false, false),
        ("web.mytransform.config => web.config", "web.mytransform.config", Some("web.config"), false, false),
        ("*.mytransform.config => *.config", "mytransform.config", Some(".config"), true, true),
        (
            "transforms\\*.mytransform.config=>config\\*.config",
            "transforms/mytransform.config",
            Some("config/.config"),
            true,
            true,
        ),
        (
            "MyApp.*.octopus.config => MyApp.WinSvc.exe.config",
            "MyApp.*.octopus.config",
            Some("MyApp.WinSvc.exe.config"),
            false,
            false,
        ),
        ("bar.blah => *.bar.blah", "bar.blah", Some("bar.blah"), false, true),
        ("*.config => w*.config", ".config", Some("w*.config"), true, false),
    ];
    for (text, transform, target, tw, sw) in cases {
        let d = Definition::parse(text).unwrap();
        assert_eq!(
            (d.transform.as_str(), d.target.as_deref(), d.transform_wildcard, d.target_wildcard),
            (*transform, *target, *tw, *sw),
            "{text}"
        );
        assert_eq!(d.to_string(), *text);
    }
    assert_eq!(Definition::parse("a.config =>"), None);
    assert_eq!(Definition::parse("a => b.blah").unwrap().source_extension().as_deref(), Some("*.blah"));
}

#[test]
fn string_path_operations() {
    assert_eq!(change_extension("/a/web.config", "Release.config"), "/a/web.Release.config");
    assert_eq!(change_extension("/a/web.", "mytransform.config"), "/a/web.mytransform.config");
    assert_eq!(change_extension("/a.b/web", ".x"), "/a.b/web.x");
    assert_eq!(combine(&["/a", "", "b.config"]), "/a/b.config");
    assert_eq!(combine(&["/a/", "t", "/abs/x"]), "/abs/x");
    assert_eq!(full_path("/a/b/../c/./d"), "/a/c/d");
    assert_eq!(relative_path("/t/transforms/w.config", "/t/config/web.config"), "../config/web.config");
    assert_eq!(relative_path("/t/P", "/t/P/sub/web.config"), "P/sub/web.config");
    for (name, pattern, expected) in [
        ("web.config", "*.config", true),
        ("web.Config", "*.config", false),
        ("a.mytransform.config", "*.mytransform.config", true),
        ("MyApp.connstrings.octopus.config", "MyApp.*.octopus.config", true),
        ("MyApp.nlog_octopus.config", "MyApp.*.octopus.config", false),
        ("ab", "a?", true),
        ("a", "a?", false),
    ] {
        assert_eq!(wildcard_match(name, pattern), expected, "{name} vs {pattern}");
    }
}

#[test]
fn transform_and_target_in_every_form() {
    // (files, definition, source, transforms expected). An empty list is the reference's
    // "will do nothing".
    let cases: &[(&[&str], &str, &str, &[&str])] = &[
        (
            &["P/web.config", "P/web.mytransform.config"],
            "web.mytransform.config => web.config",
            "P/web.config",
            &["P/web.mytransform.config"],
        ),
        (
            &["P/web.config", "P/app.config", "P/connstrings.mytransform.config"],
            "connstrings.mytransform.config => *.config",
            "P/app.config",
            &["P/connstrings.mytransform.config"],
        ),
        (
            &["P/web.config", "P/transforms/web.mytransform.config"],
            "transforms/web.mytransform.config => web.config",
            "P/web.config",
            &["P/transforms/web.mytransform.config"],
        ),
        (
            &["P/web.config", "P/app.config", "P/transforms/connstrings.mytransform.config"],
            "transforms\\connstrings.mytransform.config => *.config",
            "P/web.config",
            &["P/transforms/connstrings.mytransform.config"],
        ),
        (
            &["P/web.config", "P/subdir/web.config", "T/web.mytransform.config"],
            "T/web.mytransform.config => web.config",
            "P/subdir/web.config",
            &["T/web.mytransform.config"],
        ),
        (
            &["P/web.config", "T/c.mytransform.config"],
            "T/c.mytransform.config => *.config",
            "P/web.config",
            &["T/c.mytransform.config"],
        ),
        (
            &["P/web.config", "T/connstrings.mytransform.config", "T/security.mytransform.config"],
            "T/*.mytransform.config => web.config",
            "P/web.config",
            &["T/connstrings.mytransform.config", "T/security.mytransform.config"],
        ),
        (
            &["P/subdir/app.config", "T/web.mytransform.config", "T/app.mytransform.config"],
            "T/*.mytransform.config => *.config",
            "P/subdir/app.config",
            &["T/app.mytransform.config"],
        ),
        (
            &["P/config/web.config", "T/web.mytransform.config", "T/app.mytransform.config"],
            "T/*.mytransform.config => config/*.config",
            "P/config/web.config",
            &["T/web.mytransform.config"],
        ),
        (
            &[
                "P/web.config",
                "P/transforms/connstrings.mytransform.config",
                "P/transforms/security.mytransform.config",
            ],
            "transforms/*.mytransform.config => web.config",
            "P/web.config",
            &["P/transforms/connstrings.mytransform.config", "P/transforms/security.mytransform.config"],
        ),
        (
            &[
                "P/web.config",
                "P/app.config",
                "P/transforms/web.mytransform.config",
                "P/transforms/app.mytransform.config",
            ],
            "transforms/*.mytransform.config => *.config",
            "P/app.config",
            &["P/transforms/app.mytransform.config"],
        ),
        (
            &[
                "P/config/web.config",
                "P/transforms/connstrings.mytransform.config",
                "P/transforms/security.mytransform.config",
            ],
            "transforms/*.mytransform.config => config/web.config",
            "P/config/web.config",
            &["P/transforms/connstrings.mytransform.config", "P/transforms/security.mytransform.config"],
        ),
        (
            &["P/config/web.config", "P/transforms/web.mytransform.config", "P/transforms/app.mytransform.config"],
            "transforms/*.mytransform.config => config/*.config",
            "P/config/web.config",
            &["P/transforms/web.mytransform.config"],
        ),
        (
            &["P/web.config", "P/security.mytransform.config", "P/connstrings.mytransform.config"],
            "*.mytransform.config => web.config",
            "P/web.config",
            &["P/connstrings.mytransform.config", "P/security.mytransform.config"],
        ),
        (
            &["P/MyApp.connstrings.octopus.config", "P/MyApp.nlog_octopus.config", "P/MyApp.WinSvc.exe.config"],
            "MyApp.*.octopus.config => MyApp.WinSvc.exe.config",
            "P/MyApp.WinSvc.exe.config",
            &["P/MyApp.connstrings.octopus.config"],
        ),
        (
            &["P/web.config", "P/app.config", "P/web.mytransform.config", "P/app.mytransform.config"],
            "*.mytransform.config => *.config",
            "P/web.config",
            &["P/web.mytransform.config"],
        ),
        (
            &["P/config/web.config", "P/security.mytransform.config", "P/connstrings.mytransform.config"],
            "*.mytransform.config => config/web.config",
            "P/config/web.config",
            &["P/connstrings.mytransform.config", "P/security.mytransform.config"],
        ),
        (
            &["P/config/web.config", "P/config/app.config", "P/app.mytransform.config", "P/web.mytransform.config"],
            "*.mytransform.config => config/*.config",
            "P/config/app.config",
            &["P/app.mytransform.config"],
        ),
        (
            &["P/config/web.config", "P/web.mytransform.config"],
            "web.mytransform.config => config/web.config",
            "P/config/web.config",
            &["P/web.mytransform.config"],
        ),
        (
            &["P/config/web.config", "P/config/app.config", "P/connstrings.mytransform.config"],
            "connstrings.mytransform.config => config/*.config",
            "P/config/app.config",
            &["P/connstrings.mytransform.config"],
        ),
        (
            &["P/config/web.config", "P/transforms/web.mytransform.config"],
            "transforms/web.mytransform.config => config/web.config",
            "P/config/web.config",
            &["P/transforms/web.mytransform.config"],
        ),
        // https://github.com/OctopusDeploy/Issues/issues/3152: a directory name repeated.
        (
            &["P/temp/web.config", "P/transforms/web.mytransform.config"],
            "transforms/web.mytransform.config => temp/web.config",
            "P/temp/web.config",
            &["P/transforms/web.mytransform.config"],
        ),
        (
            &["P/config/web.config", "P/config/app.config", "P/transforms/connstrings.mytransform.config"],
            "transforms/connstrings.mytransform.config => config/*.config",
            "P/config/web.config",
            &["P/transforms/connstrings.mytransform.config"],
        ),
        (
            &["P/config/web.config", "P/config/app.config", "T/connstrings.mytransform.config"],
            "T/connstrings.mytransform.config => config/*.config",
            "P/config/app.config",
            &["T/connstrings.mytransform.config"],
        ),
        (
            &["P/web.config", "P/subdir/web.config", "T/web.mytransform.config"],
            "T/web.mytransform.config => ./web.config",
            "P/web.config",
            &["T/web.mytransform.config"],
        ),
        (
            &["P/web.config", "P/subdir/web.config", "T/web.mytransform.config"],
            "T/web.mytransform.config => ./web.config",
            "P/subdir/web.config",
            &[],
        ),
        (
            &["P/web.config", "P/subdir/web.config", "T/web.mytransform.config"],
            "T/web.mytransform.config => ./subdir/web.config",
            "P/subdir/web.config",
            &["T/web.mytransform.config"],
        ),
        (
            &["P/web.config", "P/subdir/web.config", "T/web.mytransform.config"],
            "T/web.mytransform.config => ./subdir/web.config",
            "P/web.config",
            &[],
        ),
        // Not supported, as in the reference: absolute targets, a transform by absolute path
        // onto a target in another directory, a wildcard inside a name.
        (&["P/web.config", "P/web.mytransform.config"], "web.mytransform.config => P/web.config", "P/web.config", &[]),
        (
            &["P/web.config", "P/app.config", "P/web.mytransform.config"],
            "web.mytransform.config => P/*.config",
            "P/web.config",
            &[],
        ),
        (
            &["P/web.config", "P/transforms/web.mytransform.config"],
            "transforms/web.mytransform.config => P/web.config",
            "P/web.config",
            &[],
        ),
        (
            &["P/web.config", "P/transforms/web.mytransform.config"],
            "transforms/web.mytransform.config => P/*.config",
            "P/web.config",
            &[],
        ),
        (
            &["P/web.config", "T/web.mytransform.config"],
            "T/web.mytransform.config => P/web.config",
            "P/web.config",
            &[],
        ),
        (&["P/web.config", "T/c.mytransform.config"], "T/c.mytransform.config => P/*.config", "P/web.config", &[]),
        (
            &["P/config/web.config", "T/web.mytransform.config"],
            "T/web.mytransform.config => config/web.config",
            "P/config/web.config",
            &[],
        ),
        (
            &["P/config/web.config", "T/s.mytransform.config"],
            "T/*.mytransform.config => config/web.config",
            "P/config/web.config",
            &[],
        ),
        (&["P/web.config", "T/s.mytransform.config"], "T/*.mytransform.config => P/web.config", "P/web.config", &[]),
        (&["P/web.config", "T/s.mytransform.config"], "T/*.mytransform.config => P/*.config", "P/web.config", &[]),
        (
            &["P/web.config", "P/transforms/s.mytransform.config"],
            "transforms/*.mytransform.config => P/*.config",
            "P/web.config",
            &[],
        ),
        (&["P/web.config", "P/s.mytransform.config"], "*.mytransform.config => P/*.config", "P/web.config", &[]),
        (
            &["P/web.config", "P/transforms/s.mytransform.config"],
            "transforms/*.mytransform.config => P/web.config",
            "P/web.config",
            &[],
        ),
        (&["P/web.config", "P/s.mytransform.config"], "*.mytransform.config => P/web.config", "P/web.config", &[]),
        (&["P/web.config", "P/web.mytransform.config"], "*.mytransform.config => w*.config", "P/web.config", &[]),
    ];
    for (files, definition, source, expected) in cases {
        let s = Scenario::new(files);
        assert_eq!(s.transforms(definition, source), *expected, "{definition} on {source}");
    }
}

#[test]
fn named_and_advanced_transforms_of_the_convention_fixture() {
    // The files of the reference's ConfigTransforms convention directory.
    let files = [
        "P/bar.config",
        "P/bar.Release.config",
        "P/bar.Production.config",
        "P/bar.blah",
        "P/bar.sitemap",
        "P/config/fizz.buzz.config",
        "P/config/fizz.sitemap.config",
        "P/config/fizz.xml",
        "P/foo.bar.additional.config",
        "P/foo.bar.blah",
        "P/foo.bar.config",
        "P/foo.bar.xml",
        "P/foo.baz",
        "P/foo.config",
        "P/foo.xml",
        "P/transform/fizz.buzz.xml",
        "P/transform/fizz.config",
        "P/transform/fizz.xml",
        "P/xyz.bar.blah",
        "P/xyz.foo.blah",
    ];
    let s = Scenario::new(&files);
    let cases: &[(&str, &str, &[&str])] = &[
        ("P/bar.config", "Release", &["P/bar.Release.config"]),
        ("P/bar.config", "Production", &["P/bar.Production.config"]),
        ("P/bar.Release.config", "Release", &[]),
        ("P/bar.sitemap", "config\\fizz.sitemap.config=>bar.sitemap", &["P/config/fizz.sitemap.config"]),
        ("P/bar.config", "config/fizz.buzz.config=>bar.config", &["P/config/fizz.buzz.config"]),
        ("P/bar.config", "foo.config=>bar.config", &["P/foo.config"]),
        ("P/bar.blah", "foo.baz=>bar.blah", &["P/foo.baz"]),
        ("P/bar.config", "foo.xml=>bar.config", &["P/foo.xml"]),
        ("P/xyz.bar.blah", "*.foo.blah=>*.bar.blah", &["P/xyz.foo.blah"]),
        ("P/foo.bar.config", "foo.config=>*.bar.config", &["P/foo.config"]),
        ("P/bar.blah", "*.bar.config=>bar.blah", &["P/foo.bar.config"]),
        ("P/foo.config", "foo.bar.additional.config=>foo.config", &["P/foo.bar.additional.config"]),
        ("P/foo.config", "*.bar.config=>*.config", &["P/foo.bar.config"]),
        ("P/foo.xml", "*.bar.xml=>*.xml", &["P/foo.bar.xml"]),
        ("P/config/fizz.xml", "foo.bar.xml=>config/fizz.xml", &["P/foo.bar.xml"]),
        ("P/config/fizz.xml", "transform/fizz.buzz.xml=>config/fizz.xml", &["P/transform/fizz.buzz.xml"]),
        ("P/config/fizz.xml", "transform/*.xml=>config/*.xml", &["P/transform/fizz.xml"]),
        ("P/foo.config", "transform/*.config=>foo.config", &["P/transform/fizz.config"]),
        ("P/bar.config", "P/config/fizz.buzz.config=>bar.config", &["P/config/fizz.buzz.config"]),
        ("P/config/fizz.xml", "P/transform/*.xml=>config/*.xml", &["P/transform/fizz.xml"]),
        ("P/bar.blah", "*.bar.blah => bar.blah", &["P/foo.bar.blah", "P/xyz.bar.blah"]),
        ("P/xyz.bar.blah", "bar.blah => *.bar.blah", &["P/bar.blah"]),
        // Names compare ignoring case, but files are looked up case-sensitively on Linux.
        ("P/xyz.bar.blah", "bar.blah => *.Bar.Blah", &["P/bar.blah"]),
        ("P/bar.blah", "*.Bar.Blah => bar.blah", &[]),
        ("P/foo.config", "foo.bar.config => Foo.Config", &["P/foo.bar.config"]),
    ];
    for (source, definition, expected) in cases {
        assert_eq!(s.transforms(definition, source), *expected, "{definition} on {source}");
    }
}

#[test]
fn diagnostics_say_why_nothing_was_found() {
    let s = Scenario::new(&["P/app.dll.config", "P/app.dll.my-env.config"]);
    let (log, out, _) = Log::capture();
    let def = Definition::parse("Release").unwrap();
    let found = transform_files(&s.root.path().join("P/app.dll.config"), &def, true, &s.root.path().join("P"), &log);
    assert!(found.is_empty());
    let def = Definition::parse("app.dll.my-env.config => app.dll.config").unwrap();
    let found =
        transform_files(&s.root.path().join("P/app.dll.my-env.config"), &def, true, &s.root.path().join("P"), &log);
    assert!(found.is_empty());
    let out = out.contents();
    let p = s.abs("P");
    assert!(
        out.contains(&format!(
            " - skipping as neither transform 'app.dll.Release.config' nor transform 'app.dll.Release' could be found in '{p}'"
        )),
        "{out}"
    );
    assert!(
        out.contains(
            " - Skipping as file name 'app.dll.my-env.config' does not match the target pattern 'app.dll.config'"
        ),
        "{out}"
    );
}
