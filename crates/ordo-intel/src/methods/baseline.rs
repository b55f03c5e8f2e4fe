//! The two baselines every model must beat: the weekly seasonal naive (same weekday last week)
//! and the robust weekday median (median of the same weekday over the last eight weeks).
//! Both read only days up to the origin.

/// The value on the same weekday in the latest observed week, for each of `horizon` days.
pub fn weekly_naive(history: &[f64], horizon: usize) -> Vec<f64> {
    (1..=horizon)
        .map(|h| same_weekday(history, h, 1).first().copied().unwrap_or(0.0))
        .collect()
}

/// The median of the same weekday over the last `weeks` observed weeks.
pub fn weekday_median(history: &[f64], horizon: usize, weeks: usize) -> Vec<f64> {
    (1..=horizon)
        .map(|h| {
            let mut v = same_weekday(history, h, weeks);
            median(&mut v)
        })
        .collect()
}

/// The latest `weeks` observations sharing the weekday of the day `h` days after the history
/// ends, newest first (fewer when the history is short).
pub fn same_weekday(history: &[f64], h: usize, weeks: usize) -> Vec<f64> {
    let n = history.len() as i64;
    let target = n - 1 + h as i64;
    // The newest day at or before the origin with the same weekday as the target.
    let back = (h as i64 + 6) / 7 * 7;
    let newest = target - back;
    (0..weeks as i64)
        .map(|k| newest - 7 * k)
        .take_while(|&i| i >= 0)
        .map(|i| history[i as usize])
        .collect()
}

/// The median (mean of the middle two for an even count); 0 when empty. Reorders `v`.
pub fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_weekday_looks_back_whole_weeks() {
        let y: Vec<f64> = (0..21).map(f64::from).collect(); // day i has value i
        // h = 1 targets day 21, the same weekday as days 14, 7, 0.
        assert_eq!(same_weekday(&y, 1, 8), vec![14.0, 7.0, 0.0]);
        // h = 7 targets day 27: days 20, 13, 6.
        assert_eq!(same_weekday(&y, 7, 2), vec![20.0, 13.0]);
        // h = 8 targets day 28: days 14 … (two weeks back from 28 is 14).
        assert_eq!(same_weekday(&y, 8, 1), vec![14.0]);
    }

    #[test]
    fn baselines_repeat_the_week() {
        let week = [1.0, 2.0, 3.0, 4.0, 5.0, 0.0, 6.0];
        let y: Vec<f64> = week.iter().cycle().take(56).copied().collect();
        assert_eq!(
            weekly_naive(&y, 14),
            week.iter().chain(&week).copied().collect::<Vec<_>>()
        );
        assert_eq!(weekday_median(&y, 7, 8), week.to_vec());
    }

    #[test]
    fn median_ignores_one_spike() {
        assert_eq!(median(&mut [1.0, 100.0, 2.0]), 2.0);
        assert_eq!(median(&mut [1.0, 3.0]), 2.0);
        assert_eq!(median(&mut []), 0.0);
    }
}
