//! [`FitStore`] on DynamoDB.

use super::*;

#[async_trait]
impl FitStore for DynamoStore {
    async fn get_fit(&self, campaign: &str) -> StoreResult<Option<CampaignFit>> {
        self.get_entity(format!("FIT#{campaign}"), "FIT".into())
            .await
    }

    async fn save_fit(&self, fit: &CampaignFit) -> StoreResult<u64> {
        let item = entity_item(
            format!("FIT#{}", fit.campaign),
            "FIT".into(),
            fit,
            fit.version + 1,
        )?;
        self.put_versioned::<CampaignFit>(item, fit.version, "fit", &fit.campaign)
            .await
    }
}
