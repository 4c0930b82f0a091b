//! A JSON snapshot of the embedded store, so `import`, `plan`, `report` and `simulate` can share
//! a store without AWS: profiles, enrollments, rewards, metric counters, stored customer models,
//! each flow's learned uplift model and the order index.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use shared::adapters::embedded::MemoryStore;
use shared::domain::customer::Profile;
use shared::domain::metrics::{CohortKey, CounterRow, Counts};
use shared::domain::model::CampaignFit;
use shared::domain::reward::Reward;
use shared::domain::sequence::Enrollment;
use shared::domain::targeting::TargetingModel;
use shared::ports::{
    EnrollmentStore, FitStore, MetricsStore, OrderIndex, OrderOwner, ProfileStore, RewardStore,
};

use crate::error::{CliError, CliResult};

/// The snapshot file's format version.
pub const FORMAT: u32 = 1;

/// Everything a snapshot holds.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Snapshot {
    pub format: u32,
    /// Campaigns whose counters are included.
    pub campaigns: Vec<String>,
    pub profiles: Vec<Profile>,
    pub enrollments: Vec<Enrollment>,
    pub rewards: Vec<Reward>,
    pub counters: Vec<CounterRow>,
    /// Each campaign's stored customer model (absent from snapshots written before there was one).
    #[serde(default)]
    pub fits: Vec<CampaignFit>,
    /// The order index: whose order each remembered order id is (absent from older snapshots).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub orders: Vec<OrderOwner>,
    /// Each flow's learned uplift model (absent from older snapshots).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targeting: Vec<TargetingModel>,
}

impl Snapshot {
    /// Takes the contents of `store`, with the counters of `campaigns`.
    pub async fn take(store: &MemoryStore, campaigns: &[String]) -> CliResult<Snapshot> {
        let mut counters = Vec::new();
        for c in campaigns {
            counters.extend(store.counter_rows(c).await?);
        }
        Ok(Snapshot {
            format: FORMAT,
            campaigns: campaigns.to_vec(),
            profiles: store.all_profiles(),
            enrollments: store.all_enrollments(),
            rewards: store.all_rewards(),
            counters,
            fits: store.all_fits(),
            orders: store.all_order_owners(),
            targeting: store.all_targeting(),
        })
    }

    /// Writes the snapshot as JSON.
    pub fn save(&self, path: &Path) -> CliResult<()> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(CliError::io("create", dir))?;
        }
        let file = std::fs::File::create(path).map_err(CliError::io("write", path))?;
        serde_json::to_writer(std::io::BufWriter::new(file), self).map_err(|e| CliError::Snapshot {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })
    }

    /// Reads a snapshot file.
    pub fn load(path: &Path) -> CliResult<Snapshot> {
        let file = std::fs::File::open(path).map_err(CliError::io("read", path))?;
        let s: Snapshot = serde_json::from_reader(std::io::BufReader::new(file)).map_err(|e| {
            CliError::Snapshot {
                path: path.to_path_buf(),
                reason: format!("not a winback store snapshot ({e})"),
            }
        })?;
        if s.format != FORMAT {
            return Err(CliError::Snapshot {
                path: path.to_path_buf(),
                reason: format!("format {} is not the supported format {FORMAT}", s.format),
            });
        }
        Ok(s)
    }

    /// Reads `path` if it exists, else an empty snapshot.
    pub fn load_or_empty(path: &Path) -> CliResult<Snapshot> {
        if path.exists() {
            Snapshot::load(path)
        } else {
            Ok(Snapshot {
                format: FORMAT,
                ..Snapshot::default()
            })
        }
    }

    /// A store holding the snapshot's contents. Stored versions restart at 1; counters are
    /// restored exactly (day rows first, then what the total holds beyond them).
    pub async fn restore(&self) -> CliResult<MemoryStore> {
        let store = MemoryStore::new();
        store.put_profiles(&self.profiles).await?;
        store.put_order_owners(&self.orders).await?;
        for f in &self.fits {
            store
                .save_fit(&CampaignFit {
                    version: 0,
                    ..f.clone()
                })
                .await?;
        }
        for m in &self.targeting {
            store
                .save_targeting(&TargetingModel {
                    version: 0,
                    ..m.clone()
                })
                .await?;
        }
        for e in &self.enrollments {
            let mut e = e.clone();
            e.version = 0;
            store.save_enrollment(&e).await?;
        }
        for r in &self.rewards {
            store.insert_reward(r).await?;
            if r.version > 1 {
                let mut r = r.clone();
                r.version = 1;
                store.save_reward(&r).await?;
            }
        }
        let mut totals: BTreeMap<CohortKey, Counts> = BTreeMap::new();
        let mut from_days: BTreeMap<CohortKey, Counts> = BTreeMap::new();
        for row in &self.counters {
            match row.day {
                None => totals
                    .entry(row.key.clone())
                    .or_default()
                    .merge(&row.counts),
                Some(day) => {
                    let deltas: Vec<(&str, i64)> =
                        row.counts.0.iter().map(|(k, v)| (k.as_str(), *v)).collect();
                    store.add_counts(&row.key, Some(day), &deltas).await?;
                    from_days
                        .entry(row.key.clone())
                        .or_default()
                        .merge(&row.counts);
                }
            }
        }
        for (key, total) in totals {
            let already = from_days.remove(&key).unwrap_or_default();
            let rest: Vec<(&str, i64)> = total
                .0
                .iter()
                .map(|(k, v)| (k.as_str(), v - already.get(k)))
                .filter(|(_, v)| *v != 0)
                .collect();
            if !rest.is_empty() {
                store.add_counts(&key, None, &rest).await?;
            }
        }
        Ok(store)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;
    use shared::domain::experiment::Group;

    #[tokio::test]
    async fn a_snapshot_keeps_each_flows_learned_uplift_model() {
        use shared::domain::targeting::{learn, Arm, Example, Snapshot as Features};
        let examples: Vec<Example> = (0..80)
            .map(|k| Example {
                features: Features(
                    [("orders".to_string(), (k % 7).to_string())]
                        .into_iter()
                        .collect(),
                ),
                arm: if k % 2 == 0 {
                    Arm::NoEmail
                } else {
                    Arm::WithReward
                },
                ordered: k % 3 == 0,
            })
            .collect();
        let at = chrono::DateTime::from_timestamp(1_780_000_000, 0).unwrap();
        let model = learn("example", "win-back", &examples, at).unwrap();
        let store = MemoryStore::new();
        store.save_targeting(&model).await.unwrap();
        let snap = Snapshot::take(&store, &["example".to_string()])
            .await
            .unwrap();
        let back = snap.restore().await.unwrap();
        let stored = back
            .get_targeting("example", "win-back")
            .await
            .unwrap()
            .expect("the model is in the restored store");
        assert_eq!(
            TargetingModel {
                version: 0,
                ..stored
            },
            TargetingModel {
                version: 0,
                ..model
            }
        );
    }

    #[tokio::test]
    async fn a_snapshot_round_trips_profiles_and_counters_exactly() {
        let store = MemoryStore::new();
        let mut p = Profile::new("c1".parse().unwrap());
        p.email = Some("a@example.com".into());
        store.put_profiles(&[p]).await.unwrap();
        let key = CohortKey {
            campaign: "example".into(),
            variant: "a".into(),
            group: Group::Treated,
        };
        let d1 = NaiveDate::from_ymd_opt(2026, 1, 1);
        let d2 = NaiveDate::from_ymd_opt(2026, 1, 2);
        store
            .add_counts(&key, d1, &[("enrolled", 2)])
            .await
            .unwrap();
        store
            .add_counts(&key, d2, &[("enrolled", 1), ("reactivated", 1)])
            .await
            .unwrap();
        store.add_counts(&key, None, &[("sent", 5)]).await.unwrap();
        let snap = Snapshot::take(&store, &["example".to_string()])
            .await
            .unwrap();
        let path = std::env::temp_dir().join(format!("winback-snap-{}.json", std::process::id()));
        snap.save(&path).unwrap();
        let back = Snapshot::load(&path).unwrap().restore().await.unwrap();
        std::fs::remove_file(&path).ok();
        let mut before = store.counter_rows("example").await.unwrap();
        let mut after = back.counter_rows("example").await.unwrap();
        before.sort_by_key(|r| r.day);
        after.sort_by_key(|r| r.day);
        assert_eq!(before, after);
        assert_eq!(back.all_profiles().len(), 1);
    }

    #[test]
    fn a_file_that_is_not_a_snapshot_says_so() {
        let path = std::env::temp_dir().join(format!("winback-bad-{}.json", std::process::id()));
        std::fs::write(&path, "[1,2,3]").unwrap();
        let e = Snapshot::load(&path).unwrap_err().to_string();
        std::fs::remove_file(&path).ok();
        assert!(e.contains("not a winback store snapshot"), "{e}");
    }
}
