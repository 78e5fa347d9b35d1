//! The deployment templates (deploy/) name real things: every unit runs a real subcommand, every
//! environment file it reads exists, every variable in those files is one the subcommand reads
//! (its `--help` lists it) or one read below it (librdkafka's KAFKA_*, the AWS SDK's AWS_*,
//! RUST_LOG), only the gateway's public port listens beyond loopback, and the connector
//! properties are valid for `atenex landing`. The report unit's exit codes are the code's. The
//! EMR step's command runs here, on the templates, as the step would (a quiet day: exit 3, or an
//! empty report with `ATENEX_REPORT_ALLOW_EMPTY=true`). The Kafka install script's configuration
//! starts a real Kafka (the tests' jars, not the release tarball, which cannot be fetched here)
//! on which its `atenex topics create` creates every topic. Every `atenex` command line in
//! deploy/ names a real subcommand.

mod common;
use common::*;
use std::collections::BTreeSet;
use std::path::Path;

fn deploy() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy")
}

/// The variables `atenex <command> --help` documents.
fn documented(command: &[&str]) -> BTreeSet<String> {
    let out = atenex().args(command).arg("--help").output().unwrap();
    let help = String::from_utf8(ok(&out).stdout.clone()).unwrap();
    help.split("[env: ")
        .skip(1)
        .map(|s| s.split(['=', ']']).next().unwrap().to_owned())
        .collect()
}

/// The settings a deployment may open beyond loopback (the gateway's public port).
const PUBLIC: &[&str] = &["ATENEX_GATEWAY_LISTEN"];

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
            let known = documented(&[command]);
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
                    let (key, value) = line.split_once('=').unwrap();
                    if key.ends_with("_LISTEN") && !PUBLIC.contains(&key) {
                        assert!(
                            value.starts_with("127.0.0.1:"),
                            "{file}: {key}={value}: admin, health and metrics listen on loopback \
                             by default (an operator opens them on purpose)"
                        );
                    }
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

/// The report unit's comment lists exactly the exit codes `atenex report` has.
#[test]
fn the_report_units_exit_codes_are_the_codes() {
    let unit = std::fs::read_to_string(deploy().join("emr/atenex-report.service")).unwrap();
    let listed: Vec<(u8, String)> = unit
        .lines()
        .skip_while(|l| !l.contains("Exit codes"))
        .skip(1)
        .map_while(|l| l.strip_prefix("#   "))
        .map(|l| {
            let (code, when) = l.split_once("  ").unwrap();
            (code.parse().unwrap(), when.to_owned())
        })
        .collect();
    let codes: Vec<(u8, String)> = atenex_report::EXIT_CODES
        .iter()
        .map(|(c, w)| (*c, (*w).to_owned()))
        .collect();
    assert_eq!(listed, codes);
    // And `--help` prints them.
    let out = atenex().args(["report", "--help"]).output().unwrap();
    let help = String::from_utf8(ok(&out).stdout.clone()).unwrap();
    for (code, when) in atenex_report::EXIT_CODES {
        assert!(help.contains(&format!("  {code}  {when}")), "{help}");
    }
}

/// The command line of an EMR step (`deploy/emr/<file>`), from `bash -c` on.
fn step_command(file: &str) -> Vec<String> {
    let text = std::fs::read_to_string(deploy().join("emr").join(file)).unwrap();
    let steps: serde_json::Value = serde_json::from_str(&text).unwrap();
    let step = &steps[0];
    assert_eq!(step["Jar"], "command-runner.jar");
    assert_eq!(step["ActionOnFailure"], "CONTINUE");
    let args: Vec<String> = step["Args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_owned())
        .collect();
    // As the unit: user atenex.
    assert_eq!(&args[..3], ["sudo", "-u", "atenex"]);
    let command = args[3..].to_vec();
    assert_eq!(&command[..2], ["bash", "-c"]);
    let unit = std::fs::read_to_string(deploy().join("emr/atenex-report.service")).unwrap();
    let unit_files: Vec<&str> = unit
        .lines()
        .filter_map(|l| l.strip_prefix("EnvironmentFile="))
        .collect();
    let sourced: Vec<&str> = command[2]
        .split("&& . ")
        .skip(1)
        .map(|s| s.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(sourced, unit_files, "{file} reads the unit's files");
    command
}

/// Runs an EMR step's command here, for 2026-12-01, on copies of the templates in `dir/etc`
/// (the name node replaced by the local directory `dir/hdfs`; `replace` rewrites the command,
/// e.g. YARN's submit command by this machine's).
fn run_step(
    file: &str,
    dir: &Path,
    allow_empty: &str,
    replace: Option<(&str, &str)>,
) -> std::process::Output {
    let command = step_command(file);
    let etc = dir.join("etc");
    std::fs::create_dir_all(&etc).unwrap();
    let root = dir.join("hdfs");
    for file in ["atenex.env", "report.env"] {
        let text = std::fs::read_to_string(deploy().join("env").join(file)).unwrap();
        let text: String = text
            .lines()
            .map(|l| match l.split_once('=') {
                // Loopback only: no name node, no broker of the template's addresses.
                Some(("ATENEX_HDFS_ROOT", _)) => format!("ATENEX_HDFS_ROOT={}", root.display()),
                Some(("KAFKA_BOOTSTRAP_SERVERS", _)) => {
                    "KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:9".into()
                }
                Some(("ATENEX_REPORT_ALLOW_EMPTY", _)) => {
                    format!("ATENEX_REPORT_ALLOW_EMPTY={allow_empty}")
                }
                _ => l.to_owned(),
            })
            .map(|l| l + "\n")
            .collect();
        std::fs::write(etc.join(file), text).unwrap();
    }
    let mut local = command[2]
        .replace("/etc/atenex/", &format!("{}/", etc.display()))
        .replace("cd /var/lib/atenex", &format!("cd {}", dir.display()))
        .replace("/usr/local/bin/atenex", env!("CARGO_BIN_EXE_atenex"));
    if let Some((from, to)) = replace {
        assert!(local.contains(from), "{file}: no {from} in {local}");
        local = local.replace(from, to);
    }
    std::process::Command::new("bash")
        .args(["-c", &local, &command[3], "--date", "2026-12-01"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap())
        .output()
        .unwrap()
}

/// The step's command, run here on copies of the templates: it reads the same files as the
/// report unit, and a quiet day is what report.env decides.
#[test]
fn the_emr_step_runs_the_report_on_the_units_files() {
    let dir = tempfile::tempdir().unwrap();
    // The template's decision: a quiet day fails, visibly.
    let out = run_step("report-step.json", dir.path(), "false", None);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("no landing data for 2026-12-01"));
    // The other decision: an empty report, and success.
    let out = run_step("report-step.json", dir.path(), "true", None);
    ok(&out);
    let day = dir
        .path()
        .join("hdfs/atenex/reports/daily_chunk_count/date=2026-12-01");
    assert!(day.join("_SUCCESS").exists(), "{out:?}");
}

/// The Spark step's command, with YARN's submit command replaced by this machine's Spark
/// (local[2]): the report on Spark, with the rows the default engine gives.
#[test]
fn the_spark_emr_step_runs_the_report_on_spark() {
    let dir = tempfile::tempdir().unwrap();
    let hour = dir
        .path()
        .join("hdfs/atenex/kafka-landing/embeddings.ready/year=2026/month=12/day=01/hour=05");
    std::fs::create_dir_all(&hour).unwrap();
    std::fs::write(
        hour.join("embeddings.ready+0+0+2.json"),
        "{\"company_id\":\"c\",\"document_id\":\"d\",\"chunk_id\":\"k1\"}\n\
         {\"company_id\":\"c\",\"document_id\":\"d\",\"chunk_id\":\"k1\"}\n\
         {\"company_id\":\"c\",\"document_id\":\"e\",\"chunk_id\":\"k2\"}\n",
    )
    .unwrap();
    let local = shell_words::join(atenex_report::spark::testing::local_submit());
    let out = run_step(
        "report-spark-step.json",
        dir.path(),
        "false",
        Some((
            "'spark-submit --master yarn --deploy-mode cluster'",
            &shell_words::quote(&local),
        )),
    );
    ok(&out);
    let day = dir
        .path()
        .join("hdfs/atenex/reports/daily_chunk_count/date=2026-12-01");
    let rows: Vec<(String, String, i64, i64)> = atenex_report::read::read_rows(&day)
        .unwrap()
        .into_iter()
        .map(|r| (r.company_id, r.document_id, r.total_chunks, r.unique_chunks))
        .collect();
    assert_eq!(
        rows,
        [
            ("c".to_owned(), "d".to_owned(), 2, 1),
            ("c".to_owned(), "e".to_owned(), 1, 1)
        ]
    );
}

/// Every `atenex ...` command line in deploy/ (units, step, scripts) names a real subcommand,
/// and every ATENEX_ variable the install script reads is its own (documented at its top) or
/// one `atenex` reads.
#[test]
fn every_command_line_in_deploy_names_a_real_subcommand() {
    let top =
        String::from_utf8(ok(&atenex().arg("--help").output().unwrap()).stdout.clone()).unwrap();
    let commands = subcommands(&top);
    let mut seen = 0;
    for file in [
        "ec2/atenex-gateway.service",
        "ec2/atenex-ingest.service",
        "ec2/atenex-docproc.service",
        "ec2/atenex-embedding.service",
        "emr/atenex-analytics.service",
        "emr/atenex-landing.service",
        "emr/atenex-report.service",
        "emr/report-step.json",
        "emr/report-spark-step.json",
        "emr/install-kafka.sh",
    ] {
        let text = std::fs::read_to_string(deploy().join(file)).unwrap();
        // Where a command line runs it: at the start of a line, after `=` or after `exec`.
        let runs = text.lines().flat_map(|l| {
            l.match_indices("/usr/local/bin/atenex ")
                .filter_map(move |(at, m)| {
                    let before = l[..at].trim_end();
                    (before.is_empty() || before.ends_with('=') || before.ends_with("exec"))
                        .then(|| &l[at + m.len()..])
                })
        });
        for line in runs {
            let mut words = line.split_whitespace();
            let command = words.next().unwrap().trim_matches('"');
            assert!(
                commands.contains(&command.to_owned()),
                "{file}: atenex {command}"
            );
            // A nested command (topics create) must exist too.
            let help = String::from_utf8(
                ok(&atenex().args([command, "--help"]).output().unwrap())
                    .stdout
                    .clone(),
            )
            .unwrap();
            let nested = subcommands(&help);
            if !nested.is_empty() {
                let sub = words.next().unwrap();
                assert!(
                    nested.contains(&sub.to_owned()),
                    "{file}: atenex {command} {sub}"
                );
            }
            seen += 1;
        }
    }
    assert!(seen >= 10, "{seen} command lines");
    let script = std::fs::read_to_string(deploy().join("emr/install-kafka.sh")).unwrap();
    let header: String = script.lines().take_while(|l| l.starts_with('#')).collect();
    let read_by_atenex = documented(&["topics", "create"]);
    for var in script
        .split("${")
        .skip(1)
        .filter_map(|s| s.split([':', '}']).next())
        .filter(|v| v.starts_with("ATENEX_"))
    {
        assert!(
            header.contains(var) || read_by_atenex.contains(var),
            "install-kafka.sh reads {var}, documented nowhere"
        );
    }
    for var in header
        .split_whitespace()
        .filter(|w| w.starts_with("ATENEX_"))
    {
        assert!(
            script.contains(&format!("${{{var}")) || read_by_atenex.contains(var),
            "install-kafka.sh documents {var}, which nothing reads"
        );
    }
}

/// The configuration the Kafka install script writes starts a real Kafka in KRaft mode (one
/// node, no ZooKeeper), and the script's `atenex topics create` creates every topic on it.
#[test]
fn the_kafka_install_scripts_configuration_starts_kafka() {
    let script = deploy().join("emr/install-kafka.sh");
    let syntax = std::process::Command::new("bash")
        .arg("-n")
        .arg(&script)
        .output()
        .unwrap();
    ok(&syntax);
    let dir = tempfile::tempdir().unwrap();
    let [port, controller] = atenex_kafka::broker::free_ports::<2>().unwrap();
    let data = dir.path().join("data");
    let out = std::process::Command::new("bash")
        .arg(&script)
        .args(["--config-only"])
        .arg(dir.path())
        .env("ATENEX_KAFKA_DATA", &data)
        .env("ATENEX_KAFKA_LISTEN_HOST", "127.0.0.1")
        .env("ATENEX_KAFKA_ADVERTISED_HOST", "127.0.0.1")
        .env("ATENEX_KAFKA_PORT", port.to_string())
        .env("ATENEX_KAFKA_CONTROLLER_PORT", controller.to_string())
        .output()
        .unwrap();
    ok(&out);
    let props = dir.path().join("server.properties");
    let text = std::fs::read_to_string(&props).unwrap();
    assert!(text.contains("process.roles=broker,controller"), "{text}");
    assert!(!text.contains("zookeeper"), "{text}");

    let jars =
        atenex_kafka::broker::ensure_jars(&atenex_kafka::broker::default_cache_dir()).unwrap();
    let classpath = format!("{}/*", jars.display());
    let format = std::process::Command::new("java")
        .args(atenex_jvm::process::jvm_args("256m"))
        .args(["-cp", &classpath, "kafka.tools.StorageTool", "format"])
        .args(["--cluster-id=ZGVwbG95LXRlc3QtY2x1c3Rl", "-c"])
        .arg(&props)
        .output()
        .unwrap();
    ok(&format);
    let log = std::fs::File::create(dir.path().join("kafka.log")).unwrap();
    let mut kafka = std::process::Command::new("java");
    kafka
        .args(atenex_jvm::process::jvm_args("512m"))
        .args(["-cp", &classpath, "kafka.Kafka"])
        .arg(&props)
        .stdout(log.try_clone().unwrap())
        .stderr(log);
    atenex_jvm::process::die_with_parent(&mut kafka);
    let kafka = Killed(kafka.spawn().unwrap());

    let bootstrap = format!("127.0.0.1:{port}");
    let create = || {
        atenex()
            .args(["topics", "create", "--bootstrap-servers", &bootstrap])
            .output()
            .unwrap()
    };
    // The script waits for the port, then creates the topics; the broker may still be starting.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let mut out = create();
    while !out.status.success() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_secs(1));
        out = create();
    }
    let created = String::from_utf8(ok(&out).stdout.clone()).unwrap();
    // Again: every topic is on the broker, with its partitions.
    let again = String::from_utf8(ok(&create()).stdout.clone()).unwrap();
    for topic in atenex_contracts::topics::all_pipeline_topics() {
        assert!(
            again.contains(&format!("exists   {topic} (3 partitions, unchanged)")),
            "{topic}: {created}\n{again}"
        );
    }
    assert!(
        again.contains("exists   analytics.lease (1 partitions, unchanged)"),
        "{again}"
    );
    drop(kafka);
}

/// A child killed when the test ends, passed or not.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
