//! [`EnrollmentStore`] on DynamoDB.

use super::*;

#[async_trait]
impl EnrollmentStore for DynamoStore {
    async fn get_enrollment(
        &self,
        customer_id: &str,
        campaign: &str,
    ) -> StoreResult<Option<Enrollment>> {
        self.get_entity(profile_pk(customer_id), enrollment_sk(campaign))
            .await
    }

    async fn save_enrollment(&self, enrollment: &Enrollment) -> StoreResult<u64> {
        let item = enrollment_item(enrollment, enrollment.version + 1)?;
        self.put_versioned::<Enrollment>(item, enrollment.version, "enrollment", &enrollment.id)
            .await
    }
}
