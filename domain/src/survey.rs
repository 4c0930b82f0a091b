//! Why customers left: survey reasons and NPS, and what each answer leads to.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::customer::Profile;
/// The reasons and follow-ups a profile records are its own vocabulary (in `customer`): this
/// module keeps the rules over them.
pub use super::customer::{FollowUp, Reason, UnknownReason};

/// NPS class of a 0–10 score.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NpsClass {
    Detractor,
    Passive,
    Promoter,
}

/// An NPS score outside 0–10.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("NPS score {0} is out of range: use 0 to 10")]
pub struct BadScore(pub u32);

impl NpsClass {
    /// The class of a score, when there is one in range.
    pub fn of(score: Option<u8>) -> Option<NpsClass> {
        score.and_then(|s| classify_nps(u32::from(s)).ok())
    }

    /// The profile tag of the class.
    pub fn tag(self) -> &'static str {
        match self {
            NpsClass::Detractor => "nps:detractor",
            NpsClass::Passive => "nps:passive",
            NpsClass::Promoter => "nps:promoter",
        }
    }
}

/// 0–6 detractor, 7–8 passive, 9–10 promoter.
pub fn classify_nps(score: u32) -> Result<NpsClass, BadScore> {
    match score {
        0..=6 => Ok(NpsClass::Detractor),
        7..=8 => Ok(NpsClass::Passive),
        9..=10 => Ok(NpsClass::Promoter),
        _ => Err(BadScore(score)),
    }
}

/// One answer from a survey link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "value")]
pub enum Answer {
    Reason(Reason),
    Nps(u8),
}

impl Answer {
    /// Reads an answer from a link: a reason name or an NPS score 0–10.
    pub fn parse(a: &str) -> Option<Answer> {
        if let Ok(r) = a.parse::<Reason>() {
            return Some(Answer::Reason(r));
        }
        let score: u8 = a.parse().ok()?;
        classify_nps(u32::from(score)).ok()?;
        Some(Answer::Nps(score))
    }

    /// Whether this answer is already the one given (`reason`, `nps`).
    pub fn same_as(self, reason: Option<Reason>, nps: Option<u8>) -> bool {
        match self {
            Answer::Reason(r) => reason == Some(r),
            Answer::Nps(s) => nps == Some(s),
        }
    }

    /// The follow-up this answer opens that the earlier answer of its kind (`reason`, `nps`) had
    /// not opened already.
    pub fn new_follow_up(self, reason: Option<Reason>, nps: Option<u8>) -> Option<FollowUp> {
        let had = match self {
            Answer::Reason(_) => reason.and_then(|r| outcome(Answer::Reason(r)).follow_up),
            Answer::Nps(_) => nps.and_then(|s| outcome(Answer::Nps(s)).follow_up),
        };
        outcome(self).follow_up.filter(|f| had != Some(*f))
    }
}

impl Profile {
    /// Records a survey answer: it replaces the previous answer of the same kind and its tags.
    pub fn apply_answer(&mut self, answer: Answer) {
        match answer {
            Answer::Reason(r) => {
                if let Some(old) = self.survey_reason {
                    self.tags.remove(&old.tag());
                }
                self.survey_reason = Some(r);
            }
            Answer::Nps(score) => {
                if let Some(old) = NpsClass::of(self.nps) {
                    self.tags.remove(old.tag());
                }
                self.nps = Some(score);
            }
        }
        self.tags.extend(outcome(answer).tags);
    }
}

/// What an answer changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub tags: Vec<String>,
    pub follow_up: Option<FollowUp>,
    /// The reason that picks the next reward, when the answer gives one.
    pub reward_reason: Option<Reason>,
}

/// Tags, follow-up and reward reason for an answer.
pub fn outcome(answer: Answer) -> Outcome {
    match answer {
        Answer::Reason(r) => Outcome {
            tags: vec![r.tag()],
            follow_up: (r == Reason::BadExperience).then_some(FollowUp::BadExperience),
            reward_reason: Some(r),
        },
        Answer::Nps(score) => {
            let class = classify_nps(u32::from(score)).unwrap_or(NpsClass::Passive);
            Outcome {
                tags: vec![class.tag().to_string()],
                follow_up: (class == NpsClass::Detractor).then_some(FollowUp::Detractor),
                reward_reason: None,
            }
        }
    }
}

/// A paused reason the shop has fixed, to tell the customer about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resolved {
    pub reason: Reason,
    /// What the marketer wrote when resolving it.
    pub note: String,
}

/// Marks `reason` resolved for a customer who gave it (tagged `reason:<reason>`) and has not had
/// it resolved yet, with the marketer's `note`; the customer becomes due at `at`, so the
/// scheduler looks at them again. Returns whether anything changed (resolving twice is a no-op).
pub fn resolve(profile: &mut Profile, reason: Reason, note: &str, at: DateTime<Utc>) -> bool {
    if !profile.tags.contains(&reason.tag()) || profile.resolved_reasons.contains(&reason) {
        return false;
    }
    profile.resolved_reasons.insert(reason);
    profile.resolution_notes.insert(reason, note.to_string());
    if !profile.erased {
        profile.due_at = Some(profile.due_at.map_or(at, |d| d.min(at)));
    }
    true
}

/// The resolved reason this customer should be told about next, if any: resolved, still the
/// reason they gave, and not told yet.
pub fn pending_resolution(profile: &Profile) -> Option<Resolved> {
    profile
        .resolved_reasons
        .iter()
        .find(|r| profile.tags.contains(&r.tag()) && !profile.told_resolved.contains(r))
        .map(|r| Resolved {
            reason: *r,
            note: profile.resolution_notes.get(r).cloned().unwrap_or_default(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_reasons_or_scores_from_0_to_10() {
        assert_eq!(
            Answer::parse("quality"),
            Some(Answer::Reason(Reason::Quality))
        );
        assert_eq!(Answer::parse("0"), Some(Answer::Nps(0)));
        assert_eq!(Answer::parse("10"), Some(Answer::Nps(10)));
        assert_eq!(Answer::parse("11"), None);
        assert_eq!(Answer::parse("-1"), None);
        assert_eq!(Answer::parse("cheap"), None);
    }

    #[test]
    fn nps_classes_follow_the_standard_cut_points() {
        assert_eq!(classify_nps(0), Ok(NpsClass::Detractor));
        assert_eq!(classify_nps(6), Ok(NpsClass::Detractor));
        assert_eq!(classify_nps(7), Ok(NpsClass::Passive));
        assert_eq!(classify_nps(8), Ok(NpsClass::Passive));
        assert_eq!(classify_nps(9), Ok(NpsClass::Promoter));
        assert_eq!(classify_nps(10), Ok(NpsClass::Promoter));
        assert_eq!(classify_nps(11), Err(BadScore(11)));
    }

    #[test]
    fn detractors_and_bad_experiences_need_a_person() {
        assert_eq!(outcome(Answer::Nps(3)).follow_up, Some(FollowUp::Detractor));
        assert_eq!(outcome(Answer::Nps(9)).follow_up, None);
        let bad = outcome(Answer::Reason(Reason::BadExperience));
        assert_eq!(bad.follow_up, Some(FollowUp::BadExperience));
        assert_eq!(bad.tags, vec!["reason:bad_experience".to_string()]);
        assert_eq!(outcome(Answer::Reason(Reason::Forgot)).follow_up, None);
    }

    #[test]
    fn resolving_a_reason_frees_who_gave_it_once_and_leaves_the_others() {
        use chrono::TimeZone;
        let at = Utc.with_ymd_and_hms(2026, 6, 1, 9, 0, 0).unwrap();
        let mut paused = Profile::new("c1".parse().unwrap());
        paused.tags.insert(Reason::Quality.tag());
        let mut other = Profile::new("c2".parse().unwrap());
        other.tags.insert(Reason::Forgot.tag());
        assert!(resolve(&mut paused, Reason::Quality, "new roaster", at));
        assert!(!resolve(&mut paused, Reason::Quality, "again", at));
        assert!(!resolve(&mut other, Reason::Quality, "new roaster", at));
        assert!(paused.resolved_reasons.contains(&Reason::Quality));
        assert_eq!(paused.due_at, Some(at));
        assert_eq!(other, {
            let mut o = Profile::new("c2".parse().unwrap());
            o.tags.insert(Reason::Forgot.tag());
            o
        });
        let pending = pending_resolution(&paused).unwrap();
        assert_eq!(pending.reason, Reason::Quality);
        assert_eq!(pending.note, "new roaster");
        paused.told_resolved.insert(Reason::Quality);
        assert_eq!(pending_resolution(&paused), None, "told once");
        assert_eq!(pending_resolution(&other), None);
    }

    #[test]
    fn reasons_parse_from_their_names_only() {
        for r in Reason::ALL {
            assert_eq!(r.as_str().parse::<Reason>(), Ok(r));
        }
        assert!("cheap".parse::<Reason>().is_err());
    }
}
