//! Meters: `meter=1,kbps,burst,band=type=drop,rate=1000,burst_size=100`.

use openflow::consts::{MeterFlags, OFPM_ALL};
use openflow::messages::{MeterBand, MeterMod, MeterModCommand};

use crate::{bad, key_value, parse_uint, split_top, SyntaxError};

fn parse_band(text: &str) -> Result<MeterBand, SyntaxError> {
    let mut ty = None;
    let mut rate = None;
    let mut burst_size = 0;
    let mut prec_level = 0;
    for tok in split_top(text)? {
        let (key, val) = key_value(tok);
        let v = val.ok_or_else(|| SyntaxError::MissingValue(key.to_owned()))?;
        match key {
            "type" => ty = Some(v),
            "rate" => rate = Some(parse_uint(key, v, u128::from(u32::MAX))? as u32),
            "burst_size" => burst_size = parse_uint(key, v, u128::from(u32::MAX))? as u32,
            "prec_level" => prec_level = parse_uint(key, v, 255)? as u8,
            _ => return Err(SyntaxError::UnknownKey(key.to_owned())),
        }
    }
    let rate = rate.ok_or_else(|| SyntaxError::Required("rate".into()))?;
    match ty {
        Some("drop") => Ok(MeterBand::Drop { rate, burst_size }),
        Some("dscp_remark") => Ok(MeterBand::DscpRemark {
            rate,
            burst_size,
            prec_level,
        }),
        Some(t) => Err(bad("type", t, "expected drop or dscp_remark")),
        None => Err(SyntaxError::Required("type".into())),
    }
}

/// Parses a meter for `command`; deletes need only `meter` (absent or `all`:
/// every meter).
pub fn parse_meter_mod(text: &str, command: MeterModCommand) -> Result<MeterMod, SyntaxError> {
    let text = text.trim();
    // Bands start at `band=` (or `bands=`) and each runs to the next.
    let mut cuts = Vec::new();
    let mut search = 0;
    while let Some(i) = text[search..].find("band") {
        let at = search + i;
        let rest = &text[at..];
        let boundary = at == 0 || matches!(text.as_bytes()[at - 1], b',' | b' ');
        if boundary && (rest.starts_with("band=") || rest.starts_with("bands=")) {
            cuts.push(at);
        }
        search = at + 1;
    }
    let head = &text[..cuts.first().copied().unwrap_or(text.len())];
    let mut id = None;
    let mut flags = MeterFlags::empty();
    for tok in split_top(head)? {
        let (key, val) = key_value(tok);
        match key {
            "meter" => {
                let v = val.ok_or_else(|| SyntaxError::MissingValue(key.to_owned()))?;
                id = Some(if v == "all" {
                    OFPM_ALL
                } else {
                    parse_uint(key, v, u128::from(u32::MAX))? as u32
                });
            }
            "kbps" => flags |= MeterFlags::KBPS,
            "pktps" => flags |= MeterFlags::PKTPS,
            "burst" => flags |= MeterFlags::BURST,
            "stats" => flags |= MeterFlags::STATS,
            _ => return Err(SyntaxError::UnknownKey(key.to_owned())),
        }
    }
    let mut bands = Vec::new();
    for (n, &c) in cuts.iter().enumerate() {
        let end = cuts.get(n + 1).copied().unwrap_or(text.len());
        let body = &text[c..end];
        let body = body
            .strip_prefix("bands=")
            .or_else(|| body.strip_prefix("band="))
            .unwrap_or(body)
            .trim_end_matches([',', ' ']);
        bands.push(parse_band(body)?);
    }
    if command == MeterModCommand::Delete {
        return Ok(MeterMod {
            command,
            flags,
            meter_id: id.unwrap_or(OFPM_ALL),
            bands: Vec::new(),
        });
    }
    let meter_id = id.ok_or_else(|| SyntaxError::Required("meter".into()))?;
    if !flags.intersects(MeterFlags::KBPS | MeterFlags::PKTPS) {
        flags |= MeterFlags::KBPS;
    }
    if bands.is_empty() {
        return Err(SyntaxError::Required("band".into()));
    }
    Ok(MeterMod {
        command,
        flags,
        meter_id,
        bands,
    })
}

/// A meter in the syntax add-meter takes.
pub fn format_meter(meter_id: u32, flags: MeterFlags, bands: &[MeterBand]) -> String {
    let mut out = format!("meter={meter_id}");
    for (f, name) in [
        (MeterFlags::KBPS, "kbps"),
        (MeterFlags::PKTPS, "pktps"),
        (MeterFlags::BURST, "burst"),
        (MeterFlags::STATS, "stats"),
    ] {
        if flags.contains(f) {
            out.push(',');
            out.push_str(name);
        }
    }
    for b in bands {
        match b {
            MeterBand::Drop { rate, burst_size } => {
                out.push_str(&format!(",band=type=drop,rate={rate}"));
                if *burst_size != 0 {
                    out.push_str(&format!(",burst_size={burst_size}"));
                }
            }
            MeterBand::DscpRemark {
                rate,
                burst_size,
                prec_level,
            } => {
                out.push_str(&format!(
                    ",band=type=dscp_remark,rate={rate},prec_level={prec_level}"
                ));
                if *burst_size != 0 {
                    out.push_str(&format!(",burst_size={burst_size}"));
                }
            }
            MeterBand::Experimenter { rate, .. } => {
                out.push_str(&format!(",band=type=experimenter,rate={rate}"))
            }
        }
    }
    out
}
