//! Connections to a Redis server or cluster: the URL forms, the private CA, blocking
//! connects with timeouts, one-round-trip pipelines, and which errors are worth a
//! retry. Knows nothing of records, blobs or leases.

use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use redis::cluster::{ClusterClient, ClusterConnection};
use redis::{ConnectionLike, FromRedisValue, RedisError, RedisResult};

use crate::store::remote::RemoteError;

#[derive(Clone)]
pub(super) enum Target {
    Single(redis::Client),
    Cluster(ClusterClient),
}

pub(super) enum Conn {
    Single(redis::Connection),
    Cluster(Box<ClusterConnection>),
}

impl Conn {
    pub(super) fn as_dyn(&mut self) -> &mut dyn ConnectionLike {
        match self {
            Conn::Single(c) => c,
            Conn::Cluster(c) => c.as_mut(),
        }
    }

    /// Sends `cmds` in one round trip and returns their replies in order. A cluster
    /// splits the pipeline by node; each node gets its share in order, so the chunks of
    /// one blob (one hash tag, one node) keep their order.
    pub(super) fn pipeline<T: FromRedisValue>(
        &mut self,
        cmds: Vec<redis::Cmd>,
    ) -> RedisResult<Vec<T>> {
        match self {
            Conn::Single(c) => {
                let mut p = redis::pipe();
                for cmd in cmds {
                    p.add_command(cmd);
                }
                p.query(c)
            }
            Conn::Cluster(c) => {
                let mut p = redis::cluster::cluster_pipe();
                for cmd in cmds {
                    p.add_command(cmd);
                }
                p.query(c.as_mut())
            }
        }
    }
}

/// `redis+cluster://[user:pass@]h1:p1,h2:p2` → one `redis://` URL per node.
pub(super) fn cluster_nodes(url: &str) -> Result<Vec<String>> {
    let (scheme, rest) = url.split_once("://").context("missing ://")?;
    let node_scheme = if scheme.eq_ignore_ascii_case("rediss+cluster") {
        "rediss"
    } else {
        "redis"
    };
    let rest = rest.split(['/', '?', '#']).next().unwrap_or("");
    let (userinfo, hosts) = match rest.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, rest),
    };
    let mut nodes = Vec::new();
    for hp in hosts.split(',').filter(|s| !s.is_empty()) {
        let (host, port) = hp
            .rsplit_once(':')
            .with_context(|| format!("node '{hp}' needs host:port"))?;
        if host.is_empty() || port.parse::<u16>().is_err() {
            bail!("node '{hp}' needs host:port");
        }
        nodes.push(match userinfo {
            Some(u) => format!("{node_scheme}://{u}@{hp}"),
            None => format!("{node_scheme}://{hp}"),
        });
    }
    if nodes.is_empty() {
        bail!("no cluster nodes: list them as redis+cluster://host1:port,host2:port");
    }
    Ok(nodes)
}

/// Whether retrying might help: network trouble and cluster reconfiguration do, a
/// refused password or a wrong type does not.
pub(super) fn classify(what: &str, e: RedisError) -> RemoteError {
    let transient = e.is_io_error()
        || e.is_timeout()
        || e.is_connection_refusal()
        || e.is_connection_dropped()
        || e.is_cluster_error()
        || matches!(
            e.kind(),
            redis::ErrorKind::BusyLoadingError
                | redis::ErrorKind::TryAgain
                | redis::ErrorKind::ClusterDown
                | redis::ErrorKind::MasterDown
        );
    let err = anyhow!("{what}: {e}");
    if transient {
        RemoteError::transient(err)
    } else {
        RemoteError::fatal(err)
    }
}

/// `IDEM_REMOTE_CA`: a PEM file of the CA that signed a `rediss://` server's certificate,
/// for servers with a private CA (public CAs are trusted without it).
pub(super) fn private_ca() -> Result<Option<redis::TlsCertificates>> {
    let Some(path) = std::env::var_os("IDEM_REMOTE_CA").filter(|p| !p.is_empty()) else {
        return Ok(None);
    };
    let pem = std::fs::read(&path).with_context(|| {
        format!(
            "cannot read IDEM_REMOTE_CA {}",
            std::path::Path::new(&path).display()
        )
    })?;
    Ok(Some(redis::TlsCertificates {
        client_tls: None,
        root_cert: Some(pem),
    }))
}

pub(super) fn connect_blocking(target: &Target, timeout: Duration) -> RedisResult<Conn> {
    match target {
        Target::Single(c) => {
            let conn = c.get_connection_with_timeout(timeout)?;
            conn.set_read_timeout(Some(timeout))?;
            conn.set_write_timeout(Some(timeout))?;
            Ok(Conn::Single(conn))
        }
        Target::Cluster(c) => {
            let conn = c.get_connection()?;
            conn.set_read_timeout(Some(timeout))?;
            conn.set_write_timeout(Some(timeout))?;
            Ok(Conn::Cluster(Box::new(conn)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_urls() {
        assert_eq!(
            cluster_nodes("redis+cluster://:pw@a:1,b:2/").unwrap(),
            vec!["redis://:pw@a:1", "redis://:pw@b:2"]
        );
        assert_eq!(
            cluster_nodes("rediss+cluster://a:1").unwrap(),
            vec!["rediss://a:1"]
        );
        assert!(cluster_nodes("redis+cluster://a").is_err());
        assert!(cluster_nodes("redis+cluster://").is_err());
    }
}
