//! Which chunks go into which request: a pure function of the inputs' token counts and OpenAI's
//! limits (docs/semantics.md, the OpenAI embeddings API: ≤ 2,048 inputs and ≤ 300,000 tokens per request, ≤ 8,192 tokens per
//! input). Inputs are packed in order, so the consumed batch's order is kept in the output.

use std::ops::Range;

/// OpenAI's limits, and ours (a smaller `max_inputs` makes more, smaller requests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_inputs: usize,
    pub max_request_tokens: usize,
    pub max_input_tokens: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_inputs: 2048,
            max_request_tokens: 300_000,
            max_input_tokens: 8192,
        }
    }
}

/// Consecutive ranges of `tokens` (each input's count) that fit the limits. Every input must
/// already fit `max_input_tokens` (longer ones are refused before, never sent).
pub fn plan(tokens: &[usize], limits: &Limits) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut sum = 0;
    for (i, &t) in tokens.iter().enumerate() {
        debug_assert!(t <= limits.max_input_tokens);
        if i > start && (i - start == limits.max_inputs || sum + t > limits.max_request_tokens) {
            out.push(start..i);
            start = i;
            sum = 0;
        }
        sum += t;
    }
    if start < tokens.len() {
        out.push(start..tokens.len());
    }
    out
}

/// An upper bound of an input's cl100k tokens without tokenizing: every token is at least one
/// byte of UTF-8. When it fits, the exact count is not needed.
pub fn token_bound(text: &str) -> usize {
    text.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn splits_on_either_limit() {
        let limits = Limits {
            max_inputs: 3,
            max_request_tokens: 10,
            max_input_tokens: 10,
        };
        assert_eq!(plan(&[1, 1, 1, 1], &limits), vec![0..3, 3..4]);
        assert_eq!(plan(&[6, 5, 5, 10], &limits), vec![0..1, 1..3, 3..4]);
        assert_eq!(plan(&[], &limits), Vec::<Range<usize>>::new());
    }

    proptest! {
        /// The ranges cover every input once, in order, and each request fits both limits.
        #[test]
        fn plans_cover_in_order_within_limits(
            tokens in prop::collection::vec(1usize..=8192, 0..300),
            max_inputs in 1usize..50,
        ) {
            let limits = Limits { max_inputs, ..Limits::default() };
            let ranges = plan(&tokens, &limits);
            let mut next = 0;
            for r in &ranges {
                prop_assert_eq!(r.start, next);
                prop_assert!(!r.is_empty() && r.len() <= max_inputs);
                prop_assert!(tokens[r.clone()].iter().sum::<usize>() <= limits.max_request_tokens);
                next = r.end;
            }
            prop_assert_eq!(next, tokens.len());
            // Greedy: a request was closed only because the next input did not fit.
            for pair in ranges.windows(2) {
                let (a, b) = (&pair[0], &pair[1]);
                let fits = a.len() < max_inputs
                    && tokens[a.clone()].iter().sum::<usize>() + tokens[b.start] <= limits.max_request_tokens;
                prop_assert!(!fits);
            }
        }
    }
}
