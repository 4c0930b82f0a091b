//! [`MetricsStore`] on DynamoDB: counters in day rows, totals summed when read.

use super::*;

#[async_trait]
impl MetricsStore for DynamoStore {
    async fn add_counts(
        &self,
        cohort: &CohortKey,
        day: Option<NaiveDate>,
        deltas: &[(&str, i64)],
    ) -> StoreResult<()> {
        let mut merged: Vec<(&str, i64)> = Vec::new();
        for (name, delta) in deltas {
            match merged.iter_mut().find(|(n, _)| n == name) {
                Some(m) => m.1 += delta,
                None => merged.push((name, *delta)),
            }
        }
        if merged.is_empty() {
            return Ok(());
        }
        let mut names = HashMap::new();
        let mut values = HashMap::new();
        let mut parts = Vec::new();
        for (i, (name, delta)) in merged.iter().enumerate() {
            names.insert(format!("#c{i}"), format!("{COUNTER_PREFIX}{name}"));
            values.insert(format!(":c{i}"), n(delta));
            parts.push(format!("#c{i} :c{i}"));
        }
        let expression = format!("ADD {}", parts.join(", "));
        // One row: the day's, or the day-less total row (totals are summed when read).
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(
                counters_pk(&cohort.campaign),
                counters_sk(cohort, day),
            )))
            .update_expression(&expression)
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .send()
            .await
            .map_err(|e| classify(e, "UpdateItem", &self.table, None))?;
        self.wrote(1);
        Ok(())
    }

    async fn counter_rows(&self, campaign: &str) -> StoreResult<Vec<CounterRow>> {
        let mut rows = Vec::new();
        for item in self.partition(counters_pk(campaign), None).await? {
            let sk = match item.get("sk") {
                Some(AttributeValue::S(sk)) => sk.clone(),
                _ => return Err(corrupt(&item, "no sort key")),
            };
            let (variant, group, day) = parse_counters_sk(&sk)
                .ok_or_else(|| corrupt(&item, "sort key is not a counter row's"))?;
            let mut counts = Counts::default();
            for (attr, value) in &item {
                let Some(name) = attr.strip_prefix(COUNTER_PREFIX) else {
                    continue;
                };
                let AttributeValue::N(v) = value else {
                    return Err(corrupt(&item, format!("counter {name} is not a number")));
                };
                let v = v
                    .parse::<i64>()
                    .map_err(|e| corrupt(&item, format!("counter {name}: {e}")))?;
                counts.add(name, v);
            }
            rows.push(CounterRow {
                key: CohortKey {
                    campaign: campaign.to_string(),
                    variant,
                    group,
                },
                day,
                counts,
            });
        }
        Ok(with_totals(rows))
    }
}
