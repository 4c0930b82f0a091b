//! Adapters for the ports: DynamoDB, SES v2, EventBridge, and an embedded in-process world.

pub mod checkout;
pub mod dynamodb;
pub mod embedded;
pub mod eventbridge;
pub mod ses;
pub mod sns;
