//! Campaigns: the TOML file, its email templates per locale, loading and validation.

pub mod config;

pub use config::CampaignConfig;

/// Campaigns shipped inside the binaries, so a Lambda needs no files beside it.
pub mod embedded {
    /// `(relative path, contents)` of every file of the shipped example campaign.
    pub const EXAMPLE: &[(&str, &str)] = &[(
        "campaign.toml",
        include_str!("../../campaigns/example/campaign.toml"),
    )];
}

/// Helpers for tests across the workspace.
pub mod testing {
    use super::CampaignConfig;

    /// The shipped example campaign's configuration.
    pub fn example_campaign() -> CampaignConfig {
        toml::from_str(super::embedded::EXAMPLE[0].1).expect("the shipped campaign parses")
    }
}
