//! Kafka client configuration from the environment (and `.env`, loaded by the CLI).
//!
//! - `KAFKA_BOOTSTRAP_SERVERS` (default `localhost:9092`, as in the seed deployment);
//! - any librdkafka property as `KAFKA_<NAME_WITH_UNDERSCORES>`: `KAFKA_SECURITY_PROTOCOL=SASL_SSL`
//!   sets `security.protocol`, `KAFKA_SASL_MECHANISMS=SCRAM-SHA-512` sets `sasl.mechanisms`, and so on
//!   (lower-cased, `_` → `.`);
//! - the variables of Kafka's own shell scripts (`KAFKA_HEAP_OPTS`, `KAFKA_OPTS`, `KAFKA_HOME`, ...,
//!   anything ending in `_OPTS`) are not client properties and are ignored, so that the same
//!   environment works on an EMR node that also runs a broker.
//!
//! A property librdkafka does not know fails at client creation; [`KafkaConfig::explain`] names the
//! environment variable it came from.

use rdkafka::ClientConfig;
use std::collections::BTreeMap;

pub const BOOTSTRAP_ENV: &str = "KAFKA_BOOTSTRAP_SERVERS";
pub const DEFAULT_BOOTSTRAP: &str = "localhost:9092";
const PREFIX: &str = "KAFKA_";

/// Variables of Kafka's scripts (`bin/kafka-run-class.sh` and friends) that share our prefix.
const KAFKA_SCRIPT_VARS: &[&str] = &[
    "KAFKA_HOME",
    "KAFKA_DEBUG",
    "KAFKA_LOG_DIR",
    "KAFKA_CLUSTER_ID",
    "KAFKA_MODE",
    "KAFKA_VERSION",
];

/// librdkafka properties, each with where it came from (for error messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaConfig {
    props: BTreeMap<String, (String, Source)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Source {
    Env(String),
    Default,
    Code,
}

impl KafkaConfig {
    /// From the process environment.
    pub fn from_env() -> Self {
        Self::from_vars(std::env::vars())
    }

    /// From `(name, value)` pairs, as if they were the environment.
    pub fn from_vars(vars: impl IntoIterator<Item = (String, String)>) -> Self {
        let mut props = BTreeMap::new();
        props.insert(
            "bootstrap.servers".to_owned(),
            (DEFAULT_BOOTSTRAP.to_owned(), Source::Default),
        );
        for (name, value) in vars {
            if let Some(prop) = property_name(&name) {
                props.insert(prop, (value, Source::Env(name)));
            }
        }
        Self { props }
    }

    /// Overrides `bootstrap.servers` (a `--bootstrap-servers` flag).
    pub fn with_bootstrap(mut self, servers: Option<&str>) -> Self {
        if let Some(s) = servers {
            self.props
                .insert("bootstrap.servers".to_owned(), (s.to_owned(), Source::Code));
        }
        self
    }

    pub fn bootstrap_servers(&self) -> &str {
        &self.props["bootstrap.servers"].0
    }

    pub fn get(&self, prop: &str) -> Option<&str> {
        self.props.get(prop).map(|(v, _)| v.as_str())
    }

    /// A copy with `prop` set unless the environment set it (code defaults yield to the user).
    pub fn with_default(mut self, prop: &str, value: &str) -> Self {
        self.props
            .entry(prop.to_owned())
            .or_insert_with(|| (value.to_owned(), Source::Code));
        self
    }

    /// A copy with `prop` set whatever the environment said (for settings our guarantees need,
    /// such as `enable.auto.commit=false`).
    pub fn with(mut self, prop: &str, value: &str) -> Self {
        self.props
            .insert(prop.to_owned(), (value.to_owned(), Source::Code));
        self
    }

    /// A copy without `prop` (a consumer-only setting, such as `group.instance.id`, that a
    /// producer built from the same environment must not be given: librdkafka warns about it).
    pub fn without(mut self, prop: &str) -> Self {
        self.props.remove(prop);
        self
    }

    /// The rdkafka configuration.
    pub fn client_config(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        for (k, (v, _)) in &self.props {
            c.set(k, v);
        }
        c
    }

    /// Turns a client-creation error into one that names the environment variable responsible,
    /// when it is about a property that came from the environment.
    pub fn explain(&self, err: rdkafka::error::KafkaError) -> anyhow::Error {
        let text = err.to_string();
        for (prop, (value, source)) in &self.props {
            if let Source::Env(var) = source
                && (text.contains(&format!("\"{prop}\"")) || text.contains(&format!(" {prop}")))
            {
                return anyhow::anyhow!(
                    "Kafka client configuration rejected: {text}. It comes from the environment \
                     variable {var}={value:?} (KAFKA_<NAME> sets librdkafka property <name>, `_` → `.`); \
                     fix or unset {var}"
                );
            }
        }
        anyhow::anyhow!("Kafka client configuration rejected: {text}")
    }

    /// Properties and where they came from, secrets masked, for logs and `--help`-style dumps.
    pub fn describe(&self) -> Vec<(String, String, String)> {
        self.props
            .iter()
            .map(|(k, (v, s))| {
                let shown = if is_secret(k) {
                    "*****".to_owned()
                } else {
                    v.clone()
                };
                let from = match s {
                    Source::Env(var) => var.clone(),
                    Source::Default => "default".to_owned(),
                    Source::Code => "atenex".to_owned(),
                };
                (k.clone(), shown, from)
            })
            .collect()
    }
}

fn is_secret(prop: &str) -> bool {
    prop.contains("password") || prop.contains("secret") || prop.ends_with(".key.pem")
}

/// `KAFKA_SASL_MECHANISMS` → `sasl.mechanisms`; `None` for variables that are not client
/// properties.
pub fn property_name(var: &str) -> Option<String> {
    let rest = var.strip_prefix(PREFIX)?;
    if rest.is_empty()
        || var.ends_with("_OPTS")
        || KAFKA_SCRIPT_VARS.contains(&var)
        || !rest
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
    {
        return None;
    }
    Some(rest.to_ascii_lowercase().replace('_', "."))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn maps_prefixed_variables_to_properties() {
        let c = KafkaConfig::from_vars(vars(&[
            ("KAFKA_BOOTSTRAP_SERVERS", "10.0.0.5:9092"),
            ("KAFKA_SECURITY_PROTOCOL", "SASL_SSL"),
            ("KAFKA_SASL_MECHANISMS", "SCRAM-SHA-512"),
            ("KAFKA_SASL_PASSWORD", "hunter2"),
            ("KAFKA_HEAP_OPTS", "-Xmx1G"),
            ("KAFKA_OPTS", "-Dx=y"),
            ("KAFKA_HOME", "/opt/kafka"),
            ("KAFKA_lower", "x"),
            ("PATH", "/bin"),
        ]));
        assert_eq!(c.bootstrap_servers(), "10.0.0.5:9092");
        assert_eq!(c.get("security.protocol"), Some("SASL_SSL"));
        assert_eq!(c.get("sasl.mechanisms"), Some("SCRAM-SHA-512"));
        assert_eq!(c.get("heap.opts"), None);
        assert_eq!(c.get("opts"), None);
        assert_eq!(c.get("home"), None);
        assert_eq!(c.get("lower"), None);
        let described = c.describe();
        let pw = described.iter().find(|d| d.0 == "sasl.password").unwrap();
        assert_eq!(
            (pw.1.as_str(), pw.2.as_str()),
            ("*****", "KAFKA_SASL_PASSWORD")
        );
    }

    #[test]
    fn defaults_and_overrides() {
        let c = KafkaConfig::from_vars(vars(&[("KAFKA_ACKS", "1")]));
        assert_eq!(c.bootstrap_servers(), DEFAULT_BOOTSTRAP);
        let c = c
            .with_bootstrap(Some("127.0.0.1:1"))
            .with_default("acks", "all")
            .with_default("linger.ms", "5")
            .with("enable.auto.commit", "false");
        assert_eq!(c.bootstrap_servers(), "127.0.0.1:1");
        assert_eq!(
            c.get("acks"),
            Some("1"),
            "the environment wins over code defaults"
        );
        assert_eq!(c.get("linger.ms"), Some("5"));
        assert_eq!(c.get("enable.auto.commit"), Some("false"));
        let c = KafkaConfig::from_vars(vars(&[("KAFKA_GROUP_INSTANCE_ID", "node-1")]));
        assert_eq!(c.get("group.instance.id"), Some("node-1"));
        assert_eq!(
            c.without("group.instance.id").get("group.instance.id"),
            None
        );
    }

    #[test]
    fn unknown_property_error_names_the_variable() {
        let c = KafkaConfig::from_vars(vars(&[("KAFKA_NO_SUCH_THING", "1")]));
        let err = c
            .client_config()
            .create::<rdkafka::producer::BaseProducer>()
            .err()
            .expect("librdkafka rejects unknown properties");
        let msg = c.explain(err).to_string();
        assert!(msg.contains("KAFKA_NO_SUCH_THING"), "{msg}");
        assert!(msg.contains("no.such.thing"), "{msg}");
    }
}
