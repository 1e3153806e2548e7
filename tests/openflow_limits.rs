//! What a peer can make the OpenFlow agent do at the edges of the protocol: replies too
//! large for one message are split by size (REPLY_MORE), never dropped; a reply entry no
//! message can hold gets the requester an error.

mod common;

// Every EAL argument list here comes from tests/common's eal_section: --no-pci,
// its own --file-prefix, --in-memory and a --socket-limit memory cap.

use common::*;

const TARGET: &str = "tcp:127.0.0.1:16636";

fn start(tag: &str) -> Ferroflowd {
    let mut config = eal_section(&format!("ff-t-{tag}"));
    config += "[openflow]\nlisten = [\"ptcp:127.0.0.1:16636\"]\n[datapath]\nidle_sleep_us = 200\n";
    config += "\n[[ports]]\nname = \"n1\"\ndevargs = \"net_null0,no-rx=1\"\nofport = 1\n";
    config += "\n[[ports]]\nname = \"n2\"\ndevargs = \"net_null1,no-rx=1\"\nofport = 2\n";
    Ferroflowd::start(tag, &config, 300.0)
}

fn actions(n: usize) -> String {
    (0..n)
        .map(|i| format!("output:{}", 1 + i % 2))
        .collect::<Vec<_>>()
        .join(",")
}

#[test]
fn dump_flows_of_64_flows_with_100_actions_prints_all_64() {
    let _lock = DatapathLock::take();
    let ff = start("oflim-dump");
    let dir = TempDir::new("oflim-dump");
    let file = dir.path("flows.txt");
    let flows: String = (0..64)
        .map(|i| {
            format!(
                "table=1,priority={},in_port=1,actions={}\n",
                100 + i,
                actions(100)
            )
        })
        .collect();
    std::fs::write(&file, flows).unwrap();
    let (ok, text) = ofctl(&["add-flows", TARGET, file.to_str().unwrap()]);
    assert!(ok, "add-flows: {text}");

    // About 107 kB of flow stats: at least two REPLY_MORE-linked messages.
    let (ok, dump) = ofctl(&["dump-flows", TARGET, "table=1"]);
    assert!(ok, "dump-flows: {dump}");
    let printed = dump.lines().filter(|l| l.contains("priority=")).count();
    assert_eq!(printed, 64, "every flow printed:\n{dump}");
    for i in 0..64 {
        let line = dump
            .lines()
            .find(|l| l.contains(&format!("priority={},", 100 + i)))
            .unwrap_or_else(|| panic!("flow priority {} missing", 100 + i));
        assert_eq!(
            line.matches("output:").count(),
            100,
            "all 100 actions: {line}"
        );
    }

    // One flow whose stats entry alone is over 65535 bytes (its flow-mod, 16 bytes
    // shorter, fits): the dump of its table is refused with an error, not cut short.
    let (ok, text) = ofctl(&[
        "add-flow",
        TARGET,
        &format!("table=2,priority=1,actions={}", actions(4091)),
    ]);
    assert!(ok, "the 65528-byte flow-mod is accepted: {text}");
    // (ovs-ofctl prints the error but exits 0 on an error reply to a dump.)
    let (_, text) = ofctl(&["dump-flows", TARGET, "table=2"]);
    assert!(
        !text.contains("priority="),
        "nothing of the refused reply is printed:\n{text}"
    );
    assert!(
        text.contains("OFPBRC_MULTIPART_BUFFER_OVERFLOW"),
        "the error names the code:\n{text}"
    );
    // The switch is alive and its state kept.
    let (ok, dump) = ofctl(&["dump-flows", TARGET, "table=1"]);
    assert!(ok, "{dump}");
    assert_eq!(dump.lines().filter(|l| l.contains("priority=")).count(), 64);
    let log = ff.log_text();
    assert!(
        !log.contains("cannot encode"),
        "no reply was dropped silently:\n{log}"
    );
    drop(ff.stop());
}
