//! `ordo forecast csv` and `ordo forecast evaluate` run as the real binary: a forecast for every
//! SKU and day with nested intervals, and bad input refused with a message naming the line —
//! never a panic (exit code 101) and never a half-written output file.

use std::path::Path;
use std::process::{Command, Output};

fn ordo(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ordo"))
        .args(args)
        .output()
        .expect("run ordo")
}

/// `skus` series over `days` days from 2011-01-03 with a weekly pattern; Saturdays closed.
fn history(skus: usize, days: usize) -> String {
    let mut s = String::from("date,sku,units\n");
    let start = 14977; // 2011-01-03, a Monday, in days since 1970-01-01
    let profile = [5, 7, 6, 6, 9, 0, 3];
    for d in 0..days {
        let (y, m, dd) = civil(start + d as i64);
        for k in 0..skus {
            let units = profile[d % 7] * (k + 1) + (d * 7 + k * 3) % 4;
            if units > 0 && d % 7 != 5 {
                s.push_str(&format!("{y:04}-{m:02}-{dd:02},SKU-{k},{units}\n"));
            }
        }
    }
    s
}

fn civil(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.to_str().unwrap().to_string()
}

#[test]
fn forecast_csv_covers_every_sku_and_day_with_nested_intervals() {
    let dir = tempfile::tempdir().unwrap();
    let input = write(dir.path(), "history.csv", &history(6, 140));
    let output = dir.path().join("forecast.csv");
    let out = ordo(&[
        "forecast",
        "csv",
        "--input",
        &input,
        "--horizon",
        "14",
        "--output",
        output.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("wrote 6 series"),
        "progress goes to stderr"
    );
    let text = std::fs::read_to_string(&output).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("sku,date,p50,lo80,hi80,lo95,hi95"));
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 6 * 14);
    // 140 days from 2011-01-03 end on 2011-05-22; the forecast starts the next day.
    assert_eq!(rows[0][1], "2011-05-23");
    assert_eq!(rows[13][1], "2011-06-05");
    for r in &rows {
        let v: Vec<f64> = r[2..].iter().map(|x| x.parse().unwrap()).collect();
        let (p50, lo80, hi80, lo95, hi95) = (v[0], v[1], v[2], v[3], v[4]);
        assert!(
            0.0 <= lo95 && lo95 <= lo80 && lo80 <= p50 && p50 <= hi80 && hi80 <= hi95,
            "{r:?}"
        );
    }
    // Saturdays (closed all history) are forecast as zero.
    let saturday: Vec<&Vec<&str>> = rows.iter().filter(|r| r[1] == "2011-05-28").collect();
    assert_eq!(saturday.len(), 6);
    assert!(saturday.iter().all(|r| r[2] == "0.000" && r[6] == "0.000"));
}

#[test]
fn bad_input_is_refused_with_its_line_and_no_output() {
    let dir = tempfile::tempdir().unwrap();
    let good = history(2, 70);
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "bad-date.csv",
            format!("{good}2011-02-30,SKU-0,3\n"),
            "line 122: '2011-02-30' is not a date",
        ),
        (
            "negative.csv",
            format!("{good}2011-03-14,SKU-0,-3\n"),
            "line 122: units -3 is negative",
        ),
        (
            "missing-column.csv",
            "date,sku,qty\n2011-01-03,A,1\n".to_string(),
            "no column 'units'",
        ),
        ("empty.csv", String::new(), "the file is empty"),
        (
            "header-only.csv",
            "date,sku,units\n".to_string(),
            "no data rows",
        ),
        (
            "not-a-number.csv",
            "date,sku,units\n2011-01-03,A,many\n".to_string(),
            "line 2: units 'many' is not a number",
        ),
    ];
    for (name, text, expected) in cases {
        let input = write(dir.path(), name, &text);
        let output = dir.path().join(format!("{name}.out"));
        let out = ordo(&[
            "forecast",
            "csv",
            "--input",
            &input,
            "--output",
            output.to_str().unwrap(),
        ]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{name}: {stderr}");
        assert!(
            stderr.contains(expected),
            "{name}: expected '{expected}' in: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{name}: {stderr}");
        assert!(!output.exists(), "{name}: no output on failure");
    }
}

#[test]
fn evaluate_prints_methods_beside_the_baselines() {
    let dir = tempfile::tempdir().unwrap();
    let input = write(dir.path(), "history.csv", &history(8, 200));
    let json = dir.path().join("results.json");
    let out = ordo(&[
        "forecast",
        "evaluate",
        "--input",
        &input,
        "--origins",
        "2",
        "--top",
        "5",
        "--methods",
        "gbdt",
        "--json",
        json.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for method in ["| weekly-naive |", "| weekday-median |", "| gbdt |"] {
        assert!(stdout.contains(method), "{method} missing from:\n{stdout}");
    }
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap();
    assert_eq!(results.as_array().unwrap().len(), 3);
    assert_eq!(results[2]["per_origin"].as_array().unwrap().len(), 2);
}
