//! `${{ }}` templates: placeholders, checks and rendering agree and never panic.
#![no_main]
use flux_compat::model::template;
use libfuzzer_sys::fuzz_target;
use std::collections::BTreeMap;

fuzz_target!(|text: &str| {
    let checked = template::check(text);
    for e in &checked {
        assert!(e.offset() <= text.len());
        assert!(!e.to_string().contains('\n'), "{e}");
    }
    let vars: BTreeMap<String, String> = template::all_names()
        .into_iter()
        .map(|k| (k, "v".to_string()))
        .collect();
    let rendered = template::render(text, &vars);
    // Rendering succeeds exactly when the check finds nothing.
    assert_eq!(rendered.is_ok(), checked.is_empty(), "{text:?}");
});
