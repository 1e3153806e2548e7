//! The property the `of_session` fuzz target (`fuzz/`) checks, here so that a unit test
//! runs it over seed inputs on stable: one connection's whole life through the agent's
//! framing, decoding, dispatch, roles and bundles, fed any sequence of messages.
//!
//! The input is a list of segments; each is a type byte, a length byte and that many body
//! bytes, sent as one message with a correct OpenFlow 1.3 header (so the fuzzer explores
//! bodies instead of rediscovering headers); type 0xFF sends its bytes raw instead (bad
//! headers, split messages). Type 4 bodies are prefixed with the ONF experimenter id, so
//! bundle control (2300) and add (2301) messages are a byte away. The property: the agent
//! never panics or hangs (the connection ends within 10 s of the input's end), and
//! everything it sends back is a valid OpenFlow message.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use openflow::consts::Capabilities;
use openflow::messages::SwitchFeatures;
use openflow::multipart::{FlowStats, MultipartReply, MultipartReplyBody, MultipartRequestBody};
use openflow::{decode, frame_len, Action, ErrorCode, Instruction, Match, Message};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::{conn, AgentConfig, AgentLimits, BundleLimits, OfSwitch};

/// A switch that accepts everything, answers flow dumps with flows too large for one
/// message (so replies are split), and refuses bundled flow-mods of priority 13 on add and
/// 14 on commit.
struct FuzzSwitch;

fn priority(m: &Message) -> u16 {
    match m {
        Message::FlowMod(f) => f.priority,
        _ => 0,
    }
}

impl OfSwitch for FuzzSwitch {
    fn features(&self) -> SwitchFeatures {
        SwitchFeatures {
            datapath_id: 1,
            n_buffers: 0,
            n_tables: 254,
            auxiliary_id: 0,
            capabilities: Capabilities::empty(),
            reserved: 0,
        }
    }

    fn handle(&self, request: &Message) -> Result<Vec<Message>, ErrorCode> {
        let Message::MultipartRequest(r) = request else {
            return Ok(vec![]);
        };
        let MultipartRequestBody::Flow(f) = &r.body else {
            return Ok(vec![]);
        };
        // table_id picks the number of actions per flow: up to 8160 (one entry too large).
        let actions = usize::from(f.table_id) * 32;
        let flow = FlowStats {
            table_id: f.table_id,
            duration_sec: 0,
            duration_nsec: 0,
            priority: 1,
            idle_timeout: 0,
            hard_timeout: 0,
            flags: openflow::consts::FlowModFlags::empty(),
            cookie: 0,
            packet_count: 0,
            byte_count: 0,
            match_: Match::any(),
            instructions: vec![Instruction::ApplyActions(
                (0..actions).map(|i| Action::output(i as u32 + 1)).collect(),
            )],
        };
        Ok(vec![Message::MultipartReply(MultipartReply {
            flags: openflow::consts::MultipartFlags::empty(),
            body: MultipartReplyBody::Flow(vec![flow; 3]),
        })])
    }

    fn barrier(&self) -> Result<(), ErrorCode> {
        Ok(())
    }

    fn try_barrier(&self) -> bool {
        true
    }

    fn bundle_check(&self, request: &Message) -> Result<(), ErrorCode> {
        match priority(request) {
            13 => Err(ErrorCode::BadRequest(
                openflow::error::BadRequestCode::Eperm,
            )),
            _ => Ok(()),
        }
    }

    fn bundle_commit(&self, requests: &[Message]) -> Result<(), (usize, ErrorCode)> {
        match requests.iter().position(|m| priority(m) == 14) {
            Some(i) => Err((
                i,
                ErrorCode::BadRequest(openflow::error::BadRequestCode::Eperm),
            )),
            None => Ok(()),
        }
    }
}

/// The bytes a peer sends for `data` (see the module docs).
pub fn session_bytes(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = data;
    let mut xid = 1u32;
    while let [ty, len, tail @ ..] = rest {
        let n = usize::from(*len).min(tail.len());
        let (body, next) = tail.split_at(n);
        rest = next;
        if *ty == 0xff {
            out.extend_from_slice(body);
            continue;
        }
        let mut b = Vec::new();
        if *ty == 4 {
            b.extend_from_slice(&openflow::consts::experimenter::ONF.to_be_bytes());
        }
        b.extend_from_slice(body);
        let length = (8 + b.len()) as u16;
        out.extend_from_slice(&[4, *ty]);
        out.extend_from_slice(&length.to_be_bytes());
        out.extend_from_slice(&xid.to_be_bytes());
        out.extend_from_slice(&b);
        xid += 1;
    }
    out
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    // Multi-threaded: the agent hands slow requests to block_in_place.
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a tokio runtime")
    })
}

/// Runs one connection over `data` and checks the property (panics if it fails); returns
/// the messages the agent sent, HELLO included.
pub fn check_session(data: &[u8]) -> Vec<Message> {
    let input = session_bytes(data);
    let config = AgentConfig {
        limits: AgentLimits {
            bundles: BundleLimits {
                per_connection: 4,
                messages_per_bundle: 8,
                messages_total: 16,
                idle_timeout: Duration::from_secs(60),
            },
            ..AgentLimits::default()
        },
        ..AgentConfig::default()
    };
    let replies = exchange(Arc::new(FuzzSwitch), config, input, Duration::from_secs(10));
    let mut sent = Vec::new();
    let mut at = &replies[..];
    while !at.is_empty() {
        let len = frame_len(at)
            .expect("the agent frames its messages")
            .expect("the agent sends whole messages");
        sent.push(
            decode(&at[..len])
                .expect("the agent sends valid messages")
                .body,
        );
        at = &at[len..];
    }
    sent
}

/// Runs one connection of `switch` (default agent settings) over `input`, the bytes a
/// peer sends before it closes its side; returns the bytes the agent sent. For measuring
/// the agent's own cost per message (`examples/bundle_agent_cost.rs`).
pub fn serve_bytes(switch: Arc<dyn OfSwitch>, input: Vec<u8>) -> Vec<u8> {
    exchange(
        switch,
        AgentConfig::default(),
        input,
        Duration::from_secs(120),
    )
}

/// One connection of `switch` over `input` (the peer then closes its side), every wait
/// bounded by `bound` (the fuzz property's 10 s is under libFuzzer's per-input timeout;
/// the cost example runs 100k messages under callgrind); the bytes the agent sent.
fn exchange(
    switch: Arc<dyn OfSwitch>,
    config: AgentConfig,
    input: Vec<u8>,
    bound: Duration,
) -> Vec<u8> {
    let shared = Arc::new(conn::Shared::new(switch, config));
    runtime().block_on(async move {
        let (mut peer, agent_side) = tokio::io::duplex(1 << 20);
        let serve = tokio::spawn(conn::serve(shared, agent_side, "bytes".into(), false, None));
        let (mut rd, mut wr) = tokio::io::split(&mut peer);
        let write = async {
            let _ = wr.write_all(&input).await;
            let _ = wr.shutdown().await;
        };
        let mut replies = Vec::new();
        let read = rd.read_to_end(&mut replies);
        let (_, r) = tokio::time::timeout(bound, async { tokio::join!(write, read) })
            .await
            .expect("the connection must end once the peer has sent everything");
        r.expect("reading the agent's replies");
        tokio::time::timeout(bound, serve)
            .await
            .expect("the connection task must end")
            .expect("the connection task must not panic");
        replies
    })
}

/// Appends `msg` to a session input as a framed segment (type, length, body), or raw when
/// its body does not fit a length byte.
fn push(out: &mut Vec<u8>, msg: Message) {
    let bytes = openflow::OfpMessage::new(0, msg)
        .encode()
        .expect("seed messages encode");
    let skip = if bytes[1] == 4 { 12 } else { 8 };
    let body = &bytes[skip..];
    if let Ok(len) = u8::try_from(body.len()) {
        out.extend_from_slice(&[bytes[1], len]);
        out.extend_from_slice(body);
    } else {
        for part in bytes.chunks(255) {
            out.extend_from_slice(&[0xff, part.len() as u8]);
            out.extend_from_slice(part);
        }
    }
}

/// Session inputs that reach every part of the agent: handshake, echo, roles, config,
/// dumps that split or cannot be sent, packet-out, bundles committed, refused, discarded.
pub fn seed_sessions() -> Vec<Vec<u8>> {
    use openflow::bundle::{BundleAdd, BundleCtrl, BundleCtrlType as T, BundleFlags};
    use openflow::messages::{ControllerRole, FlowMod, Hello, PacketOut, RoleMsg, SwitchConfig};
    use openflow::multipart::{FlowStatsRequest, MultipartRequest};
    let flow_mod = |priority| {
        FlowMod::add(
            0,
            priority,
            Match::any(),
            vec![Instruction::ApplyActions(vec![Action::output(1)])],
        )
    };
    let ctrl = |t, id| {
        BundleCtrl {
            bundle_id: id,
            ctrl_type: t,
            flags: BundleFlags::ATOMIC,
            properties: vec![],
        }
        .to_message()
    };
    let add = |id, priority| {
        BundleAdd {
            bundle_id: id,
            flags: BundleFlags::ATOMIC,
            message: openflow::OfpMessage::new(0, Message::FlowMod(flow_mod(priority)))
                .encode()
                .expect("flow-mod"),
            properties: vec![],
        }
        .to_message()
    };
    let dump = |table_id| {
        Message::MultipartRequest(MultipartRequest {
            flags: openflow::consts::MultipartFlags::empty(),
            body: MultipartRequestBody::Flow(FlowStatsRequest {
                table_id,
                out_port: openflow::consts::OFPP_ANY,
                out_group: openflow::consts::OFPG_ANY,
                cookie: 0,
                cookie_mask: 0,
                match_: Match::any(),
            }),
        })
    };
    let sessions: Vec<Vec<Message>> = vec![
        vec![
            Message::Hello(Hello::ofp13()),
            Message::FeaturesRequest,
            Message::EchoRequest(b"ping".to_vec()),
            Message::GetConfigRequest,
            Message::SetConfig(SwitchConfig {
                flags: openflow::consts::ConfigFlags(0),
                miss_send_len: 128,
            }),
            Message::BarrierRequest,
        ],
        vec![
            Message::Hello(Hello::ofp13()),
            Message::FlowMod(flow_mod(5)),
            dump(50),
            dump(255),
            Message::PacketOut(PacketOut {
                buffer_id: openflow::consts::OFP_NO_BUFFER,
                in_port: openflow::consts::OFPP_CONTROLLER,
                actions: vec![Action::output(1)],
                data: vec![0xff; 60],
            }),
        ],
        vec![
            Message::Hello(Hello::ofp13()),
            ctrl(T::OpenRequest, 1),
            add(1, 5),
            add(1, 13),
            ctrl(T::CommitRequest, 1),
            add(2, 14),
            ctrl(T::CloseRequest, 2),
            ctrl(T::CommitRequest, 2),
            add(3, 5),
            ctrl(T::DiscardRequest, 3),
            ctrl(T::OpenRequest, 4),
        ],
        vec![
            Message::Hello(Hello::ofp13()),
            Message::RoleRequest(RoleMsg {
                role: ControllerRole::Master,
                generation_id: 3,
            }),
            Message::RoleRequest(RoleMsg {
                role: ControllerRole::Slave,
                generation_id: 4,
            }),
            Message::FlowMod(flow_mod(5)),
            add(1, 5),
            Message::GetAsyncRequest,
        ],
    ];
    sessions
        .into_iter()
        .map(|msgs| {
            let mut out = Vec::new();
            for m in msgs {
                push(&mut out, m);
            }
            out
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fuzz target's property over the seeds, each of their truncations at a segment
    /// boundary and a byte-level corruption of each.
    #[test]
    fn sessions_hold_the_property_on_the_seeds() {
        let seeds = seed_sessions();
        // Where the fuzz target keeps its seeds: refresh them with FUZZ_WRITE_SEEDS=1.
        if std::env::var_os("FUZZ_WRITE_SEEDS").is_some() {
            let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fuzz/seeds/of_session");
            std::fs::create_dir_all(dir).unwrap();
            for (i, s) in seeds.iter().enumerate() {
                std::fs::write(format!("{dir}/seed{i}"), s).unwrap();
            }
        }
        let replies: Vec<Vec<Message>> = seeds.iter().map(|s| check_session(s)).collect();
        // HELLO, then the features, echo and barrier replies (GET_CONFIG is the switch's,
        // and this one answers nothing).
        assert_eq!(replies[0].len(), 4, "{:?}", replies[0]);
        // Two parts of the split dump, then the error for the one that cannot be sent.
        assert!(
            matches!(
                replies[1][..],
                [
                    Message::Hello(_),
                    Message::MultipartReply(_),
                    Message::MultipartReply(_),
                    Message::Error(_)
                ]
            ),
            "{:?}",
            replies[1].iter().map(Message::msg_type).collect::<Vec<_>>()
        );
        for s in &seeds {
            for cut in (0..s.len()).step_by(7) {
                check_session(&s[..cut]);
            }
            for i in (0..s.len()).step_by(5) {
                let mut m = s.clone();
                m[i] ^= 0x5a;
                check_session(&m);
            }
        }
    }
}
