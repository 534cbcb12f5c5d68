//! One memory budget for everything that holds a photo's pixels or bytes: upload bodies
//! while they arrive, every decode (uploads' checks, thumbnails, classification, faces,
//! GIF frames), each counted at its peak before it starts.
//!
//! A request that cannot get its bytes within a short wait is answered 503 with
//! `Retry-After` (its work is not started, nothing is lost); background jobs wait as
//! long as it takes. Anything that would need more than the whole budget on its own is
//! refused outright, since waiting could never help. So the process's pixel memory stays
//! under one figure however many users upload, however large their photos, instead of
//! growing until the kernel or the allocator ends the process.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::error::Error;

/// The shared budget; cheap to clone.
#[derive(Debug, Clone)]
pub struct MemoryBudget {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    limit: u64,
    used: Mutex<u64>,
    freed: Condvar,
}

/// Why bytes could not be had.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BudgetError {
    /// More than the whole budget: this work can never run here.
    #[error("needs {needed_mib} MiB at once, more than the {limit_mib} MiB this album allows")]
    TooLarge { needed_mib: u64, limit_mib: u64 },
    /// The budget is in use by other work now.
    #[error("the server is busy with other photos; try again in a few seconds")]
    Busy,
}

impl BudgetError {
    /// As an HTTP answer: 422 for work that never fits, 503 + `Retry-After` while busy.
    pub(crate) fn into_error(self, what: &str) -> Error {
        match self {
            BudgetError::TooLarge { .. } => Error::BadImage(format!("{what} {self}")),
            BudgetError::Busy => Error::Busy {
                message: format!("{what}: {self}"),
                retry_after_secs: 5,
            },
        }
    }
}

const MIB: u64 = 1 << 20;

impl MemoryBudget {
    pub fn new(limit_bytes: u64) -> Self {
        MemoryBudget {
            inner: Arc::new(Inner {
                limit: limit_bytes,
                used: Mutex::new(0),
                freed: Condvar::new(),
            }),
        }
    }

    /// The whole budget, in bytes.
    pub fn limit(&self) -> u64 {
        self.inner.limit
    }

    /// Bytes reserved now.
    pub fn in_use(&self) -> u64 {
        *self.used()
    }

    /// `bytes` now, or [`BudgetError::Busy`] without waiting (for async code).
    pub fn try_reserve(&self, bytes: u64) -> Result<Reservation, BudgetError> {
        self.reserve_until(bytes, Some(Instant::now()))
    }

    /// `bytes`, waiting up to `wait` for other work to release them. Blocks the thread:
    /// call it from blocking code only.
    pub(crate) fn reserve_within(
        &self,
        bytes: u64,
        wait: Duration,
    ) -> Result<Reservation, BudgetError> {
        self.reserve_until(bytes, Some(Instant::now() + wait))
    }

    /// `bytes`, waiting as long as it takes (background jobs). Blocks the thread.
    pub(crate) fn reserve(&self, bytes: u64) -> Result<Reservation, BudgetError> {
        self.reserve_until(bytes, None)
    }

    fn reserve_until(
        &self,
        bytes: u64,
        deadline: Option<Instant>,
    ) -> Result<Reservation, BudgetError> {
        self.check_fits(bytes)?;
        let mut used = self.used();
        while *used + bytes > self.inner.limit {
            used = match deadline {
                None => self
                    .inner
                    .freed
                    .wait(used)
                    .unwrap_or_else(|poison| poison.into_inner()),
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(BudgetError::Busy);
                    }
                    self.inner
                        .freed
                        .wait_timeout(used, left)
                        .unwrap_or_else(|poison| poison.into_inner())
                        .0
                }
            };
        }
        *used += bytes;
        Ok(Reservation {
            budget: self.clone(),
            bytes,
        })
    }

    fn check_fits(&self, bytes: u64) -> Result<(), BudgetError> {
        if bytes > self.inner.limit {
            return Err(BudgetError::TooLarge {
                needed_mib: bytes.div_ceil(MIB),
                limit_mib: self.inner.limit / MIB,
            });
        }
        Ok(())
    }

    // Nothing that can panic runs while the lock is held, so a poisoned lock still
    // holds a correct count.
    fn used(&self) -> MutexGuard<'_, u64> {
        self.inner
            .used
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    fn release(&self, bytes: u64) {
        if bytes == 0 {
            return;
        }
        let mut used = self.used();
        *used = used.saturating_sub(bytes);
        drop(used);
        self.inner.freed.notify_all();
    }
}

/// Bytes held from the budget until dropped.
#[derive(Debug)]
pub struct Reservation {
    budget: MemoryBudget,
    bytes: u64,
}

impl Reservation {
    /// Bytes held.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Holds `more` bytes as well, now or never (an upload body growing chunk by chunk).
    pub(crate) fn try_grow(&mut self, more: u64) -> Result<(), BudgetError> {
        let extra = self.budget.try_reserve(more)?;
        self.bytes += extra.bytes;
        std::mem::forget(extra); // its bytes are ours now
        Ok(())
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.budget.release(self.bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_are_held_until_dropped() {
        let budget = MemoryBudget::new(100);
        let a = budget.try_reserve(60).unwrap();
        assert_eq!(budget.in_use(), 60);
        assert_eq!(budget.try_reserve(41).unwrap_err(), BudgetError::Busy);
        let b = budget.try_reserve(40).unwrap();
        drop(a);
        assert_eq!(budget.in_use(), 40);
        drop(b);
        assert_eq!(budget.in_use(), 0);
    }

    #[test]
    fn more_than_the_whole_budget_is_refused_at_once() {
        let budget = MemoryBudget::new(10 * MIB);
        let err = budget.reserve(10 * MIB + 1).unwrap_err();
        assert_eq!(
            err,
            BudgetError::TooLarge {
                needed_mib: 11,
                limit_mib: 10
            }
        );
        assert_eq!(
            err.into_error("x.png").status(),
            axum::http::StatusCode::UNPROCESSABLE_ENTITY
        );
    }

    #[test]
    fn a_waiter_gets_the_bytes_when_they_are_released() {
        let budget = MemoryBudget::new(100);
        let held = budget.try_reserve(80).unwrap();
        let waiter = {
            let budget = budget.clone();
            std::thread::spawn(move || budget.reserve_within(50, Duration::from_secs(30)))
        };
        std::thread::sleep(Duration::from_millis(50));
        drop(held);
        let got = waiter.join().unwrap().unwrap();
        assert_eq!(got.bytes(), 50);
    }

    #[test]
    fn a_bounded_wait_ends_busy_and_answers_503() {
        let budget = MemoryBudget::new(100);
        let _held = budget.try_reserve(100).unwrap();
        let started = Instant::now();
        let err = budget
            .reserve_within(1, Duration::from_millis(50))
            .unwrap_err();
        assert_eq!(err, BudgetError::Busy);
        assert!(started.elapsed() >= Duration::from_millis(50));
        let error = err.into_error("upload");
        assert_eq!(error.status(), axum::http::StatusCode::SERVICE_UNAVAILABLE);
    }

    #[test]
    fn a_grown_reservation_releases_everything_it_holds() {
        let budget = MemoryBudget::new(100);
        let mut body = budget.try_reserve(10).unwrap();
        body.try_grow(30).unwrap();
        assert_eq!(budget.in_use(), 40);
        assert_eq!(body.try_grow(61).unwrap_err(), BudgetError::Busy);
        assert_eq!(body.bytes(), 40);
        drop(body);
        assert_eq!(budget.in_use(), 0);
    }
}
