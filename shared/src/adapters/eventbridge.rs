//! EventBridge adapter for [`EventBus`].

use async_trait::async_trait;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;

use crate::events::{BusEvent, SOURCE};
use crate::ports::{BusError, EventBus, PutResult};

/// Publishes to one custom bus.
#[derive(Clone)]
pub struct EventBridgeBus {
    client: aws_sdk_eventbridge::Client,
    bus_name: String,
}

impl EventBridgeBus {
    pub fn new(client: aws_sdk_eventbridge::Client, bus_name: impl Into<String>) -> Self {
        EventBridgeBus {
            client,
            bus_name: bus_name.into(),
        }
    }

    /// From an SDK config and `EVENT_BUS_NAME`.
    pub fn from_conf(conf: &aws_config::SdkConfig, bus_name: impl Into<String>) -> Self {
        EventBridgeBus::new(aws_sdk_eventbridge::Client::new(conf), bus_name)
    }
}

#[async_trait]
impl EventBus for EventBridgeBus {
    async fn put_batch(&self, events: &[BusEvent]) -> Result<PutResult, BusError> {
        let entries = events
            .iter()
            .map(|e| {
                PutEventsRequestEntry::builder()
                    .source(SOURCE)
                    .detail_type(e.detail_type())
                    .detail(e.detail_json())
                    .event_bus_name(&self.bus_name)
                    .build()
            })
            .collect::<Vec<_>>();
        let out = self
            .client
            .put_events()
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| BusError::Backend(Box::new(e)))?;
        let failed = out
            .entries()
            .iter()
            .enumerate()
            .filter_map(|(i, r)| {
                r.error_code().map(|code| {
                    (
                        i,
                        format!("{code}: {}", r.error_message().unwrap_or_default()),
                    )
                })
            })
            .collect();
        Ok(PutResult { failed })
    }
}
