//! Fuzz target for the Octostache parser and evaluator: any input, in both parse modes,
//! must parse or fail cleanly, render back to text, and evaluate without panicking;
//! text without `#{` must come back unchanged.
#![no_main]

use calamari::VariableDictionary;
use calamari::ParseMode;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(t) = calamari::parse_template(text) {
        let _ = t.to_string();
        let _ = t.argument_names();
    }
    let _ = calamari::internals::parse_template_resilient(text);
    let mut d = VariableDictionary::new();
    d.set("A", Some("1".to_string()));
    d.set("B", Some("#{A}".to_string()));
    d.set("C", Some("#{C}".to_string()));
    d.set("J", Some("{\"x\": [1, {\"y\": \"#{A}\"}]}".to_string()));
    d.set("L[a].N", Some("n".to_string()));
    d.set(text, Some(text.to_string()));
    for mode in [ParseMode::Halt, ParseMode::Resilient] {
        if let Ok(e) = d.evaluate_with(text, mode) {
            if !text.contains("#{") {
                assert_eq!(e.output.as_deref(), Some(text));
            }
        }
    }
});
