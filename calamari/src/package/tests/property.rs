//! Property: whatever archive is generated (names, links, kinds), nothing is ever written
//! outside the destination, and a failed extraction leaves nothing behind.

use super::*;
use proptest::prelude::*;

fn component() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("a".to_string()),
        Just("b".to_string()),
        Just("..".to_string()),
        Just(".".to_string()),
        Just("".to_string()),
        Just("C:".to_string()),
        Just("outside".to_string()),
        Just("sentinel".to_string()),
    ]
}

fn path() -> impl Strategy<Value = String> {
    (any::<bool>(), prop::collection::vec(component(), 1..4), prop_oneof![Just("/"), Just("\\")])
        .prop_map(|(abs, parts, sep)| format!("{}{}", if abs { sep } else { "" }, parts.join(sep)))
}

#[derive(Debug, Clone)]
enum Kind {
    File,
    Dir,
    Symlink(String),
    Hardlink(String),
}

fn target() -> impl Strategy<Value = String> {
    prop_oneof![
        path(),
        Just("..".to_string()),
        Just("../outside".to_string()),
        Just("a/../..".to_string()),
        Just("b/..".to_string()),
        Just("/tmp".to_string()),
        Just(".".to_string()),
    ]
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        2 => Just(Kind::File),
        1 => Just(Kind::Dir),
        3 => target().prop_map(Kind::Symlink),
        1 => target().prop_map(Kind::Hardlink),
    ]
}

fn check_inside(dest: &Path) {
    let real_dest = dest.canonicalize().unwrap();
    for e in walkdir::WalkDir::new(dest).follow_links(false).into_iter().flatten() {
        if let Ok(real) = e.path().canonicalize() {
            assert!(real.starts_with(&real_dest), "{} resolves to {}", e.path().display(), real.display());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]
    #[test]
    fn nothing_lands_outside(entries in prop::collection::vec((path(), kind()), 1..8), zip in any::<bool>()) {
        let s = Sandbox::new();
        let archive = if zip {
            // The zip writer refuses duplicate names itself.
            let mut seen = std::collections::HashSet::new();
            let z: Vec<Z<'_>> = entries.iter().filter(|(p, _)| seen.insert(p.clone())).map(|(p, k)| match k {
                Kind::File | Kind::Hardlink(_) => Z::File(p, b"data"),
                Kind::Dir => Z::Dir(p),
                Kind::Symlink(t) => Z::Symlink(p, t),
            }).collect();
            s.archive("p.1.0.0.zip", &zip_bytes_with(&z, true))
        } else {
            let t: Vec<T<'_>> = entries.iter().filter(|(p, _)| p.len() <= 100).map(|(p, k)| match k {
                Kind::File => T::File(p, b"data", 0o644),
                Kind::Dir => T::Dir(p, 0o755),
                Kind::Symlink(t) => T::Symlink(p, if t.len() <= 100 { t } else { "x" }),
                Kind::Hardlink(t) => T::Hardlink(p, if t.len() <= 100 { t } else { "x" }),
            }).collect();
            s.archive("p.1.0.0.tar", &tar_bytes(&t))
        };
        let before = s.snapshot();
        let (result, _) = s.extract(&archive, &ExtractOptions::default());
        prop_assert_eq!(&before, &s.snapshot());
        prop_assert_eq!(std::fs::read_to_string(s.path("outside/sentinel")).unwrap(), "keep");
        match result {
            Ok(_) => check_inside(&s.dest()),
            Err(_) => prop_assert!(s.dest().symlink_metadata().is_err()),
        }
        let left = std::fs::read_dir(s.path("work")).unwrap().flatten()
            .filter(|e| e.file_name() != "dest").count();
        prop_assert_eq!(left, 0);
    }
}
