use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Where to connect or listen, in Open vSwitch's syntax.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Tcp(SocketAddr),
    Ssl(SocketAddr),
    Unix(PathBuf),
    PassiveTcp(SocketAddr),
    PassiveSsl(SocketAddr),
    PassiveUnix(PathBuf),
}

#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error(
        "{0:?}: expected tcp:IP[:PORT], ssl:IP[:PORT], unix:PATH, ptcp:[PORT][:IP], ptcp:IP:PORT, pssl:... or punix:PATH"
    )]
    Syntax(String),
    #[error("{target}: ssl:/pssl: need [openflow] tls_certificate, tls_private_key and tls_ca_certificate")]
    TlsNotConfigured { target: String },
    #[error("cannot listen on {target}: {source}")]
    Bind {
        target: String,
        source: std::io::Error,
    },
}

/// The IANA OpenFlow port.
pub const DEFAULT_PORT: u16 = 6653;

fn parse_addr(s: &str, default_port: u16) -> Option<SocketAddr> {
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Some(a);
    }
    let ip: std::net::IpAddr = s.trim_matches(|c| c == '[' || c == ']').parse().ok()?;
    Some(SocketAddr::new(ip, default_port))
}

/// OVS writes ptcp:PORT[:IP]; the config examples write ptcp:IP:PORT. Takes both.
fn passive_addr(rest: &str) -> Option<SocketAddr> {
    if rest.is_empty() {
        return Some(SocketAddr::from(([0, 0, 0, 0], DEFAULT_PORT)));
    }
    if let Some((port, ip)) = rest.split_once(':') {
        if let (Ok(port), Ok(ip)) = (
            port.parse::<u16>(),
            ip.trim_matches(|c| c == '[' || c == ']').parse(),
        ) {
            return Some(SocketAddr::new(ip, port));
        }
    } else if let Ok(port) = rest.parse::<u16>() {
        return Some(SocketAddr::from(([0, 0, 0, 0], port)));
    }
    parse_addr(rest, DEFAULT_PORT)
}

impl Target {
    pub fn parse(s: &str) -> Result<Target, TargetError> {
        let err = || TargetError::Syntax(s.to_owned());
        let (scheme, rest) = s.split_once(':').ok_or_else(err)?;
        match scheme {
            "tcp" => parse_addr(rest, DEFAULT_PORT)
                .map(Target::Tcp)
                .ok_or_else(err),
            "ssl" => parse_addr(rest, DEFAULT_PORT)
                .map(Target::Ssl)
                .ok_or_else(err),
            "unix" if !rest.is_empty() => Ok(Target::Unix(rest.into())),
            "punix" if !rest.is_empty() => Ok(Target::PassiveUnix(rest.into())),
            "ptcp" => passive_addr(rest).map(Target::PassiveTcp).ok_or_else(err),
            "pssl" => passive_addr(rest).map(Target::PassiveSsl).ok_or_else(err),
            _ => Err(err()),
        }
    }

    pub fn is_passive(&self) -> bool {
        matches!(
            self,
            Target::PassiveTcp(_) | Target::PassiveSsl(_) | Target::PassiveUnix(_)
        )
    }

    pub fn is_tls(&self) -> bool {
        matches!(self, Target::Ssl(_) | Target::PassiveSsl(_))
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Tcp(a) => write!(f, "tcp:{a}"),
            Target::Ssl(a) => write!(f, "ssl:{a}"),
            Target::Unix(p) => write!(f, "unix:{}", p.display()),
            Target::PassiveTcp(a) => write!(f, "ptcp:{}:{}", a.port(), a.ip()),
            Target::PassiveSsl(a) => write!(f, "pssl:{}:{}", a.port(), a.ip()),
            Target::PassiveUnix(p) => write!(f, "punix:{}", p.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ovs_and_config_syntax() {
        let addr = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert_eq!(
            Target::parse("tcp:127.0.0.1:6633").unwrap(),
            Target::Tcp(addr("127.0.0.1:6633"))
        );
        assert_eq!(
            Target::parse("tcp:127.0.0.1").unwrap(),
            Target::Tcp(addr("127.0.0.1:6653"))
        );
        assert_eq!(
            Target::parse("ptcp:6634:127.0.0.1").unwrap(),
            Target::PassiveTcp(addr("127.0.0.1:6634"))
        );
        assert_eq!(
            Target::parse("ptcp:127.0.0.1:6634").unwrap(),
            Target::PassiveTcp(addr("127.0.0.1:6634"))
        );
        assert_eq!(
            Target::parse("ptcp:6634").unwrap(),
            Target::PassiveTcp(addr("0.0.0.0:6634"))
        );
        assert_eq!(
            Target::parse("punix:/run/x.sock").unwrap(),
            Target::PassiveUnix("/run/x.sock".into())
        );
        assert_eq!(
            Target::parse("ssl:1.2.3.4:6653").unwrap(),
            Target::Ssl(addr("1.2.3.4:6653"))
        );
        assert_eq!(
            Target::parse("pssl:6653:127.0.0.1").unwrap(),
            Target::PassiveSsl(addr("127.0.0.1:6653"))
        );
        assert!(Target::parse("http://x").is_err());
        assert!(Target::parse("tcp:nohost").is_err());
        // Display gives back what parse reads.
        for t in ["tcp:127.0.0.1:6633", "pssl:6653:127.0.0.1", "punix:/x"] {
            assert_eq!(
                Target::parse(&Target::parse(t).unwrap().to_string()).unwrap(),
                Target::parse(t).unwrap()
            );
        }
    }
}
