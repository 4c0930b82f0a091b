//! The fake shop of the local stack (infra/local/fake_shop.py, `WINBACK_FAKE_SHOP_URL`): its
//! codes, the schema violations it saw, and its modes (an outage, rate limits).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::Value;

/// The fake shop at `WINBACK_FAKE_SHOP_URL`.
pub struct FakeShop {
    pub url: String,
}

impl FakeShop {
    pub fn from_env() -> FakeShop {
        FakeShop {
            url: crate::required_env("WINBACK_FAKE_SHOP_URL"),
        }
    }

    fn call(&self, method: &str, path: &str, body: &str) -> Value {
        self.raw(method, path, &[("Content-Type", "application/json")], body)
    }

    /// Codes, violations and calls.
    pub fn state(&self) -> Value {
        self.call("GET", "/_fake/state", "")
    }

    pub fn reset(&self) {
        self.call("POST", "/_fake/reset", "{}");
    }

    /// `{"down": bool}`, `{"rate_limited": n}`, `{"failing": n}`, `{"after": n}` (n requests
    /// pass before the others apply), `{"slow": seconds}`, `{"bucket": {"maximum", "restore"}}`.
    pub fn mode(&self, mode: Value) {
        self.call("POST", "/_fake/mode", &mode.to_string());
    }

    /// The code as the shop keeps it (`platform`, `active`, `request`), if it has it.
    pub fn code(&self, code: &str) -> Option<Value> {
        self.state().get("codes")?.get(code).cloned()
    }

    /// How many codes the shop has.
    pub fn codes(&self) -> usize {
        self.state()["codes"].as_object().map_or(0, |o| o.len())
    }

    /// Seeds the order history every platform lists (infra/local/fake_shop.py `seed_orders`).
    pub fn seed_orders(&self, orders: &[Value]) {
        self.call(
            "POST",
            "/_fake/orders",
            &serde_json::json!({ "orders": orders }).to_string(),
        );
    }

    /// The pages of orders the shop served, in order (`platform` and its cursor or page).
    pub fn pages(&self) -> Vec<Value> {
        self.state()["pages"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Shopify queries refused because the cost bucket was empty (not counting those the
    /// `rate_limited` mode answered).
    pub fn throttled(&self) -> u64 {
        self.state()["throttled"].as_u64().unwrap_or_default()
    }

    /// Requests the shop's schemas refused.
    pub fn violations(&self) -> Vec<Value> {
        self.state()["violations"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// A raw request, for showing that the shop refuses what a schema refuses.
    pub fn raw(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Value {
        let host = self.url.strip_prefix("http://").expect("an http:// URL");
        let mut s = TcpStream::connect(host).expect("the fake shop listens");
        s.set_read_timeout(Some(Duration::from_secs(30)))
            .expect("a read timeout");
        let mut head = format!("{method} {path} HTTP/1.0\r\nHost: {host}\r\n");
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        write!(
            s,
            "{head}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .expect("writing");
        let mut raw = String::new();
        s.read_to_string(&mut raw).expect("reading");
        let (_, json) = raw.split_once("\r\n\r\n").expect("a header end");
        serde_json::from_str(json).unwrap_or(Value::Null)
    }
}
