//! [`FitStore`] on DynamoDB: the customer model at `FIT#<campaign>`, each flow's uplift model
//! at `TARGETING#<campaign>#<flow>` (an item of its own: three boosters of 60 trees are some
//! 150 KB of JSON, four flows together would pass DynamoDB's 400 KB).

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

    async fn get_targeting(
        &self,
        campaign: &str,
        flow: &str,
    ) -> StoreResult<Option<TargetingModel>> {
        self.get_entity(format!("TARGETING#{campaign}#{flow}"), "TARGETING".into())
            .await
    }

    async fn save_targeting(&self, model: &TargetingModel) -> StoreResult<u64> {
        let id = format!("{}#{}", model.campaign, model.flow);
        let item = entity_item(
            format!("TARGETING#{id}"),
            "TARGETING".into(),
            model,
            model.version + 1,
        )?;
        self.put_versioned::<TargetingModel>(item, model.version, "targeting", &id)
            .await
    }
}
