use openflow::error::RoleRequestFailedCode;
use openflow::messages::ControllerRole;
use openflow::ErrorCode;

/// The switch-wide part of OpenFlow roles: the generation id that orders
/// MASTER/SLAVE requests from controllers that may be out of date.
#[derive(Debug, Default)]
pub(crate) struct Generation {
    current: Option<u64>,
}

impl Generation {
    /// Checks a MASTER/SLAVE request's generation id as OpenFlow 1.3 section
    /// 6.3.5 says: stale ids (older in wrap-around order) are refused.
    pub fn check(&mut self, role: ControllerRole, id: u64) -> Result<(), ErrorCode> {
        if !matches!(role, ControllerRole::Master | ControllerRole::Slave) {
            return Ok(());
        }
        if let Some(cur) = self.current {
            if (id.wrapping_sub(cur) as i64) < 0 {
                return Err(ErrorCode::RoleRequestFailed(RoleRequestFailedCode::Stale));
            }
        }
        self.current = Some(id);
        Ok(())
    }

    pub fn current(&self) -> u64 {
        self.current.unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_generation_is_refused_and_equal_ignores_it() {
        let mut g = Generation::default();
        assert!(g.check(ControllerRole::Master, 5).is_ok());
        assert!(g.check(ControllerRole::Slave, 5).is_ok());
        assert!(g.check(ControllerRole::Master, 4).is_err());
        assert!(g.check(ControllerRole::Equal, 1).is_ok());
        assert!(g.check(ControllerRole::Master, 6).is_ok());
        // Wrap-around: u64::MAX is older than 1 once 1 has been seen.
        let mut g = Generation::default();
        g.check(ControllerRole::Master, u64::MAX).unwrap();
        assert!(g.check(ControllerRole::Master, 1).is_ok());
        assert!(g.check(ControllerRole::Master, u64::MAX).is_err());
    }
}
