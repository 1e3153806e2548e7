//! Open vSwitch extensions through the OpenFlow semantics: what a flow-mod with them
//! becomes, what the dump gives back (the same wire actions), and the refusals.

#[path = "../../pipeline/tests/common/mod.rs"]
mod common;

use std::time::Duration;

use common::{frame, run_compiled, PktSpec, L3};
use ofproto::{flow_stats, OfFlowTables};
use openflow::consts::{OFPG_ANY, OFPP_ANY};
use openflow::error::{BadActionCode, BadMatchCode};
use openflow::messages::FlowMod;
use openflow::nx::{header_by_name, NxAction, NxmField, NxmOxm, NX_IN_PORT};
use openflow::{
    Action as OfAction, ErrorCode, Instruction as OfInst, Match as OfMatch, OxmField, OxmTlv,
};
use pipeline::{FlowTables, PipelineConfig, PortInfo};

fn tables() -> FlowTables {
    let mut ft = FlowTables::new(PipelineConfig {
        n_tables: 4,
        ..Default::default()
    });
    for p in 1..=4 {
        ft.set_port(PortInfo::new(p));
    }
    ft.publish();
    ft
}

fn h(name: &str) -> u32 {
    header_by_name(name).unwrap()
}

fn reg(n: u8, v: u128, m: Option<u128>) -> OxmTlv {
    OxmTlv::Nxm(NxmOxm::new(NxmField::Reg(n), v, m).unwrap())
}

fn add(table: u8, prio: u16, m: OfMatch, actions: Vec<OfAction>) -> FlowMod {
    FlowMod::add(table, prio, m, vec![OfInst::ApplyActions(actions)])
}

fn code(r: Result<Vec<pipeline::RemovedFlow>, pipeline::PipelineError>) -> ErrorCode {
    ofproto::error_code(r.unwrap_err())
}

/// Every extension comes back from flow stats as the wire action it came in as.
#[test]
fn extensions_dump_as_they_came() {
    let mut ft = tables();
    let actions = vec![
        OfAction::Nx(NxAction::Resubmit {
            in_port: NX_IN_PORT,
            table: 1,
        }),
        OfAction::Nx(NxAction::Resubmit {
            in_port: 3,
            table: 0xff,
        }),
        OfAction::Nx(NxAction::Resubmit {
            in_port: 0xfffe,
            table: 2,
        }),
        OfAction::Nx(NxAction::RegLoad {
            ofs_nbits: (4 << 6) | 7,
            dst: h("NXM_NX_REG1"),
            value: 0x5a,
        }),
        OfAction::Nx(NxAction::RegLoad {
            ofs_nbits: 63,
            dst: h("OXM_OF_METADATA"),
            value: 1,
        }),
        OfAction::Nx(NxAction::RegLoad2(reg(2, 0x50, Some(0xf0f0)))),
        OfAction::Nx(NxAction::RegMove {
            n_bits: 48,
            src_ofs: 0,
            dst_ofs: 0,
            src: h("NXM_OF_ETH_SRC"),
            dst: h("NXM_OF_ETH_DST"),
        }),
        OfAction::Nx(NxAction::RegMove {
            n_bits: 4,
            src_ofs: 3,
            dst_ofs: 10,
            src: h("NXM_NX_REG1"),
            dst: h("OXM_OF_PKT_REG2"),
        }),
        OfAction::SetField(reg(7, 3, None)),
        OfAction::Nx(NxAction::Note(vec![1, 2, 3, 0, 0, 0])),
        OfAction::Nx(NxAction::CtClear),
        OfAction::output(2),
    ];
    let m = OfMatch::new(vec![
        OxmTlv::eth_type(0x0800),
        OxmTlv::ip_proto(6),
        OxmTlv::masked(OxmField::TcpDst, 0x1000, 0xf000).unwrap(),
        reg(0, 5, None),
        reg(3, 0x10, Some(0xf0)),
    ]);
    ft.flow_mod(&add(0, 7, m.clone(), actions.clone()), Duration::ZERO)
        .unwrap();
    let fcs = ft
        .flow_counts(0, &pipeline::Match::any(), 0, 0, OFPP_ANY, OFPG_ANY)
        .unwrap();
    let st = flow_stats(&fcs[0], Duration::ZERO);
    assert_eq!(st.instructions, vec![OfInst::ApplyActions(actions)]);
    let mut got = st.match_.fields.clone();
    let mut want = m.fields.clone();
    got.sort_by_key(|f| f.header());
    want.sort_by_key(|f| f.header());
    assert_eq!(got, want);
}

/// Refusals with Open vSwitch's codes; nothing changes.
#[test]
fn refusals() {
    let mut ft = tables();
    let z = Duration::ZERO;
    let cases: Vec<(FlowMod, ErrorCode)> = vec![
        // An extension in write-actions.
        (
            FlowMod::add(
                0,
                1,
                OfMatch::any(),
                vec![OfInst::WriteActions(vec![OfAction::Nx(NxAction::CtClear)])],
            ),
            ErrorCode::BadAction(BadActionCode::UnsupportedOrder),
        ),
        // A load past its field, a value wider than its bits, into in_port.
        (
            add(
                0,
                1,
                OfMatch::any(),
                vec![OfAction::Nx(NxAction::RegLoad {
                    ofs_nbits: (30 << 6) | 3,
                    dst: h("NXM_NX_REG0"),
                    value: 1,
                })],
            ),
            ErrorCode::BadAction(BadActionCode::BadArgument),
        ),
        (
            add(
                0,
                1,
                OfMatch::any(),
                vec![OfAction::Nx(NxAction::RegLoad {
                    ofs_nbits: 1,
                    dst: h("NXM_NX_REG0"),
                    value: 4,
                })],
            ),
            ErrorCode::BadAction(BadActionCode::BadArgument),
        ),
        (
            add(
                0,
                1,
                OfMatch::any(),
                vec![OfAction::Nx(NxAction::RegLoad {
                    ofs_nbits: 1,
                    dst: h("OXM_OF_IN_PORT"),
                    value: 1,
                })],
            ),
            ErrorCode::BadAction(BadActionCode::BadArgument),
        ),
        // A move of a header the match does not guarantee.
        (
            add(
                0,
                1,
                OfMatch::any(),
                vec![OfAction::Nx(NxAction::RegMove {
                    n_bits: 16,
                    src_ofs: 0,
                    dst_ofs: 0,
                    src: h("NXM_NX_REG0"),
                    dst: h("NXM_OF_TCP_DST"),
                })],
            ),
            ErrorCode::BadAction(BadActionCode::MatchInconsistent),
        ),
        // A move of more bits than its source has.
        (
            add(
                0,
                1,
                OfMatch::any(),
                vec![OfAction::Nx(NxAction::RegMove {
                    n_bits: 33,
                    src_ofs: 0,
                    dst_ofs: 0,
                    src: h("NXM_NX_REG0"),
                    dst: h("OXM_OF_PKT_REG1"),
                })],
            ),
            ErrorCode::BadAction(BadActionCode::BadArgument),
        ),
        // Open vSwitch's conjunction rules (NXBAC_BAD_CONJUNCTION): only beside notes,
        // 1 <= k <= n, 2 <= n <= 64.
        (
            add(
                0,
                1,
                OfMatch::any(),
                vec![
                    OfAction::Nx(NxAction::Conjunction {
                        clause: 0,
                        n_clauses: 2,
                        id: 1,
                    }),
                    OfAction::Output {
                        port: 1,
                        max_len: 0,
                    },
                ],
            ),
            ErrorCode::NxBadConjunction,
        ),
        (
            add(
                0,
                1,
                OfMatch::any(),
                vec![OfAction::Nx(NxAction::Conjunction {
                    clause: 0,
                    n_clauses: 1,
                    id: 1,
                })],
            ),
            ErrorCode::NxBadConjunction,
        ),
        (
            add(
                0,
                1,
                OfMatch::any(),
                vec![OfAction::Nx(NxAction::Conjunction {
                    clause: 2,
                    n_clauses: 2,
                    id: 1,
                })],
            ),
            ErrorCode::NxBadConjunction,
        ),
        (
            add(
                0,
                1,
                OfMatch::any(),
                vec![OfAction::Nx(NxAction::Conjunction {
                    clause: 0,
                    n_clauses: 65,
                    id: 1,
                })],
            ),
            ErrorCode::NxBadConjunction,
        ),
        (
            FlowMod::add(
                0,
                1,
                OfMatch::any(),
                vec![
                    OfInst::ApplyActions(vec![OfAction::Nx(NxAction::Conjunction {
                        clause: 0,
                        n_clauses: 2,
                        id: 1,
                    })]),
                    OfInst::GotoTable(1),
                ],
            ),
            ErrorCode::NxBadConjunction,
        ),
        // conj_id is matched but never masked, and never written.
        (
            add(
                0,
                1,
                OfMatch::new(vec![OxmTlv::Nxm(
                    NxmOxm::new(NxmField::ConjId, 1, Some(1)).unwrap(),
                )]),
                vec![],
            ),
            ErrorCode::BadMatch(BadMatchCode::BadMask),
        ),
        (
            add(
                0,
                1,
                OfMatch::any(),
                vec![OfAction::Nx(NxAction::RegLoad2(OxmTlv::Nxm(
                    NxmOxm::new(NxmField::ConjId, 1, None).unwrap(),
                )))],
            ),
            ErrorCode::BadAction(BadActionCode::BadSetType),
        ),
        // A register value with bits outside its mask.
        (
            add(0, 1, OfMatch::new(vec![reg(0, 0x11, Some(0x10))]), vec![]),
            ErrorCode::BadMatch(BadMatchCode::BadWildcards),
        ),
    ];
    for (fm, want) in cases {
        assert_eq!(code(ft.flow_mod(&fm, z)), want, "{fm:?}");
    }
    assert_eq!(ft.entries(0).count(), 0);
}

/// Registers carry a value between tables that resubmit, move copies a header field into
/// a register and back, and a port range classifies.
#[test]
fn registers_resubmit_and_move_on_a_packet() {
    let mut ft = tables();
    let z = Duration::ZERO;
    // Table 0: TCP to ports 0x0000-0x0fff loads reg0=2, others reg0=3; copy the low bits
    // of eth_src into reg1; resubmit to 1.
    ft.flow_mod(
        &add(
            0,
            10,
            OfMatch::new(vec![
                OxmTlv::eth_type(0x0800),
                OxmTlv::ip_proto(6),
                OxmTlv::masked(OxmField::TcpDst, 0, 0xf000).unwrap(),
            ]),
            vec![
                OfAction::Nx(NxAction::RegLoad {
                    ofs_nbits: 31,
                    dst: h("NXM_NX_REG0"),
                    value: 2,
                }),
                OfAction::Nx(NxAction::RegMove {
                    n_bits: 8,
                    src_ofs: 0,
                    dst_ofs: 0,
                    src: h("NXM_OF_ETH_SRC"),
                    dst: h("NXM_NX_REG1"),
                }),
                OfAction::Nx(NxAction::Resubmit {
                    in_port: NX_IN_PORT,
                    table: 1,
                }),
            ],
        ),
        z,
    )
    .unwrap();
    ft.flow_mod(
        &add(
            0,
            1,
            OfMatch::any(),
            vec![
                OfAction::SetField(reg(0, 3, None)),
                OfAction::Nx(NxAction::Resubmit {
                    in_port: NX_IN_PORT,
                    table: 1,
                }),
            ],
        ),
        z,
    )
    .unwrap();
    // Table 1: output to reg0, and to 4 when reg1 holds eth_src's low byte (0x02).
    for p in [2u32, 3] {
        ft.flow_mod(
            &add(
                1,
                10,
                OfMatch::new(vec![reg(0, p.into(), None)]),
                vec![OfAction::output(p)],
            ),
            z,
        )
        .unwrap();
    }
    ft.flow_mod(
        &add(
            1,
            20,
            OfMatch::new(vec![reg(0, 2, None), reg(1, 0x02, None)]),
            vec![OfAction::output(4)],
        ),
        z,
    )
    .unwrap();
    ft.publish();
    let spec = |dport: u16| PktSpec {
        dst: 0x0000_0000_0001,
        src: 0x0000_0000_0002,
        vlan: None,
        l3: L3::Ipv4 {
            src: 0x0a00_0001,
            dst: 0x0a00_0002,
            proto: 6,
            ttl: 9,
            sport: 1,
            dport,
        },
    };
    let ports = |dport: u16| -> Vec<u32> {
        run_compiled(&ft, &frame(&spec(dport)), 1)
            .outputs
            .iter()
            .map(|o| o.0)
            .collect()
    };
    assert_eq!(
        ports(80),
        vec![4],
        "port range, reg0=2 and reg1 from eth_src"
    );
    assert_eq!(ports(0x1f90), vec![3], "outside the range: reg0=3");
}
