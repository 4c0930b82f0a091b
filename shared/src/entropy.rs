//! The operating system's random source, for the draws the domain takes as arguments.

use crate::domain::reward::RewardCode;

/// A fresh reward code from the operating system's random source.
pub fn reward_code() -> Result<RewardCode, getrandom::Error> {
    let mut b = [0u8; 8];
    getrandom::getrandom(&mut b)?;
    Ok(RewardCode::from_entropy(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_from_the_os_are_well_formed_and_unique() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..10_000 {
            let c = reward_code().unwrap();
            assert_eq!(c.as_str().len(), 17);
            assert!(c.as_str().starts_with("WB-"));
            assert!(seen.insert(c));
        }
    }
}
