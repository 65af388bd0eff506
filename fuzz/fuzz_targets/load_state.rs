//! Fuzz target: arbitrary bytes, as (lossy) UTF-8 text, through the daemon's
//! state-file parser `ipcd::persist::parse`, which `persist::load` calls on
//! `registry.json` at every start.
//!
//! Any text must give a state file or an error, never a panic or a hang. What
//! parses must save and parse again to the same file: the loader's fix-ups
//! (format 1's `buffered` flag moved into `state`, placeholder kernel names
//! dropped) are applied once and are stable.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let Ok(file) = ipcd::persist::parse(&text) else {
        return;
    };
    let saved = serde_json::to_string(&file).expect("a parsed state file serialises");
    let again = ipcd::persist::parse(&saved).expect("a saved state file parses");
    assert_eq!(again.objects.len(), file.objects.len());
    assert_eq!(
        serde_json::to_string(&again).expect("serialises"),
        saved,
        "a second load changes the file"
    );
});
