//! OpenFlow over TLS, both ways, with certificates from a throwaway CA made
//! by openssl: ovs-ofctl reaches a `pssl:` listener only with a certificate
//! the switch's CA signed; ferroflowd reaches os-ken over `ssl:`.

mod common;

// Every EAL argument list here comes from tests/common's eal_section: --no-pci,
// its own --file-prefix, --in-memory and a --socket-limit memory cap.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// A CA, and certificates it signs for "switch", "client" and "controller",
/// plus one from another CA ("stranger").
fn make_pki(dir: &Path) {
    let d = dir.display();
    let sh_ok = |cmd: String| run(&format!("cd {d} && {cmd} 2>/dev/null"));
    sh_ok("openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 2 -subj /CN=ferroflow-test-ca".into());
    sh_ok("openssl req -x509 -newkey rsa:2048 -nodes -keyout other-ca.key -out other-ca.crt -days 2 -subj /CN=other-ca".into());
    for (name, ca) in [
        ("switch", "ca"),
        ("client", "ca"),
        ("controller", "ca"),
        ("stranger", "other-ca"),
    ] {
        std::fs::write(
            dir.join(format!("{name}.ext")),
            "subjectAltName=IP:127.0.0.1\n",
        )
        .unwrap();
        sh_ok(format!("openssl req -newkey rsa:2048 -nodes -keyout {name}.key -out {name}.csr -subj /CN={name}"));
        sh_ok(format!(
            "openssl x509 -req -in {name}.csr -CA {ca}.crt -CAkey {ca}.key -CAcreateserial -out {name}.crt -days 2 -extfile {name}.ext"
        ));
    }
}

fn tls_section(dir: &Path) -> String {
    format!(
        "tls_certificate = \"{0}/switch.crt\"\ntls_private_key = \"{0}/switch.key\"\ntls_ca_certificate = \"{0}/ca.crt\"\n",
        dir.display()
    )
}

#[test]
fn ovs_ofctl_over_pssl_needs_a_certificate_from_the_ca() {
    let _lock = DatapathLock::take();
    let pki = TempDir::new("pki-pssl");
    make_pki(&pki.0);
    let mut config = eal_section("ff-t-pssl");
    config += &format!(
        "[openflow]\nlisten = [\"pssl:16637:127.0.0.1\"]\n{}",
        tls_section(&pki.0)
    );
    config += "[datapath]\nidle_sleep_us = 200\n\n[[ports]]\nname = \"n1\"\ndevargs = \"net_null0,no-rx=1\"\nofport = 1\n";
    let ff = Ferroflowd::start("pssl", &config, 300.0);
    let ofctl = |who: &str| {
        let d = pki.0.display();
        sh(&format!(
            "timeout 10 ovs-ofctl -O OpenFlow13 --private-key={d}/{who}.key --certificate={d}/{who}.crt \
             --ca-cert={d}/ca.crt show ssl:127.0.0.1:16637"
        ))
    };
    let good = ofctl("client");
    let text =
        String::from_utf8_lossy(&good.stdout).into_owned() + &String::from_utf8_lossy(&good.stderr);
    assert!(
        good.status.success() && text.contains("n_tables:255"),
        "ovs-ofctl over TLS:\n{text}\n{}",
        ff.log_text()
    );
    let bad = ofctl("stranger");
    assert!(
        !bad.status.success(),
        "a certificate from another CA was accepted"
    );
    drop(ff.stop());
}

#[test]
fn ferroflowd_reaches_an_osken_controller_over_ssl() {
    let _lock = DatapathLock::take();
    let pki = TempDir::new("pki-ssl");
    make_pki(&pki.0);
    let py =
        std::env::var("FERROFLOW_PY_DIR").unwrap_or_else(|_| "/var/lib/ferroflow/python".into());
    let python = Path::new(&py).join("venv/bin/python");
    let app = Path::new(&py).join("apps/simple_switch_13.py");
    assert!(
        python.exists() && app.exists(),
        "os-ken IS NOT INSTALLED: run tests/conformance/setup-osken.sh"
    );
    let d = pki.0.display().to_string();
    let log = pki.0.join("osken.log");
    let osken = Command::new(python)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance/osken_run.py"))
        .args([
            "--ofp-listen-host",
            "127.0.0.1",
            "--ofp-tcp-listen-port",
            "16654",
            "--ofp-ssl-listen-port",
            "16655",
        ])
        .args([
            "--ctl-privkey",
            &format!("{d}/controller.key"),
            "--ctl-cert",
            &format!("{d}/controller.crt"),
        ])
        .args(["--ca-certs", &format!("{d}/ca.crt"), "--verbose"])
        .arg(app)
        .env("OSKEN_HUB_TYPE", "eventlet")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("os-ken");
    // Ends os-ken (by its PID) however the test ends.
    struct Reap(std::process::Child);
    impl Drop for Reap {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _osken = Reap(osken);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !run("ss -ltn").contains("127.0.0.1:16655 ") {
        assert!(Instant::now() < deadline, "os-ken did not listen on TLS");
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut config = eal_section("ff-t-ssl");
    config += "[bridge]\n[[bridge.controllers]]\ntarget = \"ssl:127.0.0.1:16655\"\n";
    config += &format!(
        "[openflow]\nlisten = [\"ptcp:16638:127.0.0.1\"]\n{}",
        tls_section(&pki.0)
    );
    config += "[datapath]\nidle_sleep_us = 200\n\n[[ports]]\nname = \"n1\"\ndevargs = \"net_null0,no-rx=1\"\nofport = 1\n";
    let mut ff = Ferroflowd::start("ssl", &config, 300.0);
    // simple_switch_13 installs its table-miss flow once the TLS session is up.
    ff.wait_until(
        Duration::from_secs(30),
        "the controller's flow over TLS",
        |_| {
            let out = sh("timeout 10 ovs-ofctl -O OpenFlow13 dump-flows tcp:127.0.0.1:16638");
            String::from_utf8_lossy(&out.stdout).contains("actions=CONTROLLER:65535")
        },
    );
    drop(ff.stop());
}
