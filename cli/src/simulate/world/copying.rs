//! Adapters that pass calls on to the real AWS ones and keep a copy, so the simulated recipients
//! read the emails SES was asked to send and the sender gets the steps EventBridge accepted.

use super::*;

/// Where the emails the sender sent can be read back from.
pub trait Outbox: Send + Sync {
    /// Takes every email sent since the last call, with its message id.
    fn take(&self) -> Vec<(String, Email)>;
}

impl Outbox for MemoryMailer {
    fn take(&self) -> Vec<(String, Email)> {
        self.drain()
    }
}

/// Sends through another mailer (SES) and keeps a copy of what was sent, so the simulated
/// recipients can read it.
pub struct CopyingMailer {
    pub inner: Arc<dyn Mailer>,
    sent: Mutex<Vec<(String, Email)>>,
}

impl CopyingMailer {
    pub fn new(inner: Arc<dyn Mailer>) -> CopyingMailer {
        CopyingMailer {
            inner,
            sent: Mutex::new(Vec::new()),
        }
    }
}

#[async_trait]
impl Mailer for CopyingMailer {
    async fn send(&self, email: &Email) -> Result<String, MailError> {
        let id = self.inner.send(email).await?;
        self.sent
            .lock()
            .expect("lock")
            .push((id.clone(), email.clone()));
        Ok(id)
    }
}

impl Outbox for CopyingMailer {
    fn take(&self) -> Vec<(String, Email)> {
        std::mem::take(&mut *self.sent.lock().expect("lock"))
    }
}

/// Publishes to another bus (EventBridge) and keeps what was accepted, so the simulation can
/// hand `WinbackStepDue` to the sender the way the bus rule and queue would.
pub struct CopyingBus {
    pub inner: Arc<dyn EventBus>,
    pub local: Arc<MemoryBus>,
}

#[async_trait]
impl EventBus for CopyingBus {
    async fn put_batch(&self, events: &[shared::events::BusEvent]) -> Result<PutResult, BusError> {
        let result = self.inner.put_batch(events).await?;
        let accepted: Vec<_> = events
            .iter()
            .enumerate()
            .filter(|(i, _)| !result.failed.iter().any(|(f, _)| f == i))
            .map(|(_, e)| e.clone())
            .collect();
        self.local.put_batch(&accepted).await.ok();
        Ok(result)
    }
}
