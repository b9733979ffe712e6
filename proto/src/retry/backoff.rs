//! Exponential backoff with jitter: settings ([`Backoff`]) apart from the state of one
//! retry session ([`BackoffSession`]).

use std::time::Duration;

/// Backoff settings: the delay starts at `min`, doubles per attempt up to `max`, and
/// each delay is shortened by a random fraction of up to `jitter` (so delays lie in
/// `[base * (1 - jitter), base]` and never exceed `max`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    jitter: f64,
}

/// Settings rejected by [`Backoff::try_new`].
#[derive(Clone, Copy, Debug, PartialEq, thiserror::Error)]
pub enum InvalidBackoff {
    /// `min` is zero or above `max`.
    #[error("backoff min {min:?} must be above zero and at most max {max:?}")]
    Range {
        /// The rejected minimum.
        min: Duration,
        /// The rejected maximum.
        max: Duration,
    },
    /// `jitter` is outside `0.0..=1.0`.
    #[error("backoff jitter {0} must be between 0.0 and 1.0")]
    Jitter(f64),
}

impl Backoff {
    /// For calls: 50 ms doubling to 2 s, 50 % jitter.
    pub const CALL: Self = Self {
        min: Duration::from_millis(50),
        max: Duration::from_secs(2),
        jitter: 0.5,
    };

    /// For waiting on a socket to appear: 50 ms doubling to 1 s, 50 % jitter.
    pub const CONNECT: Self = Self {
        min: Duration::from_millis(50),
        max: Duration::from_secs(1),
        jitter: 0.5,
    };

    /// Validated settings.
    ///
    /// # Errors
    /// [`InvalidBackoff::Range`] when `min` is zero or above `max`;
    /// [`InvalidBackoff::Jitter`] when `jitter` is not in `0.0..=1.0`.
    pub fn try_new(min: Duration, max: Duration, jitter: f64) -> Result<Self, InvalidBackoff> {
        if min.is_zero() || min > max {
            return Err(InvalidBackoff::Range { min, max });
        }
        if !(0.0..=1.0).contains(&jitter) {
            return Err(InvalidBackoff::Jitter(jitter));
        }
        Ok(Self { min, max, jitter })
    }

    /// The first (shortest un-jittered) delay.
    pub fn min(&self) -> Duration {
        self.min
    }

    /// The longest delay; server hints are clamped to it.
    pub fn max(&self) -> Duration {
        self.max
    }

    /// Fresh state for one retry session, randomly seeded.
    pub fn session(&self) -> BackoffSession {
        BackoffSession {
            settings: *self,
            attempt: 0,
            rng: fastrand::Rng::new(),
        }
    }

    /// Fresh state with a fixed seed, for repeatable tests.
    pub fn session_with_seed(&self, seed: u64) -> BackoffSession {
        BackoffSession {
            settings: *self,
            attempt: 0,
            rng: fastrand::Rng::with_seed(seed),
        }
    }
}

/// The delays of one retry session.
#[derive(Clone, Debug)]
pub struct BackoffSession {
    settings: Backoff,
    attempt: u32,
    rng: fastrand::Rng,
}

impl BackoffSession {
    /// The delay before the next attempt.
    pub fn next_delay(&mut self) -> Duration {
        let Backoff { min, max, jitter } = self.settings;
        let base = min.saturating_mul(1u32 << self.attempt.min(31)).min(max);
        self.attempt = self.attempt.saturating_add(1);
        base.mul_f64(1.0 - jitter * self.rng.f64())
    }

    /// Starts over from the shortest delay (after a success).
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn delays_double_from_min_to_max_without_jitter() {
        let backoff = Backoff::try_new(ms(10), ms(50), 0.0).unwrap();
        let mut session = backoff.session();
        let delays: Vec<_> = (0..5).map(|_| session.next_delay()).collect();
        assert_eq!(delays, [ms(10), ms(20), ms(40), ms(50), ms(50)]);
    }

    #[test]
    fn jittered_delays_stay_within_bounds_for_many_seeds() {
        let backoff = Backoff::try_new(ms(10), ms(1000), 0.5).unwrap();
        for seed in 0..500 {
            let mut session = backoff.session_with_seed(seed);
            let mut base = ms(10);
            for _ in 0..12 {
                let delay = session.next_delay();
                assert!(
                    delay <= base && delay >= base / 2,
                    "seed {seed}: {delay:?} vs {base:?}"
                );
                base = (base * 2).min(ms(1000));
            }
        }
    }

    #[test]
    fn jitter_spreads_delays() {
        let backoff = Backoff::try_new(ms(100), ms(100), 0.5).unwrap();
        let mut session = backoff.session_with_seed(7);
        let delays: std::collections::HashSet<_> = (0..20).map(|_| session.next_delay()).collect();
        assert!(delays.len() > 10);
    }

    #[test]
    fn reset_starts_over() {
        let backoff = Backoff::try_new(ms(10), ms(80), 0.0).unwrap();
        let mut session = backoff.session();
        session.next_delay();
        session.next_delay();
        session.reset();
        assert_eq!(session.next_delay(), ms(10));
    }

    #[test]
    fn many_attempts_do_not_overflow() {
        let backoff = Backoff::try_new(ms(1), Duration::from_secs(3600), 0.0).unwrap();
        let mut session = backoff.session();
        let last = (0..200).map(|_| session.next_delay()).last().unwrap();
        assert_eq!(last, Duration::from_secs(3600));
    }

    #[test]
    fn invalid_settings_are_rejected() {
        assert!(matches!(
            Backoff::try_new(ms(0), ms(10), 0.1),
            Err(InvalidBackoff::Range { .. })
        ));
        assert!(matches!(
            Backoff::try_new(ms(20), ms(10), 0.1),
            Err(InvalidBackoff::Range { .. })
        ));
        assert_eq!(
            Backoff::try_new(ms(1), ms(10), 1.5),
            Err(InvalidBackoff::Jitter(1.5))
        );
    }
}
