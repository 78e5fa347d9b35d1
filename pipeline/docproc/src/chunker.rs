//! The chunker: a pure function from a document's pages to its chunks.
//!
//! As the original service: windows of `size` words that start every `size - overlap` words, never
//! across a page, chunk text = the window's words joined by single spaces, chunk indexes counted
//! over the whole document (so `chunk_id = "{document_id}_{index}"`). One difference: the
//! original's `range(0, len(words), size - overlap)` also emitted tail windows wholly inside the
//! previous one (a 1,000-word page gave a second chunk of its last 200 words); here a page's last
//! window is the one that reaches its end.
//!
//! With [`Unit::Tokens`], sizes are cl100k_base tokens (the tokenizer of OpenAI's embedding
//! models): a window is the longest run of whole words whose tokens fit in `size`, and the next
//! window starts at the first word from which at most `overlap` tokens remain. A single word longer
//! than `size` tokens is a window of its own. Because chunks join words with one space and cl100k's
//! pre-tokenizer splits before each space-prefixed word, the sum of the words' counts (each
//! counted with its leading space, the first without) is the chunk's exact token count.

use std::fmt;

/// What `size` and `overlap` count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Unit {
    /// Whitespace-separated words (the original's unit).
    #[default]
    Words,
    /// cl100k_base tokens.
    Tokens,
}

impl std::str::FromStr for Unit {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "words" => Ok(Self::Words),
            "tokens" => Ok(Self::Tokens),
            other => Err(format!("unknown chunk unit {other:?}: use words or tokens")),
        }
    }
}

impl fmt::Display for Unit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Words => "words",
            Self::Tokens => "tokens",
        })
    }
}

/// Window size and overlap, in `unit`s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkerConfig {
    pub size: usize,
    pub overlap: usize,
    pub unit: Unit,
}

impl Default for ChunkerConfig {
    /// 1000 words with 200 overlap, as the original service.
    fn default() -> Self {
        Self {
            size: 1000,
            overlap: 200,
            unit: Unit::Words,
        }
    }
}

impl ChunkerConfig {
    /// Checks the settings; the message names the environment variable to fix.
    pub fn validate(&self) -> Result<(), String> {
        if self.size == 0 {
            return Err("ATENEX_CHUNK_SIZE must be at least 1".into());
        }
        if self.overlap >= self.size {
            return Err(format!(
                "ATENEX_CHUNK_OVERLAP ({}) must be smaller than ATENEX_CHUNK_SIZE ({})",
                self.overlap, self.size
            ));
        }
        Ok(())
    }
}

/// One page of extracted text; `number` is 1-based, `None` for formats without pages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub number: Option<u32>,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Chunk {
    /// Position in the document, from 0.
    pub index: usize,
    pub page: Option<u32>,
    pub text: String,
}

/// Counts a word's tokens (with its leading space when `first` is false).
pub trait TokenCounter {
    fn count(&self, word: &str, first: bool) -> usize;
}

/// cl100k_base, as OpenAI's `text-embedding-3-*` models use.
pub struct Cl100k(tiktoken_rs::CoreBPE);

impl Cl100k {
    pub fn new() -> anyhow::Result<Self> {
        Ok(Self(tiktoken_rs::cl100k_base()?))
    }
}

impl TokenCounter for Cl100k {
    fn count(&self, word: &str, first: bool) -> usize {
        if first {
            self.0.encode_ordinary(word).len()
        } else {
            let mut s = String::with_capacity(word.len() + 1);
            s.push(' ');
            s.push_str(word);
            self.0.encode_ordinary(&s).len()
        }
    }
}

/// Splits `pages` into chunks. `tokens` is used only with [`Unit::Tokens`] (and must then be given).
pub fn chunk(
    pages: &[Page],
    config: &ChunkerConfig,
    tokens: Option<&dyn TokenCounter>,
) -> Vec<Chunk> {
    assert!(config.validate().is_ok(), "invalid chunker config");
    let mut out = Vec::new();
    let mut weights = Vec::new();
    for page in pages {
        let words: Vec<&str> = page.text.split_whitespace().collect();
        if words.is_empty() {
            continue;
        }
        weights.clear();
        match (config.unit, tokens) {
            (Unit::Words, _) => weights.resize(words.len(), 1),
            (Unit::Tokens, Some(t)) => {
                weights.extend(words.iter().enumerate().map(|(i, w)| t.count(w, i == 0)))
            }
            (Unit::Tokens, None) => panic!("Unit::Tokens needs a token counter"),
        }
        for (start, end) in windows(&weights, config.size, config.overlap) {
            out.push(Chunk {
                index: out.len(),
                page: page.number,
                text: words[start..end].join(" "),
            });
        }
    }
    out
}

/// The `[start, end)` word ranges of one page's windows.
fn windows(weights: &[usize], size: usize, overlap: usize) -> Vec<(usize, usize)> {
    let n = weights.len();
    let mut out = Vec::new();
    let mut start = 0;
    loop {
        // The longest run from `start` that fits (at least one word).
        let mut end = start + 1;
        let mut total = weights[start];
        while end < n && total + weights[end] <= size {
            total += weights[end];
            end += 1;
        }
        out.push((start, end));
        if end == n {
            return out;
        }
        // The next window starts where at most `overlap` remains before `end`, after `start`.
        let mut next = end;
        let mut tail = 0;
        while next - 1 > start && tail + weights[next - 1] <= overlap {
            tail += weights[next - 1];
            next -= 1;
        }
        start = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn words_config(size: usize, overlap: usize) -> ChunkerConfig {
        ChunkerConfig {
            size,
            overlap,
            unit: Unit::Words,
        }
    }

    fn page(number: Option<u32>, words: &[String]) -> Page {
        Page {
            number,
            text: words.join(" \n "),
        }
    }

    #[test]
    fn the_original_defaults_on_2500_words() {
        let words: Vec<String> = (0..2500).map(|i| format!("w{i}")).collect();
        let chunks = chunk(&[page(Some(1), &words)], &ChunkerConfig::default(), None);
        let bounds: Vec<(String, String, usize)> = chunks
            .iter()
            .map(|c| {
                let ws: Vec<&str> = c.text.split(' ').collect();
                (ws[0].to_owned(), ws[ws.len() - 1].to_owned(), ws.len())
            })
            .collect();
        assert_eq!(
            bounds,
            vec![
                ("w0".into(), "w999".into(), 1000),
                ("w800".into(), "w1799".into(), 1000),
                ("w1600".into(), "w2499".into(), 900),
            ]
        );
    }

    #[test]
    fn exactly_one_window_when_the_page_fits() {
        let words: Vec<String> = (0..1000).map(|i| format!("w{i}")).collect();
        assert_eq!(
            chunk(&[page(None, &words)], &ChunkerConfig::default(), None).len(),
            1
        );
    }

    #[test]
    fn token_windows_fit_and_overlap() {
        let counter = Cl100k::new().unwrap();
        let text = "Retrieval augmented generation splits documents into chunks; \
                    antidisestablishmentarianism counts as several tokens. "
            .repeat(30);
        let config = ChunkerConfig {
            size: 50,
            overlap: 10,
            unit: Unit::Tokens,
        };
        let pages = [Page {
            number: Some(1),
            text,
        }];
        let chunks = chunk(&pages, &config, Some(&counter));
        assert!(chunks.len() > 5);
        for c in &chunks {
            let exact = counter.0.encode_ordinary(&c.text).len();
            assert!(exact <= 50, "{exact} tokens in {:?}", c.text);
        }
    }

    #[test]
    fn invalid_configs_name_the_variable() {
        assert!(
            words_config(0, 0)
                .validate()
                .unwrap_err()
                .contains("ATENEX_CHUNK_SIZE")
        );
        assert!(
            words_config(10, 10)
                .validate()
                .unwrap_err()
                .contains("ATENEX_CHUNK_OVERLAP")
        );
    }

    fn pages_strategy() -> impl Strategy<Value = Vec<Vec<String>>> {
        prop::collection::vec(prop::collection::vec("[a-zé]{1,6}", 0..120), 1..5)
    }

    proptest! {
        /// Every word of every page is in a chunk of that page, in order; chunks never mix pages;
        /// indexes count up from 0; consecutive full windows on a page overlap by exactly `overlap`.
        #[test]
        fn coverage_overlap_and_pages(
            pages in pages_strategy(),
            size in 1usize..40,
            overlap_seed in 0usize..40,
        ) {
            let overlap = overlap_seed % size;
            let config = words_config(size, overlap);
            let input: Vec<Page> = pages
                .iter()
                .enumerate()
                .map(|(i, ws)| page(Some(i as u32 + 1), ws))
                .collect();
            let chunks = chunk(&input, &config, None);
            for (i, c) in chunks.iter().enumerate() {
                prop_assert_eq!(c.index, i);
                prop_assert!(c.text.split(' ').count() <= size);
            }
            for (p, words) in pages.iter().enumerate() {
                let mine: Vec<Vec<&str>> = chunks
                    .iter()
                    .filter(|c| c.page == Some(p as u32 + 1))
                    .map(|c| c.text.split(' ').collect())
                    .collect();
                prop_assert_eq!(mine.is_empty(), words.is_empty());
                if words.is_empty() {
                    continue;
                }
                // Rebuild the page from the chunks minus their overlaps.
                let mut rebuilt: Vec<&str> = mine[0].clone();
                for pair in mine.windows(2) {
                    let (a, b) = (&pair[0], &pair[1]);
                    prop_assert_eq!(a.len(), size, "only the last window is short");
                    prop_assert_eq!(&a[a.len() - overlap..], &b[..overlap]);
                    rebuilt.extend_from_slice(&b[overlap..]);
                }
                let expected: Vec<&str> = words.iter().map(String::as_str).collect();
                prop_assert_eq!(rebuilt, expected);
            }
        }
    }
}
