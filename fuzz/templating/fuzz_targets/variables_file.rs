//! Any bytes, loaded as a `--variables` file (plain or encrypted) or a legacy
//! `--sensitiveVariables` file, must load or fail cleanly; an encrypted copy of the bytes
//! must load to exactly what the plain bytes load to; whatever loads can be read back.
//! The first byte selects the mode (see `MODES`).
#![no_main]
#![allow(clippy::disallowed_methods)] // the harness writes its scratch files with std::fs directly

use calamari::{Variable, VariableDictionary, VariableSources};
use libfuzzer_sys::fuzz_target;

const PASSWORD: &str = "fuzz-password";

/// 0: plain `--variables`; 1: plain legacy file; 2: the bytes as ciphertext;
/// 3: the bytes encrypted, compared with loading them plain; 4: legacy, encrypted.
const MODES: u8 = 5;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else { return };
    // A loaded `AdditionalVariablesPath` would make the loader read an arbitrary file of this
    // machine; that path is not what this target is about.
    if body.windows(10).any(|w| w.eq_ignore_ascii_case(b"additional")) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("variables.json");
    let load = |bytes: &[u8], legacy: bool, password: Option<&str>| {
        std::fs::write(&file, bytes).unwrap();
        let sources = if legacy {
            VariableSources {
                sensitive_files: vec![file.clone()],
                sensitive_password: password.map(str::to_string),
                ..VariableSources::default()
            }
        } else {
            VariableSources { files: vec![file.clone()], password: password.map(str::to_string), ..VariableSources::default() }
        };
        calamari::load_variables(&sources)
    };
    let result = match selector % MODES {
        0 => load(body, false, None),
        1 => load(body, true, None),
        2 => load(body, false, Some(PASSWORD)),
        mode => {
            let legacy = mode == 4;
            let plain = load(body, legacy, None);
            let encrypted = load(&calamari::encrypt_variables(body, PASSWORD), legacy, Some(PASSWORD));
            match (&plain, &encrypted) {
                (Ok(p), Ok(e)) => assert_eq!(listing(p), listing(e), "encrypted and plain loads differ"),
                // Plain bytes starting with `IV__` are refused as "looks encrypted"; decrypted,
                // they are not JSON. Either way both fail.
                (Err(_), Err(_)) => {}
                (p, e) => panic!("plain load {:?} but encrypted load {:?}", p.as_ref().err(), e.as_ref().err()),
            }
            encrypted
        }
    };
    if let Ok(dict) = result {
        let variables = listing(&dict);
        for v in variables.iter().take(8) {
            assert!(dict.contains(&v.name), "{:?} listed but not found", v.name);
            assert_eq!(dict.get_raw(&v.name), v.value.as_deref());
            let _ = dict.get(&v.name);
        }
        let sensitive = variables.iter().filter(|v| v.sensitive && v.value.as_deref().is_some_and(|s| !s.is_empty()));
        for v in sensitive {
            let value = v.value.as_deref().unwrap();
            assert!(dict.sensitive_values().any(|s| s == value), "sensitive value of {:?} not registered", v.name);
        }
    }
});

fn listing(dict: &VariableDictionary) -> Vec<Variable> {
    dict.iter().cloned().collect()
}
