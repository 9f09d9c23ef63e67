//! What simulated clients ask for: a random mix of operations over a small key space, so
//! that clients contend on the same znodes.

use paddock_core::acl::Acl;
use paddock_core::wire::{
    CreateRequest, DeleteRequest, PathRequest, PathWatchRequest, Request, SetDataRequest,
};
use rand::RngExt;
use rand_chacha::ChaCha8Rng;

/// Top-level keys clients work on.
const KEYS: u32 = 8;

fn key(rng: &mut ChaCha8Rng) -> String {
    format!("/k{}", rng.random_range(0..KEYS))
}

fn path(rng: &mut ChaCha8Rng) -> String {
    if rng.random_range(0..4) == 0 {
        format!("{}/c{}", key(rng), rng.random_range(0..3))
    } else {
        key(rng)
    }
}

fn data(rng: &mut ChaCha8Rng) -> Option<Vec<u8>> {
    let len = rng.random_range(0..8);
    Some((0..len).map(|_| rng.random_range(b'a'..=b'z')).collect())
}

/// The next request of a client.
pub fn next_request(rng: &mut ChaCha8Rng) -> Request {
    match rng.random_range(0..100) {
        0..=24 => Request::Create(CreateRequest {
            path: path(rng),
            data: data(rng),
            acl: Acl::open_unsafe(),
            flags: [0, 0, 1, 2, 3][rng.random_range(0..5)],
        }),
        25..=34 => Request::Delete(DeleteRequest {
            path: path(rng),
            version: if rng.random_range(0..2) == 0 {
                -1
            } else {
                rng.random_range(0..3)
            },
        }),
        35..=54 => Request::SetData(SetDataRequest {
            path: path(rng),
            data: data(rng),
            version: if rng.random_range(0..3) == 0 {
                rng.random_range(0..3)
            } else {
                -1
            },
        }),
        55..=74 => Request::GetData(PathWatchRequest {
            path: path(rng),
            watch: rng.random_range(0..3) == 0,
        }),
        75..=84 => Request::Exists(PathWatchRequest {
            path: path(rng),
            watch: rng.random_range(0..3) == 0,
        }),
        85..=94 => Request::GetChildren(PathWatchRequest {
            path: key(rng),
            watch: rng.random_range(0..3) == 0,
        }),
        _ => Request::Sync(PathRequest { path: key(rng) }),
    }
}
