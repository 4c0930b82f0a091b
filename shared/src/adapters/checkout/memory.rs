//! The simulator's and the tests' shop: codes kept in memory, and an outage on demand.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

use async_trait::async_trait;

use crate::domain::checkout::CodeRequest;
use crate::ports::{Checkout, CheckoutError};

/// A shop in memory: every code created, whether it is still active, and how many calls it took.
#[derive(Default)]
pub struct MemoryCheckout {
    codes: Mutex<BTreeMap<String, (CodeRequest, bool)>>,
    calls: AtomicU64,
    down: AtomicBool,
}

impl MemoryCheckout {
    pub fn new() -> MemoryCheckout {
        MemoryCheckout::default()
    }

    /// The shop's API fails (`true`) or answers again (`false`).
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    /// The code as created, and whether it is still active.
    pub fn code(&self, code: &str) -> Option<(CodeRequest, bool)> {
        self.codes.lock().expect("lock").get(code).cloned()
    }

    /// How many codes exist.
    pub fn len(&self) -> usize {
        self.codes.lock().expect("lock").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Calls made, failed ones included.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::SeqCst)
    }

    fn answer(&self) -> Result<(), CheckoutError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.down.load(Ordering::SeqCst) {
            return Err(CheckoutError::Unavailable("the shop is down".into()));
        }
        Ok(())
    }
}

#[async_trait]
impl Checkout for MemoryCheckout {
    async fn create_code(&self, code: &CodeRequest) -> Result<(), CheckoutError> {
        self.answer()?;
        self.codes
            .lock()
            .expect("lock")
            .entry(code.code.clone())
            .or_insert_with(|| (code.clone(), true));
        Ok(())
    }

    async fn disable_code(&self, code: &str) -> Result<(), CheckoutError> {
        self.answer()?;
        if let Some((_, active)) = self.codes.lock().expect("lock").get_mut(code) {
            *active = false;
        }
        Ok(())
    }
}
