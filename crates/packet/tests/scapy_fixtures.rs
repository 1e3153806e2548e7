//! Our edits and extraction against frames built by scapy (tests/fixtures/gen.py).

mod common;

use common::{fresh_key, hex, verify_checksums};
use packet::fuzz::Edit;
use packet::{extract, Field, PacketBuf, VecBuf};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

fn num(s: &str) -> u128 {
    match s.strip_prefix("0x") {
        Some(h) => u128::from_str_radix(h, 16).unwrap(),
        None => s.parse().unwrap(),
    }
}

fn parse_edit(s: &str) -> Edit {
    let mut w = s.split_whitespace();
    let op = w.next().unwrap();
    let mut arg = || num(w.next().unwrap_or_else(|| panic!("{s}: missing argument")));
    match op {
        "set_field" => {
            let name = w.next().unwrap();
            let field = Field::from_name(name).unwrap_or_else(|| panic!("unknown field {name}"));
            Edit::SetField(field, num(w.next().unwrap()))
        }
        "push_vlan" => Edit::PushVlan(arg() as u16),
        "pop_vlan" => Edit::PopVlan,
        "push_mpls" => Edit::PushMpls(arg() as u16),
        "pop_mpls" => Edit::PopMpls(arg() as u16),
        "push_pbb" => Edit::PushPbb(arg() as u16),
        "pop_pbb" => Edit::PopPbb,
        "set_mpls_ttl" => Edit::SetMplsTtl(arg() as u8),
        "dec_mpls_ttl" => Edit::DecMplsTtl,
        "set_nw_ttl" => Edit::SetNwTtl(arg() as u8),
        "dec_nw_ttl" => Edit::DecNwTtl,
        "copy_ttl_out" => Edit::CopyTtlOut,
        "copy_ttl_in" => Edit::CopyTtlIn,
        _ => panic!("unknown edit {op}"),
    }
}

fn lines(file: &str) -> Vec<String> {
    std::fs::read_to_string(format!("{DIR}/{file}"))
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(str::to_owned)
        .collect()
}

#[test]
fn edits_match_scapy_bytes() {
    let cases = lines("cases.txt");
    assert!(cases.len() >= 30, "fixtures missing: run gen.py");
    for line in cases {
        let (name, edits) = line.split_once('|').unwrap();
        let input = hex(&std::fs::read_to_string(format!("{DIR}/{name}.in.hex")).unwrap());
        let expected = hex(&std::fs::read_to_string(format!("{DIR}/{name}.out.hex")).unwrap());
        verify_checksums(&input).unwrap_or_else(|e| panic!("{name}: input: {e}"));
        let mut buf = VecBuf::new(&input);
        let mut key = extract(&input, 5);
        key.set_metadata(99);
        for e in edits.split(';') {
            let edit = parse_edit(e);
            edit.apply(&mut buf, &mut key)
                .unwrap_or_else(|err| panic!("{name}: {e}: {err}"));
            assert_eq!(key, fresh_key(buf.data(), &key), "{name}: key after {e}");
        }
        assert_eq!(
            buf.data(),
            &expected[..],
            "{name}: edited bytes differ from scapy's\n ours   {:02x?}\n scapy  {:02x?}",
            buf.data(),
            expected
        );
        verify_checksums(buf.data()).unwrap_or_else(|e| panic!("{name}: output: {e}"));
        assert_eq!(key.metadata(), 99);
    }
}

#[test]
fn extract_matches_scapy_dissection() {
    let cases = lines("extract.txt");
    assert!(cases.len() >= 10);
    for line in cases {
        let mut parts = line.split('|');
        let (name, frame, fields) = (
            parts.next().unwrap(),
            hex(parts.next().unwrap()),
            parts.next().unwrap(),
        );
        let key = extract(&frame, 1);
        for kv in fields.split(',') {
            let (k, v) = kv.split_once('=').unwrap();
            let field = Field::from_name(k).unwrap_or_else(|| panic!("unknown field {k}"));
            assert_eq!(key.get(field), num(v), "{name}: {k} in {key:?}");
        }
    }
}
