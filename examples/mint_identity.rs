//! Mints the keys of per-node identities, printed as `NAME=value` lines
//! (an environment file: `set -a; . ./node-a.env; set +a`).
//!
//! ```text
//! # once, on a machine kept safe: the cluster's authority
//! cargo run --example mint_identity -- authority > east-authority.env
//! # for each node, with the authority's secret in the environment
//! set -a; . ./east-authority.env; set +a
//! cargo run --example mint_identity -- node node-a east --days 90 > node-a.env
//! ```
//!
//! `authority` prints `MOBILITY_AUTHORITY_SECRET` (keep it off the nodes:
//! whoever holds it can mint identities) and `MOBILITY_CLUSTER_AUTHORITY`
//! (its public key: give it to every node of the cluster, and to the
//! clusters that trust this one, in their `MOBILITY_TRUSTED_CLUSTERS`).
//! `node NODE CLUSTER [--days N]` reads `MOBILITY_AUTHORITY_SECRET` and
//! prints the node's `MOBILITY_NODE_KEY` (secret: only that node needs
//! it), `MOBILITY_NODE_CERT` and `MOBILITY_CLUSTER_AUTHORITY`. Without
//! `--days`, the certificate never expires.

use std::time::Duration;

use mobility::NodeId;
use mobility_net::tcp::{
    mint, ClusterAuthority, ENV_CLUSTER_AUTHORITY, ENV_NODE_CERT, ENV_NODE_KEY,
};

/// Where `node` reads the authority's secret.
const ENV_AUTHORITY_SECRET: &str = "MOBILITY_AUTHORITY_SECRET";

fn usage() -> String {
    "usage: mint_identity authority\n       \
     mint_identity node NODE CLUSTER [--days N]   (reads MOBILITY_AUTHORITY_SECRET)"
        .to_string()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(lines) => println!("{lines}"),
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(2);
        }
    }
}

fn run(args: &[String]) -> Result<String, String> {
    match args.first().map(String::as_str) {
        Some("authority") if args.len() == 1 => {
            let authority = ClusterAuthority::generate().map_err(|e| e.to_string())?;
            Ok(format!(
                "{ENV_AUTHORITY_SECRET}={}\n{ENV_CLUSTER_AUTHORITY}={}",
                authority.to_text(),
                authority.public().to_text()
            ))
        }
        Some("node") => {
            let (node, cluster) = match (args.get(1), args.get(2)) {
                (Some(node), Some(cluster)) => (node, cluster),
                _ => return Err(usage()),
            };
            let node = NodeId::new(node).map_err(|e| e.to_string())?;
            let valid_for = match args.get(3..).unwrap_or_default() {
                [] => None,
                [flag, days] if flag == "--days" => {
                    let days: u64 = days.parse().map_err(|e| format!("--days: {e}"))?;
                    Some(Duration::from_secs(days.max(1) * 86_400))
                }
                _ => return Err(usage()),
            };
            let secret = std::env::var(ENV_AUTHORITY_SECRET)
                .map_err(|_| format!("{ENV_AUTHORITY_SECRET} is not set\n{}", usage()))?;
            let authority = ClusterAuthority::from_text(&secret)
                .map_err(|e| format!("{ENV_AUTHORITY_SECRET}: {e}"))?;
            let minted = mint(&authority, &node, cluster, valid_for).map_err(|e| e.to_string())?;
            Ok(format!(
                "{ENV_NODE_KEY}={}\n{ENV_NODE_CERT}={}\n{ENV_CLUSTER_AUTHORITY}={}",
                minted.key.to_text(),
                minted.certificate.to_text(),
                authority.public().to_text()
            ))
        }
        _ => Err(usage()),
    }
}
