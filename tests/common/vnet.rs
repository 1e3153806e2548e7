//! The virtual-network tests' switch and hosts (vnet_profile, vnet_metadata_nat,
//! vnet_secgroups): the operator's ferroflowctl beside the switch's /metrics, instances
//! added as an operator adds them, and kernel hosts behind the switch's taps.

use super::{run, wait_for_interface, Netns, Operator};

/// A TCP address on loopback that was free a moment ago (bound, read, released): where a
/// test's switch serves /metrics, so that tests running side by side do not collide.
pub fn free_local_addr() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().to_string()
}

/// The operator's ferroflowctl against one switch (it derefs to the [`Operator`]), and
/// the address of that switch's /metrics.
pub struct VnetSwitch {
    pub op: Operator,
    /// `HOST:PORT` of /metrics.
    pub metrics: String,
}

impl std::ops::Deref for VnetSwitch {
    type Target = Operator;

    fn deref(&self) -> &Operator {
        &self.op
    }
}

impl VnetSwitch {
    /// The value of `series` (the name with its labels, as /metrics prints it:
    /// `ferroflow_x_total{a="b"}`) in a scrape made now; panics if the switch does not
    /// export it.
    pub fn metrics_value(&self, series: &str) -> u64 {
        let text = run(&format!("curl -s http://{}/metrics", self.metrics));
        let prefix = format!("{series} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {series} in /metrics"))
    }
}

impl Operator {
    /// `ferroflowctl instance add NAME --network N --port NAME --mac MAC --ip IP
    /// [--secgroup G]...`: an instance on the port named after it, which must succeed.
    pub fn add_instance(&self, name: &str, network: &str, mac: &str, ip: &str, groups: &[&str]) {
        let mut args = vec![
            "instance",
            "add",
            name,
            "--network",
            network,
            "--port",
            name,
            "--mac",
            mac,
            "--ip",
            ip,
        ];
        for g in groups {
            args.extend_from_slice(&["--secgroup", g]);
        }
        self.ok(&args);
    }
}

/// A kernel host behind one of the switch's taps: the tap `ifname` (ferroflowd's, waited
/// for) with MAC `mac` and address `cidr`, moved into a namespace named after it.
pub fn tap_host(ifname: &str, mac: &str, cidr: &str) -> Netns {
    wait_for_interface(ifname);
    let ns = Netns::new(ifname);
    run(&format!("ip link set {ifname} address {mac}"));
    ns.adopt(ifname, cidr);
    ns
}
