//! Pipeline B's flows as `../shared/bench/gen-flows.py B -n N` writes them (the metadata
//! DNAT rule, N `in_port,dl_src -> goto_table:1`, N `dl_dst -> output:2` and the two
//! table-miss entries: 2N + 3 flows), for the examples that count what loading them costs
//! (`flowmod_cost`, `parse_cost`, `flows_decode`; each includes this file with `#[path]`,
//! so that they count the same flows without a generator each).

/// Pipeline B with `n` instances, one flow a string.
pub fn shape_b(n: u32) -> Vec<String> {
    let mac = |i: u32| {
        format!(
            "02:00:00:{:02x}:{:02x}:{:02x}",
            (i >> 16) & 0xff,
            (i >> 8) & 0xff,
            i & 0xff
        )
    };
    let mut v = vec!["table=0,priority=1000,tcp,nw_dst=169.254.169.254,tp_dst=80,actions=mod_dl_dst:02:fe:00:00:00:01,mod_nw_dst:10.254.0.1,mod_tp_dst:8775,output:2".to_string()];
    v.extend((0..n).map(|i| {
        format!(
            "table=0,priority=100,in_port=1,dl_src={},actions=goto_table:1",
            mac(i)
        )
    }));
    v.push("table=0,priority=0,actions=drop".into());
    v.extend((0..n).map(|i| format!("table=1,priority=100,dl_dst={},actions=output:2", mac(i))));
    v.push("table=1,priority=0,actions=drop".into());
    v
}
