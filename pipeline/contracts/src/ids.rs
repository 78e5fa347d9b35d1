//! Identifiers: `document_id` is a UUID in its hyphenated text form; `chunk_id` is
//! `"{document_id}_{chunk_index}"`, deterministic so that a re-processed document yields the same
//! ids and duplicates can be recognised downstream.
//!
//! Both keep the exact text they were given (no re-formatting), since they are also Kafka keys
//! and file contents that must round-trip byte for byte.

use serde::{Deserialize, Serialize};
use std::fmt;
use uuid::Uuid;

/// A document's id: a UUID written as 36 characters with hyphens (`8-4-4-4-12`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DocumentId(String);

impl DocumentId {
    /// A fresh random (v4) id.
    pub fn new_v4() -> Self {
        Self(Uuid::new_v4().hyphenated().to_string())
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        Self::check(text)?;
        Ok(Self(text.to_owned()))
    }

    /// Checks `text` without keeping it (no allocation on success).
    pub fn check(text: &str) -> Result<(), String> {
        if text.len() != 36 {
            return Err(format!(
                "must be a UUID in hyphenated form (36 characters), got {} characters",
                text.len()
            ));
        }
        Uuid::try_parse(text).map_err(|e| format!("must be a UUID: {e}"))?;
        Ok(())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<Uuid> for DocumentId {
    fn from(u: Uuid) -> Self {
        Self(u.hyphenated().to_string())
    }
}

impl TryFrom<String> for DocumentId {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Self::check(&s)?;
        Ok(Self(s))
    }
}

impl From<DocumentId> for String {
    fn from(d: DocumentId) -> String {
        d.0
    }
}

impl fmt::Display for DocumentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A chunk's id: `"{document_id}_{chunk_index}"`, index 0-based, decimal, no leading zeros.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ChunkId(String);

impl ChunkId {
    pub fn new(document_id: &DocumentId, index: u32) -> Self {
        Self(format!("{document_id}_{index}"))
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        Self::check(text)?;
        Ok(Self(text.to_owned()))
    }

    /// Checks a chunk index (the part after the last `_`).
    pub fn check_index(index: &str) -> Result<u32, String> {
        parse_index(index)
    }

    /// Checks `text` without keeping it; returns its document part (no allocation on success).
    pub fn check(text: &str) -> Result<&str, String> {
        let Some((doc, index)) = text.rsplit_once('_') else {
            return Err("must be \"{document_id}_{chunk_index}\": no `_` found".to_owned());
        };
        DocumentId::check(doc).map_err(|e| format!("document part: {e}"))?;
        parse_index(index)?;
        Ok(doc)
    }

    /// The document part (everything before the last `_`).
    pub fn document_part(&self) -> &str {
        self.0.rsplit_once('_').map_or("", |(d, _)| d)
    }

    pub fn index(&self) -> u32 {
        self.0
            .rsplit_once('_')
            .and_then(|(_, i)| i.parse().ok())
            .expect("validated at construction")
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn parse_index(index: &str) -> Result<u32, String> {
    let ok = !index.is_empty()
        && index.bytes().all(|b| b.is_ascii_digit())
        && (index == "0" || !index.starts_with('0'));
    if !ok {
        return Err(format!(
            "chunk index must be a decimal number without leading zeros, got {index:?}"
        ));
    }
    index
        .parse()
        .map_err(|_| format!("chunk index {index} is out of range"))
}

impl TryFrom<String> for ChunkId {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Self::check(&s)?;
        Ok(Self(s))
    }
}

impl From<ChunkId> for String {
    fn from(c: ChunkId) -> String {
        c.0
    }
}

impl fmt::Display for ChunkId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const DOC: &str = "0b8f3a2e-6a8e-4c1e-9d2f-1f2e3d4c5b6a";

    #[test]
    fn document_id_accepts_hyphenated_uuid_only() {
        assert_eq!(DocumentId::parse(DOC).unwrap().as_str(), DOC);
        let upper = DOC.to_uppercase();
        assert_eq!(DocumentId::parse(&upper).unwrap().as_str(), upper);
        assert!(DocumentId::parse(&DOC.replace('-', "")).is_err());
        assert!(DocumentId::parse("not-a-uuid").is_err());
        assert!(
            DocumentId::parse("zb8f3a2e-6a8e-4c1e-9d2f-1f2e3d4c5b6a")
                .unwrap_err()
                .contains("UUID")
        );
    }

    #[test]
    fn chunk_id_format_and_errors() {
        let d = DocumentId::parse(DOC).unwrap();
        let c = ChunkId::new(&d, 12);
        assert_eq!(c.as_str(), format!("{DOC}_12"));
        assert_eq!(c.document_part(), DOC);
        assert_eq!(c.index(), 12);
        assert!(ChunkId::parse(DOC).is_err());
        assert!(ChunkId::parse(&format!("{DOC}_")).is_err());
        assert!(ChunkId::parse(&format!("{DOC}_01")).is_err());
        assert!(ChunkId::parse(&format!("{DOC}_-1")).is_err());
        assert!(ChunkId::parse(&format!("{DOC}_99999999999")).is_err());
        assert!(ChunkId::parse(&format!("x_{DOC}_1")).is_err());
        assert!(ChunkId::parse(&format!("{DOC}_0")).is_ok());
    }

    proptest! {
        #[test]
        fn chunk_id_round_trips(bytes in any::<[u8; 16]>(), index in any::<u32>()) {
            let d = DocumentId::from(Uuid::from_bytes(bytes));
            let c = ChunkId::new(&d, index);
            let parsed = ChunkId::parse(c.as_str()).unwrap();
            prop_assert_eq!(parsed.index(), index);
            prop_assert_eq!(parsed.document_part(), d.as_str());
            let json = serde_json::to_string(&c).unwrap();
            let back: ChunkId = serde_json::from_str(&json).unwrap();
            prop_assert_eq!(back, c);
        }
    }
}
