//! Structured configuration replacement on any bytes, as each format (chosen by the first
//! byte), with a few variables whose names are taken from the input itself (so they match
//! keys, paths and elements of it) and values of every kind (scalars, JSON objects, YAML
//! lists, markup, templates, multi-line text). It must succeed or fail cleanly; whatever it
//! writes must parse again as the same format, and replacing in it again must not panic.
#![no_main]

use calamari::{ConfigFormat, VariableDictionary};
use libfuzzer_sys::fuzz_target;

const FORMATS: [ConfigFormat; 4] = [ConfigFormat::Json, ConfigFormat::Yaml, ConfigFormat::Xml, ConfigFormat::Properties];

const VALUES: [&str; 12] = [
    "v",
    "42",
    "true",
    "null",
    "",
    "{\"a\": [1, \"#{X}\"], \"b\": {\"c\": null}}",
    "[1, 2]",
    "- x\n- y: z",
    "<b a=\"1\">&amp;<![CDATA[]]></b>",
    "line1\nline2 'q' \"dq\" \\ #{X} : = # !",
    "#{Missing}",
    "  padded\t",
];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, content)) = data.split_first() else { return };
    let format = FORMATS[usize::from(selector) % FORMATS.len()];
    let words = words(content);
    let mut variables = VariableDictionary::new();
    variables.set("X", Some("x".to_string()));
    let mut salt = usize::from(selector / 4);
    let mut value = || {
        salt = salt.wrapping_mul(31).wrapping_add(7);
        Some(VALUES[salt % VALUES.len()].to_string())
    };
    for (i, w) in words.iter().enumerate() {
        let next = words.get(i + 1).copied().unwrap_or("0");
        let names = match format {
            ConfigFormat::Xml => vec![
                w.to_string(),
                format!("//{w}"),
                format!("/{w}/{next}"),
                format!("//{w}/@{next}"),
                format!("//{w}[{}]", i + 1),
            ],
            _ => vec![w.to_string(), format!("{w}:{next}"), format!("{w}:{i}"), format!("{w}:{next}:0")],
        };
        for name in names {
            variables.set(name, value());
        }
    }
    if let Ok(Some(out)) = calamari::replace_structured(content, format, &variables) {
        let empty = VariableDictionary::new();
        if let Err(e) = calamari::replace_structured(&out, format, &empty) {
            panic!(
                "{format} output does not parse again: {e}\ninput: {:?}\noutput: {:?}",
                String::from_utf8_lossy(content),
                String::from_utf8_lossy(&out)
            );
        }
        let _ = calamari::replace_structured(&out, format, &variables);
    }
});

/// Up to four distinct words (runs of letters, digits, `_`, `-`, `.`) of the input.
fn words(content: &[u8]) -> Vec<&str> {
    let text = std::str::from_utf8(content).unwrap_or_else(|e| std::str::from_utf8(&content[..e.valid_up_to()]).unwrap());
    let mut out: Vec<&str> = Vec::new();
    for w in text.split(|c: char| !(c.is_alphanumeric() || matches!(c, '_' | '-' | '.'))) {
        if !w.is_empty() && w.len() <= 32 && !out.contains(&w) {
            out.push(w);
            if out.len() == 4 {
                break;
            }
        }
    }
    out
}
