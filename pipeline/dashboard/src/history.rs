//! What the dashboard knows, as a pure state machine: the committed windows of `analytics.flink`
//! and the records of `analytics.late`, each applied with its Kafka position; bounded whatever
//! the input (the newest `history` of windows by event time, at most `max_windows` of them, the
//! latest few late records and errors); and the view the page draws from it. No I/O and no clock:
//! the consumer hands records over, the server asks for views at a time it reads.

use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// Where a record was read: its topic (`w`: `analytics.flink`, `l`: `analytics.late`), partition
/// and offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Position {
    pub topic: char,
    pub partition: i32,
    pub offset: i64,
}

/// One committed window result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Window {
    /// Epoch ms, inclusive.
    pub start: i64,
    /// Epoch ms, exclusive.
    pub end: i64,
    pub company_id: String,
    pub count: u64,
}

/// One record the analytics job did not count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Late {
    pub reason: String,
    pub company_id: String,
    pub chunk_id: String,
    /// Its event time, epoch ms.
    pub ts: i64,
}

/// What a record was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    Window(Window),
    Late(Late),
    /// A value that is none of the above: counted and shown, never applied.
    Malformed {
        reason: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// Windows whose start is older than the newest start minus this are dropped (ms).
    pub history_ms: i64,
    /// At most this many windows are kept (the oldest go first).
    pub max_windows: usize,
    /// Companies drawn on their own; the rest are summed as "others".
    pub top: usize,
    /// Rows of the latest-windows table.
    pub table_rows: usize,
    /// Latest late records and errors kept to show.
    pub latest: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            history_ms: 6 * 3_600_000,
            max_windows: 400_000,
            top: 8,
            table_rows: 50,
            latest: 10,
        }
    }
}

/// A malformed record, as shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Malformed {
    pub position: Position,
    pub reason: String,
}

#[derive(Debug, Clone, Default)]
pub struct History {
    settings: Settings,
    /// (start, company) → (end, count).
    windows: BTreeMap<(i64, String), (i64, u64)>,
    /// Windows by the order they arrived in (for the latest-windows table): (start, company).
    arrived: VecDeque<(i64, String)>,
    late_by_reason: BTreeMap<String, u64>,
    latest_late: VecDeque<Late>,
    malformed: u64,
    latest_malformed: VecDeque<Malformed>,
    /// Per (topic, partition): the next offset to read.
    next: BTreeMap<(char, i32), i64>,
    /// Windows received again for a key already shown (replaced, not added).
    repeated: u64,
    /// Windows dropped from the history (too old, or over `max_windows`).
    evicted: u64,
}

impl History {
    pub fn new(settings: Settings) -> Self {
        Self {
            settings,
            ..Self::default()
        }
    }

    pub fn settings(&self) -> Settings {
        self.settings
    }

    /// Applies the record read at `at`; a position already applied (a consumer that read it
    /// again) changes nothing. Returns whether anything changed.
    pub fn apply(&mut self, at: Position, record: Record) -> bool {
        let key = (at.topic, at.partition);
        if self.next.get(&key).is_some_and(|n| at.offset < *n) {
            return false;
        }
        self.next.insert(key, at.offset + 1);
        match record {
            Record::Window(w) => {
                let k = (w.start, w.company_id);
                if self.windows.insert(k.clone(), (w.end, w.count)).is_some() {
                    self.repeated += 1;
                    self.arrived.retain(|a| *a != k);
                }
                self.arrived.push_back(k);
                self.evict();
            }
            Record::Late(l) => {
                *self.late_by_reason.entry(l.reason.clone()).or_default() += 1;
                self.latest_late.push_back(l);
                if self.latest_late.len() > self.settings.latest {
                    self.latest_late.pop_front();
                }
            }
            Record::Malformed { reason } => {
                self.malformed += 1;
                self.latest_malformed.push_back(Malformed {
                    position: at,
                    reason,
                });
                if self.latest_malformed.len() > self.settings.latest {
                    self.latest_malformed.pop_front();
                }
            }
        }
        true
    }

    fn evict(&mut self) {
        let Some(newest) = self.windows.keys().next_back().map(|(s, _)| *s) else {
            return;
        };
        let oldest_kept = newest.saturating_sub(self.settings.history_ms);
        while let Some(((start, _), _)) = self.windows.first_key_value() {
            if *start >= oldest_kept && self.windows.len() <= self.settings.max_windows {
                break;
            }
            self.windows.pop_first();
            self.evicted += 1;
        }
        // The table's queue keeps only what is still shown, and never more than the map.
        while self.arrived.len() > self.windows.len().max(self.settings.table_rows) {
            self.arrived.pop_front();
        }
    }

    /// Where the consumer is: per (topic, partition), the next offset (the id of an event the page
    /// gets; a page that has seen it has seen everything before it).
    pub fn cursor(&self) -> String {
        self.next
            .iter()
            .map(|((t, p), o)| format!("{t}{p}@{o}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The windows starting at or after `since` (epoch ms), oldest first, companies in byte order.
    pub fn windows_since(&self, since: i64) -> Vec<Window> {
        self.windows
            .range((since, String::new())..)
            .map(|((start, company), (end, count))| Window {
                start: *start,
                end: *end,
                company_id: company.clone(),
                count: *count,
            })
            .collect()
    }

    pub fn len(&self) -> usize {
        self.windows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.windows.is_empty()
    }

    /// What the page draws, at `now` (epoch ms).
    pub fn view(&self, now: i64) -> View {
        let s = &self.settings;
        // Companies by volume over the history, the top ones drawn on their own.
        let mut volume: BTreeMap<&str, u64> = BTreeMap::new();
        let mut minutes: BTreeSet<i64> = BTreeSet::new();
        for ((start, company), (_, count)) in &self.windows {
            *volume.entry(company.as_str()).or_default() += count;
            minutes.insert(*start);
        }
        let mut ranked: Vec<(&str, u64)> = volume.into_iter().collect();
        ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        let top: Vec<&str> = ranked.iter().take(s.top).map(|(c, _)| *c).collect();
        let minutes: Vec<i64> = minutes.into_iter().collect();
        let index: BTreeMap<i64, usize> =
            minutes.iter().enumerate().map(|(i, m)| (*m, i)).collect();
        let mut series: Vec<Vec<u64>> = vec![vec![0; minutes.len()]; top.len()];
        let mut others = vec![0u64; minutes.len()];
        let mut total = vec![0u64; minutes.len()];
        for ((start, company), (_, count)) in &self.windows {
            let i = index[start];
            total[i] += count;
            match top.iter().position(|c| *c == company) {
                Some(k) => series[k][i] += count,
                None => others[i] += count,
            }
        }
        let latest: Vec<Window> = self
            .arrived
            .iter()
            .rev()
            .filter_map(|k| {
                self.windows.get(k).map(|(end, count)| Window {
                    start: k.0,
                    end: *end,
                    company_id: k.1.clone(),
                    count: *count,
                })
            })
            .take(s.table_rows)
            .collect();
        let newest_end = self.windows.values().map(|(end, _)| *end).max();
        View {
            cursor: self.cursor(),
            now,
            minutes,
            companies: top.iter().map(|c| (*c).to_owned()).collect(),
            series,
            others,
            total,
            companies_in_history: ranked.len(),
            latest,
            late_by_reason: self.late_by_reason.clone(),
            latest_late: self.latest_late.iter().rev().cloned().collect(),
            malformed: self.malformed,
            latest_malformed: self.latest_malformed.iter().rev().cloned().collect(),
            newest_end,
            behind_ms: newest_end.map(|e| now - e),
            windows: self.windows.len(),
            evicted: self.evicted,
            repeated: self.repeated,
        }
    }
}

/// The page's data: a chart series per top company, "others" and the total per minute; the
/// latest windows; late records by reason and the latest few; malformed records; how far the
/// newest window is behind `now`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct View {
    /// The history's cursor ([`History::cursor`]): the event id.
    pub cursor: String,
    /// When it was taken (epoch ms).
    pub now: i64,
    /// Window starts (epoch ms), oldest first: the chart's x values.
    pub minutes: Vec<i64>,
    /// The top companies by volume, most first.
    pub companies: Vec<String>,
    /// Per top company, chunks per minute.
    pub series: Vec<Vec<u64>>,
    /// The other companies' chunks per minute, summed.
    pub others: Vec<u64>,
    /// All companies' chunks per minute.
    pub total: Vec<u64>,
    pub companies_in_history: usize,
    /// The latest windows to arrive, newest first.
    pub latest: Vec<Window>,
    pub late_by_reason: BTreeMap<String, u64>,
    /// The latest late records, newest first.
    pub latest_late: Vec<Late>,
    pub malformed: u64,
    pub latest_malformed: Vec<Malformed>,
    /// The end of the newest window (epoch ms).
    pub newest_end: Option<i64>,
    /// `now` − `newest_end`.
    pub behind_ms: Option<i64>,
    /// Windows in the history.
    pub windows: usize,
    pub evicted: u64,
    pub repeated: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;

    fn w(offset: i64, start_min: i64, company: &str, count: u64) -> (Position, Record) {
        (
            Position {
                topic: 'w',
                partition: 0,
                offset,
            },
            Record::Window(Window {
                start: start_min * MIN,
                end: (start_min + 1) * MIN,
                company_id: company.into(),
                count,
            }),
        )
    }

    #[test]
    fn windows_are_kept_once_by_key_and_drawn_per_top_company() {
        let mut h = History::new(Settings {
            top: 1,
            ..Settings::default()
        });
        for (at, r) in [
            w(0, 1, "a", 5),
            w(1, 1, "b", 2),
            w(2, 2, "a", 3),
            w(3, 2, "c", 1),
        ] {
            assert!(h.apply(at, r));
        }
        // Read again (a consumer restart): nothing changes.
        let (at, r) = w(1, 1, "b", 2);
        assert!(!h.apply(at, r));
        let v = h.view(3 * MIN + 500);
        assert_eq!(v.minutes, vec![MIN, 2 * MIN]);
        assert_eq!(v.companies, vec!["a".to_owned()]);
        assert_eq!(v.series, vec![vec![5, 3]]);
        assert_eq!(v.others, vec![2, 1]);
        assert_eq!(v.total, vec![7, 4]);
        assert_eq!(v.latest[0].company_id, "c", "newest first");
        assert_eq!(v.behind_ms, Some(500));
        assert_eq!(v.cursor, "w0@4");
        assert_eq!(h.windows_since(2 * MIN).len(), 2);
        // The same window again at a later offset replaces, never adds.
        let (at, r) = w(4, 1, "a", 5);
        assert!(h.apply(at, r));
        assert_eq!(h.view(0).total, vec![7, 4]);
        assert_eq!(h.view(0).repeated, 1);
    }

    #[test]
    fn memory_is_bounded_by_history_and_count() {
        let mut h = History::new(Settings {
            history_ms: 10 * MIN,
            max_windows: 25,
            ..Settings::default()
        });
        for i in 0..100 {
            let (at, r) = w(i, i / 3, &format!("c{}", i % 3), 1);
            h.apply(at, r);
        }
        let v = h.view(0);
        assert!(v.windows <= 25, "{}", v.windows);
        assert!(
            v.minutes.first().copied() >= Some((33 - 10) * MIN),
            "{:?}",
            v.minutes
        );
        assert_eq!(v.evicted as usize + v.windows, 100);
        for i in 0..1000 {
            h.apply(
                Position {
                    topic: 'l',
                    partition: 0,
                    offset: i,
                },
                Record::Late(Late {
                    reason: "late".into(),
                    company_id: "x".into(),
                    chunk_id: format!("k{i}"),
                    ts: 0,
                }),
            );
        }
        let v = h.view(0);
        assert_eq!(v.late_by_reason["late"], 1000);
        assert_eq!(v.latest_late.len(), Settings::default().latest);
        assert_eq!(v.latest_late[0].chunk_id, "k999");
    }

    #[test]
    fn malformed_records_are_counted_and_shown() {
        let mut h = History::new(Settings::default());
        let at = Position {
            topic: 'w',
            partition: 0,
            offset: 7,
        };
        h.apply(
            at,
            Record::Malformed {
                reason: "not JSON".into(),
            },
        );
        let v = h.view(0);
        assert_eq!(v.malformed, 1);
        assert_eq!(v.latest_malformed[0].position, at);
        assert_eq!(v.cursor, "w0@8");
    }
}
