use super::*;

const GOOD: &str = r#"
[eal]
lcores = "0-1"
memory_mb = 256
file_prefix = "ff-test"
extra_args = ["--no-pci"]

[bridge]
datapath_id = "00000000000000ab"
fail_mode = "standalone"

[[bridge.controllers]]
target = "tcp:127.0.0.1:6653"

[openflow]
listen = ["ptcp:127.0.0.1:6634"]

[grpc]
listen = "unix:/run/ferroflow/ferroflow.sock"

[metrics]
listen = "127.0.0.1:9464"

[[ports]]
name = "vm1"
devargs = "net_vhost0,iface=/run/ferroflow/vm1.sock,client=1"
ofport = 1

[[ports]]
name = "tap1"
devargs = "net_tap0,iface=fftap1"
ofport = 2
tag = 10
"#;

fn parse(s: &str) -> Result<Config, ConfigError> {
    Config::parse(s, Path::new("test.toml"))
}

fn invalid_key(s: &str) -> String {
    match parse(s) {
        Err(ConfigError::Invalid { key, .. }) => key,
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[test]
fn design_example_parses() {
    let c = parse(GOOD).unwrap();
    assert_eq!(c.datapath_id(), Some(0xab));
    assert_eq!(c.bridge.fail_mode, FailMode::Standalone);
    assert_eq!(c.ports.len(), 2);
    assert_eq!(c.ports[0].device_name(), "net_vhost0");
    assert_eq!(c.ports[1].vlan_mode(), VlanMode::Access(10));
    assert_eq!(c.lcores(), vec![0, 1]);
}

#[test]
fn eal_args_carry_prefix_cap_and_extra() {
    let c = parse(GOOD).unwrap();
    let a = c.eal_args("ferroflowd");
    let s = a.join(" ");
    assert!(
        s.starts_with("ferroflowd -l 0-1 --file-prefix ff-test --socket-limit 256 --in-memory"),
        "{s}"
    );
    assert!(a.contains(&"--no-pci".to_owned()));
}

#[test]
fn no_huge_uses_m() {
    let c = parse(&GOOD.replace("memory_mb = 256", "memory_mb = 256\nhugepages = false")).unwrap();
    let s = c.eal_args("x").join(" ");
    assert!(s.contains("--no-huge -m 256"), "{s}");
    assert!(!s.contains("--socket-limit"));
}

#[test]
fn syntax_error_names_line() {
    let text = GOOD.replace("ofport = 2", "ofport = = 2");
    match parse(&text) {
        Err(ConfigError::Syntax { line, .. }) => {
            let expected = text.lines().position(|l| l.contains("= = 2")).unwrap() + 1;
            assert_eq!(line, expected);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn unknown_key_is_an_error_with_line() {
    let text = GOOD.replace("ofport = 1", "ofport = 1\nofprot = 3");
    let err = parse(&text).unwrap_err().to_string();
    assert!(err.contains("ofprot"), "{err}");
    assert!(err.starts_with("test.toml:"), "{err}");
}

#[test]
fn duplicate_ofport_and_name_and_device() {
    assert_eq!(
        invalid_key(&GOOD.replace("ofport = 2", "ofport = 1")),
        "ports[1].ofport"
    );
    assert_eq!(
        invalid_key(&GOOD.replace("name = \"tap1\"", "name = \"vm1\"")),
        "ports[1].name"
    );
    assert_eq!(
        invalid_key(&GOOD.replace("net_tap0,iface=fftap1", "net_vhost0,iface=x")),
        "ports[1].devargs"
    );
}

#[test]
fn bad_values_name_their_key() {
    assert_eq!(
        invalid_key(&GOOD.replace("lcores = \"0-1\"", "lcores = \"0\"")),
        "eal.lcores"
    );
    assert_eq!(
        invalid_key(&GOOD.replace("lcores = \"0-1\"", "lcores = \"1-0\"")),
        "eal.lcores"
    );
    assert_eq!(
        invalid_key(&GOOD.replace("00000000000000ab", "xyz")),
        "bridge.datapath_id"
    );
    assert_eq!(
        invalid_key(&GOOD.replace("ofport = 2", "ofport = 0")),
        "ports[1].ofport"
    );
    assert_eq!(
        invalid_key(&GOOD.replace("tag = 10", "tag = 4095")),
        "ports[1].tag"
    );
    assert_eq!(
        invalid_key(&GOOD.replace("tcp:127.0.0.1:6653", "http://x")),
        "bridge.controllers[0].target"
    );
    assert_eq!(
        invalid_key(&GOOD.replace("ptcp:127.0.0.1:6634", "tcp:1.2.3.4:5")),
        "openflow.listen[0]"
    );
    assert_eq!(
        invalid_key(&GOOD.replace("[\"--no-pci\"]", "[\"--no-pci\", \"-l\", \"3\"]")),
        "eal.extra_args"
    );
    assert_eq!(
        invalid_key(&GOOD.replace("memory_mb = 256", "memory_mb = 8")),
        "eal.memory_mb"
    );
}

#[test]
fn missing_eal_is_a_syntax_error() {
    let err = parse("[bridge]\n").unwrap_err().to_string();
    assert!(err.contains("eal"), "{err}");
}

#[test]
fn lcore_lists() {
    assert_eq!(parse_lcores("0,2-4").unwrap(), vec![0, 2, 3, 4]);
    assert!(parse_lcores("0,0").is_err());
    assert!(parse_lcores("a").is_err());
}

const VXLAN: &str = r#"
[[ports]]
name = "vx"
kind = "vxlan"
ofport = 10
uplink = "tap1"
local_ip = "192.0.2.1/24"
remote_ip = "192.0.2.2"
key = "flow"
"#;

#[test]
fn tunnel_ports_parse_and_are_checked() {
    let c = parse(&format!("{GOOD}{VXLAN}\n[tunnels]\nroutes = [\"10.0.0.0/8 via 192.0.2.9\"]\ngateway = \"192.0.2.254\"\n")).unwrap();
    let vx = c.ports.iter().find(|p| p.name == "vx").unwrap();
    assert!(vx.is_tunnel());
    assert_eq!(vx.key, Some(TunnelKey::Flow));
    assert_eq!(c.tunnels.uplink_mtu, 1500);
    assert_eq!(
        parse_route(&c.tunnels.routes[0]).unwrap(),
        ("10.0.0.0".parse().unwrap(), 8, "192.0.2.9".parse().unwrap())
    );
    let with = |from: &str, to: &str| format!("{GOOD}{}", VXLAN.replace(from, to));
    assert_eq!(
        invalid_key(&with("uplink = \"tap1\"", "uplink = \"nope\"")),
        "ports[2].uplink"
    );
    assert_eq!(
        invalid_key(&with("uplink = \"tap1\"", "")),
        "ports[2].uplink"
    );
    assert_eq!(
        invalid_key(&with(
            "remote_ip = \"192.0.2.2\"",
            "remote_ip = \"0.0.0.0\""
        )),
        "ports[2].remote_ip"
    );
    assert_eq!(
        invalid_key(&with("remote_ip = \"192.0.2.2\"", "remote_ip = \"nope\"")),
        "ports[2].remote_ip"
    );
    // OVS's remote_ip=flow: each packet's tun_dst.
    parse(&with("remote_ip = \"192.0.2.2\"", "remote_ip = \"flow\"")).unwrap();
    assert_eq!(
        invalid_key(&with("key = \"flow\"", "key = 16777216")),
        "ports[2].key"
    );
    assert_eq!(
        invalid_key(&with(
            "local_ip = \"192.0.2.1/24\"",
            "local_ip = \"192.0.2.1/33\""
        )),
        "ports[2].local_ip"
    );
    assert_eq!(
        invalid_key(&with(
            "kind = \"vxlan\"",
            "kind = \"vxlan\"\ndevargs = \"net_null0\""
        )),
        "ports[2].devargs"
    );
    // Tunnel keys on an ethdev port are refused by name.
    assert_eq!(
        invalid_key(&format!("{GOOD}\n[[ports]]\nname = \"x\"\ndevargs = \"net_null9\"\nofport = 9\nremote_ip = \"192.0.2.2\"\n")),
        "ports[2].remote_ip"
    );
    assert_eq!(
        invalid_key(&format!(
            "{GOOD}{VXLAN}\n[tunnels]\nroutes = [\"10.0.0.0/8\"]\n"
        )),
        "tunnels.routes"
    );
}
