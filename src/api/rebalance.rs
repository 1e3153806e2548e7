//! RebalanceService: rx queue placement by command (`ferroflowctl datapath rebalance`).

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::{pb, Api, ApiError};
use crate::switch::RebalanceError;

pub struct Rebalance(pub Arc<Api>);

impl From<RebalanceError> for ApiError {
    fn from(e: RebalanceError) -> Self {
        let msg = e.to_string();
        match e {
            RebalanceError::Busy(_) => ApiError::Unavailable(msg),
            RebalanceError::NoDatapath => ApiError::FailedPrecondition(msg),
            RebalanceError::NoSuchLcore(_)
            | RebalanceError::Datapath(
                datapath::DatapathError::NoSuchPort(_)
                | datapath::DatapathError::NoSuchQueue { .. }
                | datapath::DatapathError::NoSuchWorker(_),
            ) => ApiError::NotFound(msg),
            // A stalled worker or a move still in flight: the client may retry.
            RebalanceError::Datapath(
                datapath::DatapathError::MoveTimeout { .. }
                | datapath::DatapathError::MoveInProgress
                | datapath::DatapathError::WorkerBusy { .. }
                | datapath::DatapathError::Stopped,
            ) => ApiError::Unavailable(msg),
            RebalanceError::Datapath(_) => ApiError::Internal(msg),
        }
    }
}

#[tonic::async_trait]
impl pb::rebalance_service_server::RebalanceService for Rebalance {
    async fn rebalance(
        &self,
        req: Request<pb::RebalanceRequest>,
    ) -> Result<Response<pb::RebalanceReply>, Status> {
        let dry_run = req.into_inner().dry_run;
        let api = Arc::clone(&self.0);
        let reply = tokio::task::spawn_blocking(move || -> Result<_, ApiError> {
            let (plan, moved) = api.sw.rebalance(dry_run)?;
            let health = api.sw.health();
            let lcore = |w: usize| health.lcore(w);
            Ok(pb::RebalanceReply {
                moves: plan
                    .moves
                    .iter()
                    .map(|m| pb::QueueMove {
                        port: m.port.clone(),
                        queue: m.queue.into(),
                        from_lcore: lcore(m.from_worker),
                        to_lcore: lcore(m.to_worker),
                    })
                    .collect(),
                loads: plan
                    .load_before
                    .iter()
                    .zip(&plan.load_after)
                    .enumerate()
                    .map(|(w, (before, after))| pb::WorkerLoad {
                        lcore: lcore(w),
                        before: *before,
                        after: *after,
                    })
                    .collect(),
                variance_before: plan.variance_before,
                variance_after: plan.variance_after,
                improvement_percent: plan.improvement_percent(),
                moved: moved as u32,
                interval_s: plan.interval_cycles as f64 / dpdk::tsc_hz().max(1) as f64,
            })
        })
        .await
        .map_err(|e| Status::internal(e.to_string()))?
        .map_err(Status::from)?;
        Ok(Response::new(reply))
    }

    async fn move_rx_queue(
        &self,
        req: Request<pb::MoveRxQueueRequest>,
    ) -> Result<Response<pb::QueueMove>, Status> {
        let r = req.into_inner();
        let queue = u16::try_from(r.queue).map_err(|_| {
            Status::from(ApiError::InvalidArgument {
                field: "queue".into(),
                message: format!("{} is not a queue number", r.queue),
            })
        })?;
        let api = Arc::clone(&self.0);
        let port = r.port.clone();
        let from = tokio::task::spawn_blocking(move || -> Result<_, ApiError> {
            Ok(api.sw.move_rx_queue(&port, queue, r.to_lcore)?)
        })
        .await
        .map_err(|e| Status::internal(e.to_string()))?
        .map_err(Status::from)?;
        Ok(Response::new(pb::QueueMove {
            port: r.port,
            queue: r.queue,
            from_lcore: from,
            to_lcore: r.to_lcore,
        }))
    }
}
