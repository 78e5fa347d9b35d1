//! `hdfs://host:port[/base]`: the name node to connect to and the directory everything lives under.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HdfsUrl {
    /// `hdfs://host:port` (or `hdfs://nameservice` for HA configurations from the Hadoop config).
    pub namenode: String,
    /// `/base` without a trailing `/`; empty for the root.
    pub base: String,
}

impl HdfsUrl {
    /// Parses `hdfs://authority[/path]`; the error says what is wrong and gives an example.
    pub fn parse(url: &str) -> Result<Self, String> {
        let rest = url.strip_prefix("hdfs://").ok_or_else(|| {
            format!("{url:?} is not an hdfs:// URL (e.g. hdfs://namenode:8020/atenex)")
        })?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if authority.is_empty() {
            return Err(format!(
                "{url:?} names no name node (e.g. hdfs://namenode:8020/atenex)"
            ));
        }
        if path.split('/').any(|p| p == "..") {
            return Err(format!("{url:?}: `..` is not allowed in the path"));
        }
        Ok(Self {
            namenode: format!("hdfs://{authority}"),
            base: path.trim_end_matches('/').to_owned(),
        })
    }

    /// The absolute HDFS path of `rel` (a `/`-separated path relative to the base; a leading `/`
    /// is ignored).
    pub fn path(&self, rel: &str) -> String {
        let rel = rel.trim_start_matches('/');
        if rel.is_empty() {
            if self.base.is_empty() {
                "/".to_owned()
            } else {
                self.base.clone()
            }
        } else {
            format!("{}/{rel}", self.base)
        }
    }
}

impl fmt::Display for HdfsUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.namenode, self.base)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_name_node_and_base() {
        let u = HdfsUrl::parse("hdfs://nn:8020/atenex/").unwrap();
        assert_eq!(u.namenode, "hdfs://nn:8020");
        assert_eq!(u.base, "/atenex");
        assert_eq!(u.path("/topics/a"), "/atenex/topics/a");
        assert_eq!(u.path("topics/a"), "/atenex/topics/a");
        assert_eq!(u.path(""), "/atenex");
        assert_eq!(u.to_string(), "hdfs://nn:8020/atenex");
        let root = HdfsUrl::parse("hdfs://nn:8020").unwrap();
        assert_eq!(root.base, "");
        assert_eq!(root.path("x/y"), "/x/y");
        assert_eq!(root.path("/"), "/");
        assert!(
            HdfsUrl::parse("hdfs:///x")
                .unwrap_err()
                .contains("no name node")
        );
        assert!(
            HdfsUrl::parse("file:///x")
                .unwrap_err()
                .contains("not an hdfs")
        );
        assert!(HdfsUrl::parse("hdfs://nn/a/../b").is_err());
    }
}
