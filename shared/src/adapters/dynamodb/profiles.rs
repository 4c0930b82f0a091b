//! [`ProfileStore`] on DynamoDB.

use super::*;

#[async_trait]
impl ProfileStore for DynamoStore {
    async fn get_profile(&self, customer_id: &str) -> StoreResult<Option<Profile>> {
        self.get_entity(profile_pk(customer_id), PROFILE_SK.into())
            .await
    }

    async fn save_profile(&self, profile: &Profile) -> StoreResult<u64> {
        let item = profile_item(profile, profile.version + 1)?;
        self.put_versioned::<Profile>(item, profile.version, "profile", &profile.customer_id)
            .await
    }

    /// Without version checks; each stored profile gets `version + 1`. When a customer appears
    /// more than once, the last one wins.
    async fn put_profiles(&self, profiles: &[Profile]) -> StoreResult<usize> {
        let mut last: HashMap<&str, usize> = HashMap::new();
        for (i, p) in profiles.iter().enumerate() {
            last.insert(p.customer_id.as_str(), i);
        }
        let items = profiles
            .iter()
            .enumerate()
            .filter(|(i, p)| last.get(p.customer_id.as_str()) == Some(i))
            .map(|(_, p)| profile_item(p, p.version + 1))
            .collect::<StoreResult<Vec<_>>>()?;
        self.batch_put(items).await?;
        Ok(profiles.len())
    }
}
