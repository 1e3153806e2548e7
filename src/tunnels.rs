//! Tunnel ports on the control plane: handing the configured ones to the datapath, and
//! their counters and neighbours for the stats file, `/metrics` and the API.

use datapath::Datapath;
use ferroflow_config::Config;

use crate::datapath_conv::{tunnel_specs, underlay_settings};

/// Gives the datapath the configured tunnel ports (none: nothing to do).
pub fn start(dp: &mut Datapath, config: &Config) -> anyhow::Result<()> {
    let specs = tunnel_specs(config).map_err(anyhow::Error::msg)?;
    if specs.is_empty() {
        return Ok(());
    }
    let settings = underlay_settings(&config.tunnels).map_err(anyhow::Error::msg)?;
    dp.set_tunnels(&specs, settings)?;
    Ok(())
}
