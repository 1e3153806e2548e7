//! The ferroflowd config file parser on any text: a config or an error, never a panic;
//! whatever parses yields its EAL arguments and port checks without a panic either.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(c) = ferroflow_config::Config::parse(text, Path::new("fuzz.toml")) {
        let _ = c.eal_args("ferroflowd");
        let _ = c.validate_ports();
        let _ = c.datapath_id();
        let _ = c.lcores();
    }
});
