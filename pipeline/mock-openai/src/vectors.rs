//! The answer: deterministic unit vectors, as floats or base64, in OpenAI's list shape.

use crate::Mock;
use crate::error::{OpenAiError, error};
use crate::validation::Request;
use axum::http::StatusCode;
use rand::{Rng, SeedableRng};
use std::sync::atomic::Ordering;

/// The answer's shape, serialized straight from the vectors (floats in their shortest form).
#[derive(serde::Serialize)]
struct List<'a> {
    object: &'static str,
    data: Vec<Item>,
    model: &'a str,
    usage: Usage,
}

#[derive(serde::Serialize)]
struct Item {
    object: &'static str,
    index: usize,
    embedding: Embedding,
}

#[derive(serde::Serialize)]
#[serde(untagged)]
enum Embedding {
    Float(Vec<f32>),
    Base64(String),
}

#[derive(serde::Serialize)]
struct Usage {
    prompt_tokens: usize,
    total_tokens: usize,
}

/// The body of the answer to a valid request.
pub(crate) fn answer(mock: &Mock, req: &Request) -> Result<Vec<u8>, OpenAiError> {
    let (model, dims, base64, inputs, total) = (
        req.model.as_str(),
        req.dims,
        req.base64,
        &req.inputs,
        req.total,
    );
    let data: Vec<Item> = inputs
        .iter()
        .enumerate()
        .map(|(index, input)| {
            let v = vector(model, dims, &input.seed_bytes);
            let embedding = if base64 {
                use base64::Engine as _;
                let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
                Embedding::Base64(base64::engine::general_purpose::STANDARD.encode(bytes))
            } else {
                Embedding::Float(v)
            };
            Item {
                object: "embedding",
                index,
                embedding,
            }
        })
        .collect();
    mock.stats
        .inputs_embedded
        .fetch_add(inputs.len() as u64, Ordering::Relaxed);
    let list = List {
        object: "list",
        data,
        model,
        usage: Usage {
            prompt_tokens: total,
            total_tokens: total,
        },
    };
    serde_json::to_vec(&list).map_err(|e| {
        error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("mock: {e}"),
            "server_error",
            None,
            None,
        )
    })
}

/// The deterministic unit vector of `text` for a model and size: components drawn from a
/// generator seeded by a hash of all three, then normalised.
pub fn vector(model: &str, dims: usize, text: &[u8]) -> Vec<f32> {
    // FNV-1a, 64 bit: stable across platforms and releases (unlike std's hasher).
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in model
        .as_bytes()
        .iter()
        .chain(&(dims as u64).to_le_bytes())
        .chain(text)
    {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(h);
    let mut v: Vec<f32> = (0..dims).map(|_| rng.random_range(-1.0f32..1.0)).collect();
    let norm = v
        .iter()
        .map(|x| x * x)
        .sum::<f32>()
        .sqrt()
        .max(f32::MIN_POSITIVE);
    v.iter_mut().for_each(|x| *x /= norm);
    v
}
