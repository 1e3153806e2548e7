//! `ferroflowctl trace`: one packet through the live flow tables, printed the way
//! `ovs-appctl ofproto/trace` prints it.

use std::path::Path;

use clap::Args;
use ferroflow_api::pb;
use tonic::transport::Channel;

use super::{fail, print_json, Result};

#[derive(Args, Debug)]
#[command(after_help = "EXAMPLES:
  ferroflowctl trace in_port=1,icmp,dl_src=02:00:00:00:00:01,dl_dst=02:00:00:00:00:02,nw_src=10.0.0.1,nw_dst=10.0.0.2
  ferroflowctl trace in_port=vm1,tcp,nw_dst=10.0.0.2,tp_dst=80 --send
  ferroflowctl trace --in-port 1 --hex 0200000000020200000000010800...
  ferroflowctl trace --in-port 1 --pcap ping.pcap:3")]
pub struct TraceArgs {
    /// The packet in flow syntax (fields left out are zero; in_port may be a port name).
    #[arg(conflicts_with_all = ["hex", "pcap"], required_unless_present_any = ["hex", "pcap"])]
    flow: Option<String>,
    /// The packet as hex bytes (a whole Ethernet frame; spaces and colons ignored).
    #[arg(long, conflicts_with = "pcap")]
    hex: Option<String>,
    /// The packet from a pcap file: FILE or FILE:N for the N-th packet (from 1).
    #[arg(long, value_name = "FILE[:N]")]
    pcap: Option<String>,
    /// The ingress port for --hex and --pcap.
    #[arg(long)]
    in_port: Option<u32>,
    /// After tracing, inject the packet for real on its in_port (through the
    /// packet-out path: counters move, outputs are sent).
    #[arg(long)]
    send: bool,
}

pub async fn run(ch: &Channel, a: &TraceArgs, json: bool) -> Result<()> {
    use pb::trace_request::Packet;
    let packet = match (&a.flow, &a.hex, &a.pcap) {
        (Some(f), _, _) => Packet::Flow(f.clone()),
        (_, Some(h), _) => Packet::Frame(parse_hex(h)?),
        (_, _, Some(p)) => Packet::Frame(read_pcap(p)?),
        _ => return Err(fail(2, "give a flow, --hex or --pcap")),
    };
    if matches!(packet, Packet::Frame(_)) && a.in_port.is_none() {
        return Err(fail(2, "--hex and --pcap need --in-port"));
    }
    let mut client = pb::trace_service_client::TraceServiceClient::new(ch.clone());
    let r = client
        .trace(pb::TraceRequest {
            packet: Some(packet),
            in_port: a.in_port.unwrap_or(0),
            send: a.send,
        })
        .await?
        .into_inner();
    if json {
        let mut v = serde_json::to_value(&r).unwrap_or_default();
        // Bytes as hex, not an array of numbers.
        v["frame"] = serde_json::Value::String(hex(&r.frame));
        print_json(&v);
    } else {
        print!("{}", render(&r));
    }
    Ok(())
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn parse_hex(s: &str) -> Result<Vec<u8>> {
    let digits: String = s
        .chars()
        .filter(|c| !c.is_whitespace() && *c != ':')
        .collect();
    let digits = digits.strip_prefix("0x").unwrap_or(&digits);
    if digits.len() & 1 == 1 {
        return Err(fail(2, "--hex: an odd number of hex digits"));
    }
    (0..digits.len())
        .step_by(2)
        .map(|i| {
            u8::from_str_radix(&digits[i..i + 2], 16)
                .map_err(|_| fail(2, format!("--hex: {:?} is not hex", &digits[i..i + 2])))
        })
        .collect()
}

/// The N-th (from 1) packet of a pcap file (microsecond or nanosecond, either byte
/// order); pcapng is refused with a hint.
fn read_pcap(arg: &str) -> Result<Vec<u8>> {
    let (path, n) = match arg.rsplit_once(':') {
        Some((p, n)) if n.parse::<usize>().is_ok() => (p, n.parse::<usize>().unwrap_or(1)),
        _ => (arg, 1),
    };
    let data =
        std::fs::read(Path::new(path)).map_err(|e| fail(2, format!("--pcap {path}: {e}")))?;
    frame_in_pcap(&data, n).map_err(|why| fail(2, format!("--pcap {path}: {why}")))
}

pub(crate) fn frame_in_pcap(data: &[u8], n: usize) -> std::result::Result<Vec<u8>, String> {
    if n == 0 {
        return Err("packets are numbered from 1".into());
    }
    if data.len() < 24 {
        return Err("shorter than a pcap header".into());
    }
    let magic = u32::from_le_bytes([data[0], data[1], data[2], data[3]]);
    let le = match magic {
        0xa1b2_c3d4 | 0xa1b2_3c4d => true,
        0xd4c3_b2a1 | 0x4d3c_b2a1 => false,
        0x0a0d_0d0a => return Err("pcapng: convert with `editcap -F pcap IN OUT`".into()),
        _ => return Err("not a pcap file".into()),
    };
    let u32_at = |o: usize| {
        let b = [data[o], data[o + 1], data[o + 2], data[o + 3]];
        if le {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        }
    };
    let mut off = 24;
    let mut i = 0;
    while off + 16 <= data.len() {
        i += 1;
        let caplen = u32_at(off + 8) as usize;
        let start = off + 16;
        if start + caplen > data.len() {
            return Err(format!("packet {i} is cut short"));
        }
        if i == n {
            return Ok(data[start..start + caplen].to_vec());
        }
        off = start + caplen;
    }
    Err(format!("has {i} packets, not {n}"))
}

/// ofproto/trace's layout: the flow, each table with the entry that matched and what
/// its actions did, the final flow and the outputs.
pub(crate) fn render(r: &pb::TraceResponse) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(s, "Flow: {}", r.packet);
    let _ = writeln!(s);
    let head = format!("bridge(\"ferroflow\") table version {}", r.version);
    let _ = writeln!(s, "{head}");
    let _ = writeln!(s, "{}", "-".repeat(head.len()));
    let mut indent = "    ";
    // The packet's fields are printed after an action only when it changed them.
    let mut fields = r.packet.clone();
    for st in &r.steps {
        match st.kind.as_str() {
            "table" => {
                if st.matched {
                    let _ = writeln!(
                        s,
                        "{:2}. {}, cookie {:#x}",
                        st.table_id,
                        if st.r#match.is_empty() {
                            format!("priority={}", st.priority)
                        } else {
                            st.r#match.clone()
                        },
                        st.cookie
                    );
                    let _ = writeln!(s, "    {}", st.text);
                } else {
                    let _ = writeln!(s, "{:2}. {}", st.table_id, st.text);
                }
                indent = "    ";
            }
            "conjunction" => {
                let _ = writeln!(
                    s,
                    "{:2}. {}, cookie {:#x} (conjunction clause)",
                    st.table_id, st.r#match, st.cookie
                );
                let _ = writeln!(s, "    {}", st.text);
            }
            "action" => {
                // Outputs, groups and NORMAL show as their own steps.
                let own_step = ["output:", "group:", "NORMAL", "CONTROLLER"]
                    .iter()
                    .any(|p| st.text.starts_with(p));
                if st.error {
                    let _ = writeln!(s, "{indent}{} (could not apply: skipped)", st.text);
                } else if !own_step {
                    let _ = writeln!(s, "{indent}{}", st.text);
                }
                if !st.fields.is_empty() && st.fields != fields {
                    let _ = writeln!(s, "{indent}  -> {}", st.fields);
                    fields = st.fields.clone();
                }
            }
            "action_set" => {
                let _ = writeln!(s, "    action set:");
                indent = "      ";
            }
            "bucket" => {
                let _ = writeln!(s, "    {}", st.text);
                indent = "      ";
            }
            "goto" if st.error => {
                let _ = writeln!(s, "    {} refused: the walk ends", st.text);
            }
            "goto" => {}
            "output" => {
                let _ = writeln!(s, "{indent}-> {}", st.text);
            }
            _ => {
                let _ = writeln!(s, "{indent}{}", st.text);
            }
        }
    }
    let _ = writeln!(s);
    let final_flow = if r.final_packet == r.packet {
        "unchanged".to_owned()
    } else {
        r.final_packet.clone()
    };
    let _ = writeln!(s, "Final flow: {final_flow}");
    let mut actions: Vec<String> = r
        .outputs
        .iter()
        .map(|o| match o.queue {
            Some(q) => format!("output:{}({}) queue {q}", o.port_name, o.port),
            None => format!("output:{}({})", o.port_name, o.port),
        })
        .collect();
    if r.packet_ins > 0 {
        actions.push(format!("controller x{}", r.packet_ins));
    }
    if actions.is_empty() {
        let _ = writeln!(s, "Datapath actions: drop: {}", r.drop_reason);
    } else {
        let _ = writeln!(s, "Datapath actions: {}", actions.join(", "));
    }
    if r.steps_dropped > 0 {
        let _ = writeln!(s, "({} more steps not shown)", r.steps_dropped);
    }
    if r.sent {
        let _ = writeln!(s, "Sent: the packet was injected on {}.", r.in_port_name);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nth_frame_of_a_pcap_in_either_byte_order() {
        let mut le = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0];
        le.extend_from_slice(&[0; 8]);
        le.extend_from_slice(&[0xff, 0xff, 0, 0, 1, 0, 0, 0]);
        for (i, len) in [(1u8, 14u32), (2, 20)] {
            le.extend_from_slice(&[0; 8]);
            le.extend_from_slice(&len.to_le_bytes());
            le.extend_from_slice(&len.to_le_bytes());
            le.resize(le.len() + len as usize, i);
        }
        assert_eq!(frame_in_pcap(&le, 2).unwrap(), vec![2; 20]);
        assert_eq!(frame_in_pcap(&le, 1).unwrap(), vec![1; 14]);
        assert_eq!(frame_in_pcap(&le, 3).unwrap_err(), "has 2 packets, not 3");
        assert!(frame_in_pcap(&[0x0a, 0x0d, 0x0d, 0x0a], 1).is_err());
    }

    #[test]
    fn hex_with_separators() {
        assert_eq!(parse_hex("0x01:02 0a").ok(), Some(vec![1, 2, 10]));
        assert!(parse_hex("abc").is_err());
    }
}
