//! The time every service agrees on.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use enclave_core::date::CivilDate;

const SECONDS_PER_DAY: i64 = 86_400;

/// Wall-clock time in UTC, shared by the services of one process.
///
/// A deployment uses [`Clock::system`]. Tests that must see a grant expire
/// use [`Clock::offset`] and move it forward with [`Clock::advance_days`];
/// clones share the offset.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    offset_seconds: Option<Arc<AtomicI64>>,
}

impl Clock {
    /// The system clock.
    pub fn system() -> Clock {
        Clock::default()
    }

    /// The system clock plus an offset that starts at zero and can be advanced.
    pub fn offset() -> Clock {
        Clock {
            offset_seconds: Some(Arc::new(AtomicI64::new(0))),
        }
    }

    /// Moves an offset clock forward; a system clock does not move.
    pub fn advance_days(&self, days: i64) {
        if let Some(offset) = &self.offset_seconds {
            offset.fetch_add(days * SECONDS_PER_DAY, Ordering::SeqCst);
        }
    }

    /// Seconds since the Unix epoch.
    pub fn now(&self) -> i64 {
        let system = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_secs() as i64);
        system
            + self
                .offset_seconds
                .as_ref()
                .map_or(0, |offset| offset.load(Ordering::SeqCst))
    }

    /// Today's date in UTC.
    pub fn today(&self) -> CivilDate {
        CivilDate::from_days_since_epoch(self.now().div_euclid(SECONDS_PER_DAY) as i32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_offset_clock_moves_and_its_clones_follow() {
        let clock = Clock::offset();
        let copy = clock.clone();
        let start = clock.today();
        clock.advance_days(3);
        assert_eq!(
            copy.today().days_since_epoch(),
            start.days_since_epoch() + 3
        );
        let system = Clock::system();
        system.advance_days(3);
        assert_eq!(system.today(), Clock::system().today());
    }
}
