//! Adapters for the ports: DynamoDB, SES v2, EventBridge, and an embedded in-process world.

pub mod embedded;
