//! What the tests and benchmarks share: tables on DynamoDB Local made from the template's spec
//! and (feature `webhook`) the webhook's requests, signed as shops and platforms sign them.

pub mod logs;
pub mod table;

#[cfg(feature = "webhook")]
pub mod requests;
