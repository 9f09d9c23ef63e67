//! Where a run's decisions come from.
//!
//! Every choice the simulator makes — the fault plan, each message's delay, loss and
//! duplication, each crash, pause and disk fault, every client's next operation and
//! server — is one draw from [`Decisions`]. A seeded run draws from a ChaCha stream
//! alone. A scripted run (the `sim_cluster` fuzz target) takes the high byte of each
//! draw from a script, in order, and only the low bits from the seeded stream; once the
//! script is used up the run continues on the stream. Since every `random_range`,
//! `random_bool` and float draw is decided by the high bits, each script byte steers one
//! decision, and a fuzzer mutating one byte changes one choice of the run, not its seed.

use std::convert::Infallible;

use rand::SeedableRng;
use rand::rand_core::{Rng, TryRng};
use rand_chacha::ChaCha8Rng;

/// The decision source of one run: a seeded stream, optionally steered by a script.
#[derive(Debug, Clone)]
pub struct Decisions {
    stream: ChaCha8Rng,
    script: Vec<u8>,
    used: usize,
}

impl Decisions {
    /// Decisions drawn from the seeded stream alone (every ordinary run).
    pub fn seeded(seed: u64) -> Decisions {
        Decisions::scripted(seed, Vec::new())
    }

    /// Decisions whose high bytes come from `script`, in order, then from the stream.
    pub fn scripted(seed: u64, script: Vec<u8>) -> Decisions {
        Decisions {
            stream: ChaCha8Rng::seed_from_u64(seed),
            script,
            used: 0,
        }
    }

    /// How many script bytes the run has consumed so far.
    pub fn script_used(&self) -> usize {
        self.used
    }

    fn steer(&mut self) -> Option<u8> {
        let byte = self.script.get(self.used).copied()?;
        self.used += 1;
        Some(byte)
    }
}

impl TryRng for Decisions {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        let low = self.stream.next_u32();
        Ok(match self.steer() {
            Some(high) => (u32::from(high) << 24) | (low >> 8),
            None => low,
        })
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let low = self.stream.next_u64();
        Ok(match self.steer() {
            Some(high) => (u64::from(high) << 56) | (low >> 8),
            None => low,
        })
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        self.stream.fill_bytes(dst);
        if let Some(first) = dst.first_mut()
            && let Some(high) = self.steer()
        {
            *first = high;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use rand::RngExt;

    use super::*;

    #[test]
    fn seeded_decisions_are_the_chacha_stream() {
        let mut decisions = Decisions::seeded(7);
        let mut stream = ChaCha8Rng::seed_from_u64(7);
        for _ in 0..64 {
            assert_eq!(decisions.next_u64(), stream.next_u64());
            assert_eq!(decisions.next_u32(), stream.next_u32());
        }
        assert_eq!(decisions.script_used(), 0);
    }

    #[test]
    fn each_script_byte_steers_one_draw_then_the_stream_takes_over() {
        let mut low = Decisions::scripted(1, vec![0, 0, 0, 0]);
        let mut high = Decisions::scripted(1, vec![255, 255, 255, 255]);
        for _ in 0..4 {
            assert!(low.random_range(0..100u32) < 1);
            assert!(high.random_range(0..100u32) >= 99);
        }
        assert_eq!(low.script_used(), 4);
        // Past the script, both runs follow the same seeded stream again.
        let mut plain = Decisions::seeded(1);
        for _ in 0..4 {
            plain.next_u32();
        }
        let next = plain.next_u64();
        assert_eq!(low.next_u64(), next);
        assert_eq!(high.next_u64(), next);
    }

    #[test]
    fn rare_events_follow_the_script_byte() {
        let mut never = Decisions::scripted(3, vec![255; 32]);
        let mut always = Decisions::scripted(3, vec![0; 32]);
        for _ in 0..32 {
            assert!(!never.random_bool(0.5));
            assert!(always.random_bool(0.5));
        }
    }
}
