//! Keyed hashes that stand in for values that would identify a customer where only sameness
//! matters: the id of a WooCommerce guest (known only by their email address) and the dedupe
//! keys of the shop's events (whose ids may carry a customer id, as Shopify's
//! `shopify:customer:<id>:<time>` do).
//!
//! An unkeyed hash of an address is reversible by guessing (hash every address on a list and
//! compare); HMAC-SHA256 with the deployment's pseudonym key is not, without the key. The key is
//! the plain-text secret `PSEUDONYM_SECRET_ARN` names (the template's `PseudonymKeySeed`,
//! generated once, read by the webhook only), locally `WINBACK_PSEUDONYM_KEY`.
//!
//! It is one key, never rotated with the signing keys: the same address must give the same
//! guest id for as long as the customer is kept, and the same event the same dedupe key for the
//! 30 days it is remembered. Replacing it makes every guest a new customer at their next order
//! and forgets which events were recorded; see docs/operations.md.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The pseudonym key.
#[derive(Clone, PartialEq, Eq)]
pub struct Pseudonyms {
    key: Vec<u8>,
}

impl Pseudonyms {
    pub fn new(key: &[u8]) -> Pseudonyms {
        Pseudonyms { key: key.to_vec() }
    }

    /// HMAC-SHA256 of `value` for `purpose` (each purpose hashes apart from the others).
    fn digest(&self, purpose: &str, value: &[u8]) -> [u8; 32] {
        let mut m = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key length");
        m.update(purpose.as_bytes());
        m.update(b"\n");
        m.update(value);
        m.finalize().into_bytes().into()
    }

    /// The customer id of a WooCommerce guest: `woo-guest-` and 16 hex digits of the keyed hash
    /// of the lower-cased, trimmed billing address. The same address gives the same id in any
    /// case; the id does not give the address back.
    pub fn woocommerce_guest(&self, email: &str) -> String {
        let digest = self.digest("woocommerce-guest", email.trim().to_lowercase().as_bytes());
        format!("woo-guest-{}", &hex::encode(digest)[..16])
    }

    /// The idempotency key of `raw` (an event id) of `kind`: `<kind>#` and 32 hex digits of its
    /// keyed hash, so the stored key holds nothing readable of the id.
    pub fn dedupe_key(&self, kind: &str, raw: &str) -> String {
        let digest = self.digest(&format!("dedupe:{kind}"), raw.as_bytes());
        format!("{kind}#{}", &hex::encode(digest)[..32])
    }
}

impl std::fmt::Debug for Pseudonyms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pseudonyms(<key>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::Digest;

    #[test]
    fn a_guest_id_is_stable_for_one_key_and_not_the_unkeyed_hash_of_the_address() {
        let p = Pseudonyms::new(b"pseudonym-key");
        let a = p.woocommerce_guest("Guest.Buyer@Example.com");
        assert_eq!(a, p.woocommerce_guest(" guest.buyer@example.com"));
        assert_ne!(a, p.woocommerce_guest("other@example.com"));
        assert!(a.starts_with("woo-guest-") && a.len() == "woo-guest-".len() + 16);
        // Hashing a list of guessed addresses without the key finds no guest.
        let unkeyed = hex::encode(Sha256::digest(b"guest.buyer@example.com"));
        assert_ne!(a, format!("woo-guest-{}", &unkeyed[..16]));
        // Another deployment's key gives another id.
        assert_ne!(
            a,
            Pseudonyms::new(b"other-key").woocommerce_guest("guest.buyer@example.com")
        );
    }

    #[test]
    fn a_dedupe_key_is_stable_and_holds_nothing_of_the_id() {
        let p = Pseudonyms::new(b"pseudonym-key");
        let id = "shopify:customer:115310627314723954:1764000000";
        let k = p.dedupe_key("activity", id);
        assert_eq!(k, p.dedupe_key("activity", id));
        assert!(k.starts_with("activity#") && k.len() == "activity#".len() + 32);
        assert!(!k.contains("115310627314723954"));
        assert_ne!(k, p.dedupe_key("activity", "shopify:customer:1:1764000000"));
        assert_ne!(
            p.dedupe_key("other", id).split_once('#').unwrap().1,
            k.split_once('#').unwrap().1,
            "each kind hashes apart"
        );
        assert!(!format!("{p:?}").contains("pseudonym-key"));
    }
}
