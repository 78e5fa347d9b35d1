//! The deployment templates (deploy/) name real things: every unit runs a real subcommand, every
//! environment file it reads exists, every variable in those files is one the subcommand reads
//! (its `--help` lists it) or one read below it (librdkafka's KAFKA_*, the AWS SDK's AWS_*,
//! RUST_LOG), and the connector properties are valid for `atenex landing`.

mod common;
use common::*;
use std::collections::BTreeSet;
use std::path::Path;

fn deploy() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy")
}

/// The variables `atenex <command> --help` documents.
fn documented(command: &str) -> BTreeSet<String> {
    let out = atenex().args([command, "--help"]).output().unwrap();
    let help = String::from_utf8(ok(&out).stdout.clone()).unwrap();
    help.split("[env: ")
        .skip(1)
        .map(|s| s.split(['=', ']']).next().unwrap().to_owned())
        .collect()
}

fn read_below(key: &str) -> bool {
    key == "RUST_LOG" || key.starts_with("KAFKA_") || key.starts_with("AWS_")
}

#[test]
fn units_run_real_commands_with_real_variables() {
    let mut units = 0;
    for host in ["ec2", "emr"] {
        for entry in std::fs::read_dir(deploy().join(host)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "service") {
                continue;
            }
            units += 1;
            let text = std::fs::read_to_string(&path).unwrap();
            let exec = text
                .lines()
                .find_map(|l| l.strip_prefix("ExecStart=/usr/local/bin/atenex "))
                .unwrap_or_else(|| panic!("{}: no ExecStart of atenex", path.display()));
            let command = exec.split_whitespace().next().unwrap();
            let known = documented(command);
            for file in text
                .lines()
                .filter_map(|l| l.strip_prefix("EnvironmentFile=/etc/atenex/"))
            {
                let env = std::fs::read_to_string(deploy().join("env").join(file))
                    .unwrap_or_else(|e| panic!("{}: {file}: {e}", path.display()));
                for line in env.lines().map(str::trim) {
                    if line.is_empty() || line.starts_with('#') {
                        continue;
                    }
                    let key = line.split('=').next().unwrap();
                    // The shared file serves every unit: only its KAFKA_ and logging keys.
                    assert!(
                        known.contains(key) || read_below(key),
                        "{}: {file} sets {key}, which `atenex {command}` does not read",
                        path.display()
                    );
                }
            }
        }
    }
    assert_eq!(units, 7, "4 services on EC2, 3 jobs on EMR");
}

#[test]
fn the_connector_properties_are_valid() {
    let text =
        std::fs::read_to_string(deploy().join("env/hdfs-sink-connector.properties")).unwrap();
    let config = atenex_landing::config::LandingConfig::from_properties(&text, Vec::new())
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(config.unknown_keys.is_empty(), "{:?}", config.unknown_keys);
}
