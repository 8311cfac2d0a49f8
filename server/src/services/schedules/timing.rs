//! When a schedule fires: a cron expression read in an IANA time zone (croner, chrono-tz),
//! or a fixed interval.

use std::str::FromStr;

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds};

use crate::domain::fields::Problems;

/// Upcoming fire times listed per schedule.
pub const UPCOMING: usize = 5;

/// A schedule's timing, parsed.
#[derive(Debug, Clone)]
pub enum When {
    Cron(Box<Cron>, Tz),
    Every(Duration),
}

impl When {
    /// Exactly one of `cron` and `every_secs`, in `timezone`; problems under their paths.
    pub fn parse(
        problems: &mut Problems,
        cron: Option<&str>,
        every_secs: Option<u32>,
        timezone: &str,
    ) -> Option<When> {
        let tz = match Tz::from_str(timezone) {
            Ok(tz) => Some(tz),
            Err(_) => {
                problems.add(
                    "/timezone",
                    format!("unknown time zone {timezone:?}: use an IANA name such as Europe/Paris or UTC"),
                );
                None
            }
        };
        match (cron, every_secs) {
            (Some(_), Some(_)) => {
                problems.add("/every_secs", "give either cron or every_secs, not both");
                None
            }
            (None, None) => {
                problems.add("/cron", "give cron or every_secs");
                None
            }
            (None, Some(0)) => {
                problems.add("/every_secs", "must be at least 1");
                None
            }
            (None, Some(secs)) if secs > contracts::MAX_EVERY_SECS => {
                problems.add("/every_secs", "must be at most 31536000 (a year)");
                None
            }
            (None, Some(secs)) => Some(When::Every(Duration::seconds(i64::from(secs)))),
            (Some(expression), None) => {
                let parsed = CronParser::builder()
                    .seconds(Seconds::Optional)
                    .build()
                    .parse(expression.trim());
                match parsed {
                    Err(err) => {
                        problems.add("/cron", format!("not a cron expression: {err}"));
                        None
                    }
                    Ok(cron) => {
                        let tz = tz?;
                        let when = When::Cron(Box::new(cron), tz);
                        if when.after(Utc::now()).is_none() {
                            problems.add("/cron", "never fires from now on");
                            return None;
                        }
                        Some(when)
                    }
                }
            }
        }
    }

    /// The first fire time strictly after `t` (`None`: never again).
    pub fn after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            When::Every(every) => t.checked_add_signed(*every),
            When::Cron(cron, tz) => cron
                .find_next_occurrence(&t.with_timezone(tz), false)
                .ok()
                .map(|at| at.with_timezone(&Utc)),
        }
    }

    /// The fire time after the one at `fired`, later than `now`: an interval keeps its
    /// phase (`fired + k × every`), a cron expression its own times.
    pub fn following(&self, fired: DateTime<Utc>, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            When::Every(every) => {
                let step = every.num_milliseconds().max(1);
                let behind = (now - fired).num_milliseconds().max(0);
                let steps = behind / step + 1;
                fired.checked_add_signed(Duration::milliseconds(steps.checked_mul(step)?))
            }
            When::Cron(..) => self.after(fired.max(now)),
        }
    }

    /// The next `UPCOMING` fire times from `first` on.
    pub fn upcoming(&self, first: DateTime<Utc>) -> Vec<DateTime<Utc>> {
        let mut times = vec![first];
        while times.len() < UPCOMING {
            match times.last().and_then(|t| self.after(*t)) {
                Some(next) => times.push(next),
                None => break,
            }
        }
        times
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn parse(cron: Option<&str>, every: Option<u32>, tz: &str) -> Result<When, Vec<String>> {
        let mut problems = Problems::new();
        let when = When::parse(&mut problems, cron, every, tz);
        match problems.finish(()) {
            Ok(()) => Ok(when.unwrap()),
            Err(invalid) => Err(invalid
                .0
                .iter()
                .map(|e| format!("{} {}", e.path, e.message))
                .collect()),
        }
    }

    #[test]
    fn cron_fires_in_its_time_zone() {
        let when = parse(Some("0 9 * * MON-FRI"), None, "Europe/Paris").unwrap();
        // Friday 2026-12-04 12:00 UTC: next is Monday 09:00 Paris = 08:00 UTC (winter).
        let t = Utc.with_ymd_and_hms(2026, 12, 4, 12, 0, 0).unwrap();
        assert_eq!(
            when.after(t),
            Some(Utc.with_ymd_and_hms(2026, 12, 7, 8, 0, 0).unwrap())
        );
        let upcoming = when.upcoming(when.after(t).unwrap());
        assert_eq!(upcoming.len(), UPCOMING);
        assert_eq!(
            upcoming[1],
            Utc.with_ymd_and_hms(2026, 12, 8, 8, 0, 0).unwrap()
        );
    }

    #[test]
    fn an_interval_keeps_its_phase_when_fires_were_missed() {
        let when = parse(None, Some(60), "UTC").unwrap();
        let fired = Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap();
        assert_eq!(
            when.following(fired, fired),
            Some(fired + Duration::seconds(60))
        );
        let later = fired + Duration::seconds(150);
        assert_eq!(
            when.following(fired, later),
            Some(fired + Duration::seconds(180))
        );
    }

    #[test]
    fn bad_timings_say_what_is_wrong() {
        let cases: [(Option<&str>, Option<u32>, &str, &str); 7] = [
            (None, None, "UTC", "/cron give cron or every_secs"),
            (Some("* * * * *"), Some(5), "UTC", "/every_secs give either"),
            (None, Some(0), "UTC", "/every_secs must be at least 1"),
            (None, Some(31_536_001), "UTC", "/every_secs must be at most"),
            (
                Some("61 * * * *"),
                None,
                "UTC",
                "/cron not a cron expression",
            ),
            (Some("not cron"), None, "UTC", "/cron not a cron expression"),
            (
                Some("* * * * *"),
                None,
                "Mars/Olympus",
                "/timezone unknown time zone",
            ),
        ];
        for (cron, every, tz, expected) in cases {
            let errors = parse(cron, every, tz).unwrap_err();
            assert!(
                errors.iter().any(|e| e.starts_with(expected)),
                "{cron:?} {every:?} {tz}: {errors:?}"
            );
        }
    }
}
