//! `TraceService.Capture`: live capture on one port ([`datapath::capture`]). The workers
//! copy frames into a bounded queue; a task here drains it, filters (a flow-syntax match
//! on the frame's extracted key, off the workers' path) and streams the frames to the
//! client. The session ends, and the port's flag is cleared, when the count is reached
//! or the client goes away (its stream dropped: checked at every drain tick).

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use datapath::capture::{CaptureSession, CAPTURE_RX, CAPTURE_TX};
use tokio_stream::Stream;
use tonic::{Response, Status};

use super::{pb, Api, ApiError};

/// How often the drain task looks at the queue (and at whether the client is gone).
const DRAIN_TICK: Duration = Duration::from_millis(5);
/// Frames waiting for the client in the gRPC stream; past that the drain task waits and
/// the workers' queue fills (then drops, counted).
const STREAM_BACKLOG: usize = 256;

pub(crate) type CaptureStream =
    Pin<Box<dyn Stream<Item = Result<pb::CapturedFrame, Status>> + Send>>;

/// Starts a capture session and the task that streams it.
pub(crate) fn start(
    api: &Arc<Api>,
    r: &pb::CaptureRequest,
) -> Result<Response<CaptureStream>, ApiError> {
    let st = api.sw.lock().map_err(super::busy)?;
    let port = st
        .ports
        .iter()
        .find(|p| p.name == r.port || r.port.parse::<u32>().ok() == Some(p.ofport))
        .ok_or_else(|| ApiError::NotFound(format!("no port {:?}", r.port)))?;
    let ofport = port.ofport;
    let dp = st
        .datapath
        .as_ref()
        .ok_or_else(|| ApiError::Unavailable("the datapath is not running".into()))?;
    let slot = dp
        .slot_of(ofport)
        .ok_or_else(|| ApiError::Unavailable(format!("port {:?} is not open", r.port)))?;
    let filter = if r.filter.trim().is_empty() {
        None
    } else {
        let m = flow_syntax::parse_match(&r.filter)
            .map_err(|e| ApiError::invalid("filter", e.to_string()))?;
        Some(ofproto::convert_match(&m).map_err(|e| ApiError::invalid("filter", e.to_string()))?)
    };
    let directions = match (r.rx, r.tx) {
        (_, false) => CAPTURE_RX,
        (false, true) => CAPTURE_TX,
        (true, true) => CAPTURE_RX | CAPTURE_TX,
    };
    let tap = dp.capture_tap();
    drop(st);
    let session = tap.start(slot, directions).ok_or_else(|| {
        ApiError::FailedPrecondition("another capture is running (one at a time)".into())
    })?;
    let (tx, rx) = tokio::sync::mpsc::channel(STREAM_BACKLOG);
    let count = r.count;
    tokio::spawn(async move {
        drain(session, tap, tx, ofport, filter, count).await;
    });
    Ok(Response::new(Box::pin(
        tokio_stream::wrappers::ReceiverStream::new(rx),
    )))
}

async fn drain(
    session: CaptureSession,
    tap: Arc<datapath::capture::CaptureTap>,
    tx: tokio::sync::mpsc::Sender<Result<pb::CapturedFrame, Status>>,
    ofport: u32,
    filter: Option<pipeline::Match>,
    count: u64,
) {
    let mut sent = 0u64;
    let dropped_at_start = tap.dropped();
    loop {
        if tx.is_closed() {
            break;
        }
        let mut any = false;
        while let Some(f) = session.next() {
            any = true;
            let keep = filter.as_ref().is_none_or(|m| {
                let key = packet::extract(f.bytes(), ofport);
                m.matches(&key.words)
            });
            let item = keep.then(|| pb::CapturedFrame {
                timestamp_ns: std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos() as u64),
                direction: if f.direction == CAPTURE_TX {
                    "tx"
                } else {
                    "rx"
                }
                .into(),
                orig_len: f.orig_len,
                data: f.bytes().to_vec(),
                dropped: tap.dropped() - dropped_at_start,
            });
            session.recycle(f);
            let Some(item) = item else { continue };
            if tx.send(Ok(item)).await.is_err() {
                return;
            }
            sent += 1;
            if count > 0 && sent >= count {
                return;
            }
        }
        if !any {
            tokio::time::sleep(DRAIN_TICK).await;
        }
    }
    // `session` drops here (and on every return above): the port's flag is cleared.
}

/// The port captured now, if any, and the tap's totals.
pub(crate) fn status(api: &Api) -> Result<pb::CaptureStatusResponse, ApiError> {
    let st = api.sw.lock().map_err(super::busy)?;
    let Some(dp) = st.datapath.as_ref() else {
        return Ok(pb::CaptureStatusResponse::default());
    };
    let tap = dp.capture_tap();
    let ports = tap
        .active()
        .into_iter()
        .filter_map(|(slot, _)| {
            st.ports
                .iter()
                .find(|p| dp.slot_of(p.ofport) == Some(slot))
                .map(|p| p.name.clone())
        })
        .collect();
    Ok(pb::CaptureStatusResponse {
        ports,
        captured: tap.captured(),
        dropped: tap.dropped(),
    })
}
