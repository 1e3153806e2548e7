//! Generates the DPDK bindings against whatever `pkg-config libdpdk` reports, and
//! compiles the C forwarders for DPDK's `static inline` functions with DPDK's own
//! cflags. The cflags are taken from the `pkg-config` command itself: the
//! `pkg-config` crate drops `-include rte_config.h -march=corei7`, which the
//! headers need.

use std::env;
use std::path::PathBuf;
use std::process::Command;

fn pkg_config(args: &[&str]) -> Vec<String> {
    let out = Command::new("pkg-config")
        .args(args)
        .arg("libdpdk")
        .output();
    match out {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout)
            .split_whitespace()
            .map(str::to_owned)
            .collect(),
        Ok(o) => panic!(
            "\n\nDPDK was not found: `pkg-config {} libdpdk` failed:\n{}\n\
             Install DPDK 22.11's development files: apt-get install -y libdpdk-dev pkg-config\n\n",
            args.join(" "),
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) => panic!(
            "\n\nCannot run pkg-config ({e}). Install it and DPDK's development files: \
             apt-get install -y pkg-config libdpdk-dev\n\n"
        ),
    }
}

fn main() {
    println!("cargo:rerun-if-changed=src/wrapper.h");
    println!("cargo:rerun-if-changed=src/inline.h");
    println!("cargo:rerun-if-changed=src/inline.c");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");

    let version = pkg_config(&["--modversion"]).join("");
    if !version.starts_with("22.11") {
        println!("cargo:warning=Ferroflow is tested against DPDK 22.11; found {version}");
    }
    let cflags = pkg_config(&["--cflags"]);
    let libs = pkg_config(&["--libs"]);

    // Link exactly what pkg-config lists; `-Wl,...` flags go to the linker as they are.
    for flag in &libs {
        if let Some(dir) = flag.strip_prefix("-L") {
            println!("cargo:rustc-link-search=native={dir}");
        } else if let Some(lib) = flag.strip_prefix("-l") {
            println!("cargo:rustc-link-lib={lib}");
        } else {
            println!("cargo:rustc-link-arg={flag}");
        }
    }

    let mut cc = cc::Build::new();
    cc.file("src/inline.c").opt_level(3).warnings(false);
    // cc wants -include and its argument as separate flags.
    for flag in &cflags {
        cc.flag(flag);
    }
    cc.compile("ferroflow_dpdk_inline");

    let out = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR"));
    let bindings = bindgen::Builder::default()
        .header("src/wrapper.h")
        .clang_args(&cflags)
        .allowlist_function("rte_.*|ff_.*")
        .allowlist_type("rte_.*")
        .allowlist_var("RTE_.*")
        .no_debug("rte_flow_item_gtp_psc")
        // A packed struct holding an aligned one: Rust cannot lay it out; ARP is parsed in Rust.
        .opaque_type("rte_arp_ipv4|rte_arp_hdr|rte_l2tpv2_.*")
        .derive_default(true)
        .layout_tests(false)
        .generate_comments(false)
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()))
        .generate()
        .expect("bindgen failed on the DPDK headers");
    bindings
        .write_to_file(out.join("bindings.rs"))
        .expect("cannot write bindings.rs");
}
