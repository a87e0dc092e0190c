//! One fault scenario between network namespaces, end to end, with the
//! pieces `scripts/faults.sh` uses (scripts/netns.sh, loadgen --ledger,
//! echo-provider --handler-ledger, scripts/faults_report.py): a provider cut
//! off from ZooKeeper past its session timeout while the consumer calls at a
//! steady rate, healed, then the other provider restarted gracefully. The
//! script's checks are the assertions: every call has exactly one outcome,
//! none late, none run twice, no call failed, the provider dropped from the
//! registry and registered again within their bounds, the registry right at
//! the end. About 25 s.
//!
//! Needs root, `ip netns` and nftables: otherwise the script says why and
//! the test passes after printing it (skipped). The binaries are this
//! workspace's debug builds, which `cargo test --workspace` builds first.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Where cargo put this test's loadgen: the other binaries are beside it.
fn bin_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_loadgen"))
        .parent()
        .expect("loadgen has a folder")
        .to_path_buf()
}

#[test]
fn provider_cut_from_zookeeper_loses_no_call() {
    let bins = bin_dir();
    let missing: Vec<&str> = ["echo-provider", "mprpc", "delay-relay"]
        .into_iter()
        .filter(|b| !bins.join(b).exists())
        .collect();
    if !missing.is_empty() {
        eprintln!(
            "skipped: {missing:?} not built in {} (cargo test --workspace builds them; or \
             cargo build -p mprpc-examples -p mprpc-cli)",
            bins.display()
        );
        return;
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = std::env::temp_dir().join(format!("mprpc-faults-test-{}", std::process::id()));
    let run = Command::new("bash")
        .arg(repo.join("scripts/faults.sh"))
        .args(["--short", "provider-zk-partition"])
        .env("BIN_DIR", &bins)
        .env("FAULTS_OUT", &out)
        .output()
        .expect("bash runs scripts/faults.sh");
    let stderr = String::from_utf8_lossy(&run.stderr);
    let stdout = String::from_utf8_lossy(&run.stdout);
    if let Some(why) = stderr.lines().find(|l| l.contains("skipped:")) {
        eprintln!("{why}");
        return;
    }
    let report = std::fs::read_to_string(out.join("FAULTS.md")).unwrap_or_default();
    let _ = std::fs::remove_dir_all(&out);
    assert!(
        run.status.success() && report.contains("all checks passed: **yes**"),
        "faults.sh failed ({}):\n{stdout}\n{stderr}\n{report}",
        run.status
    );
    assert!(
        report.contains("| [provider-zk-partition]"),
        "the scenario is in the report:\n{report}"
    );
}
