//! Reads a sales-history CSV (`date,sku,units` by default, or any named columns) into a `Panel`.
//! Every bad row is an error naming its line; nothing here panics on input, however large or odd.
//! It must not guess: a negative or non-numeric quantity is refused, not skipped.

use crate::calendar::{BadDate, Day};
use crate::series::{Panel, PanelBuilder, PanelError};
use std::io::Read;

/// Which header names hold the date, the SKU and the units sold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Columns {
    pub date: String,
    pub sku: String,
    pub units: String,
}

impl Columns {
    /// Ordo's own layout: `date,sku,units`.
    pub fn ordo() -> Columns {
        Columns {
            date: "date".into(),
            sku: "sku".into(),
            units: "units".into(),
        }
    }

    /// Parses `DATE,SKU,UNITS` header names, e.g. `date,stock_code,units_sold`.
    pub fn parse(spec: &str) -> Result<Columns, HistoryError> {
        let names: Vec<&str> = spec.split(',').map(str::trim).collect();
        match names.as_slice() {
            [d, s, u] if !d.is_empty() && !s.is_empty() && !u.is_empty() => Ok(Columns {
                date: d.to_string(),
                sku: s.to_string(),
                units: u.to_string(),
            }),
            _ => Err(HistoryError::BadColumnSpec(spec.to_string())),
        }
    }
}

/// Why a history file cannot be read. Lines count from 1 (the header is line 1).
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("the file is empty: expected a header line with {expected}")]
    EmptyFile { expected: String },
    #[error("the header has no column '{column}' (found: {found})")]
    MissingColumn { column: String, found: String },
    #[error("'{0}' is not three column names like date,sku,units")]
    BadColumnSpec(String),
    #[error("line {line}: {source}")]
    BadDate { line: u64, source: BadDate },
    #[error("line {line}: units '{value}' is not a number")]
    BadUnits { line: u64, value: String },
    #[error("line {line}: units {value} is negative; returns are not demand")]
    NegativeUnits { line: u64, value: String },
    #[error("line {line}: the SKU is empty")]
    EmptySku { line: u64 },
    #[error("line {line}: {message}")]
    Malformed { line: u64, message: String },
    #[error("the file has a header but no data rows")]
    NoRows,
    #[error("line {line}: {source}")]
    Panel { line: u64, source: PanelError },
    #[error(transparent)]
    Shape(#[from] PanelError),
    #[error("reading the file: {0}")]
    Io(#[from] std::io::Error),
}

/// What was read, besides the panel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadSummary {
    pub rows: u64,
}

/// Reads the whole CSV into a panel over its first to its last date.
pub fn read_history<R: Read>(
    input: R,
    columns: &Columns,
) -> Result<(Panel, ReadSummary), HistoryError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(input);
    let mut record = csv::StringRecord::new();
    let expected = format!("{},{},{}", columns.date, columns.sku, columns.units);
    let first = reader
        .read_record(&mut record)
        .map_err(|e| csv_error(e, 1))?;
    if !first {
        return Err(HistoryError::EmptyFile { expected });
    }
    let header: Vec<String> = record
        .iter()
        .map(|h| h.trim().trim_start_matches('\u{feff}').to_string())
        .collect();
    let find = |name: &str| {
        header
            .iter()
            .position(|h| h.eq_ignore_ascii_case(name))
            .ok_or_else(|| HistoryError::MissingColumn {
                column: name.to_string(),
                found: header.join(","),
            })
    };
    let (di, si, ui) = (
        find(&columns.date)?,
        find(&columns.sku)?,
        find(&columns.units)?,
    );
    let mut builder = PanelBuilder::new();
    let mut rows = 0u64;
    let mut line = 1u64;
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => return Err(csv_error(e, line + 1)),
        }
        line = record.position().map_or(line + 1, |p| p.line());
        if record.iter().all(|f| f.trim().is_empty()) {
            continue;
        }
        let field = |i: usize| record.get(i).map(str::trim);
        let (Some(date), Some(sku), Some(units)) = (field(di), field(si), field(ui)) else {
            return Err(HistoryError::Malformed {
                line,
                message: format!(
                    "expected at least {} fields, found {}",
                    di.max(si).max(ui) + 1,
                    record.len()
                ),
            });
        };
        let day = Day::parse(date).map_err(|source| HistoryError::BadDate { line, source })?;
        if sku.is_empty() {
            return Err(HistoryError::EmptySku { line });
        }
        let u: f64 = units.parse().map_err(|_| HistoryError::BadUnits {
            line,
            value: units.to_string(),
        })?;
        if !u.is_finite() {
            return Err(HistoryError::BadUnits {
                line,
                value: units.to_string(),
            });
        }
        if u < 0.0 {
            return Err(HistoryError::NegativeUnits {
                line,
                value: units.to_string(),
            });
        }
        if let Some((f, l)) = builder.span() {
            let (f, l) = (f.min(day), l.max(day));
            let days = i64::from(l.since(f)) + 1;
            if days > crate::series::MAX_SPAN_DAYS {
                return Err(HistoryError::Panel {
                    line,
                    source: PanelError::SpanTooLong {
                        days,
                        first: f,
                        last: l,
                        max: crate::series::MAX_SPAN_DAYS,
                    },
                });
            }
        }
        builder.add(sku, day, u);
        rows += 1;
    }
    if rows == 0 {
        return Err(HistoryError::NoRows);
    }
    Ok((builder.build(None)?, ReadSummary { rows }))
}

fn csv_error(e: csv::Error, line: u64) -> HistoryError {
    let line = e.position().map_or(line, |p| p.line());
    match e.into_kind() {
        csv::ErrorKind::Io(io) => HistoryError::Io(io),
        csv::ErrorKind::Utf8 { .. } => HistoryError::Malformed {
            line,
            message: "the line is not valid UTF-8".into(),
        },
        other => HistoryError::Malformed {
            line,
            message: format!("{other:?}"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<Panel, HistoryError> {
        read_history(text.as_bytes(), &Columns::ordo()).map(|(p, _)| p)
    }

    #[test]
    fn reads_rows_and_fills_gaps() {
        let p = read("date,sku,units\n2011-01-01,A,3\n2011-01-03,A,1\n2011-01-02,B,2.5\n").unwrap();
        assert_eq!(p.series().len(), 2);
        assert_eq!(p.series()[0].units, vec![3.0, 0.0, 1.0]);
        assert_eq!(p.series()[1].units, vec![0.0, 2.5, 0.0]);
    }

    #[test]
    fn other_column_names_and_order() {
        let cols = Columns::parse("date,stock_code,units_sold").unwrap();
        let (p, s) = read_history(
            "stock_code,units_sold,date,n\nX,4,2011-01-01,1\n".as_bytes(),
            &cols,
        )
        .unwrap();
        assert_eq!(s.rows, 1);
        assert_eq!(p.series()[0].sku, "X");
    }

    #[test]
    fn bad_input_names_the_line() {
        let e = read("date,sku,units\n2011-01-01,A,3\n2011-13-01,A,1\n").unwrap_err();
        assert!(matches!(e, HistoryError::BadDate { line: 3, .. }), "{e}");
        assert!(e.to_string().starts_with("line 3:"));
        let e = read("date,sku,units\n2011-01-01,A,-3\n").unwrap_err();
        assert!(
            matches!(e, HistoryError::NegativeUnits { line: 2, .. }),
            "{e}"
        );
        let e = read("date,sku,units\n2011-01-01,A,lots\n").unwrap_err();
        assert!(matches!(e, HistoryError::BadUnits { line: 2, .. }), "{e}");
        let e = read("date,sku,units\n2011-01-01,A,NaN\n").unwrap_err();
        assert!(matches!(e, HistoryError::BadUnits { line: 2, .. }), "{e}");
        let e = read("date,sku\n2011-01-01,A\n").unwrap_err();
        assert!(
            matches!(&e, HistoryError::MissingColumn { column, .. } if column == "units"),
            "{e}"
        );
        assert!(matches!(
            read("").unwrap_err(),
            HistoryError::EmptyFile { .. }
        ));
        assert!(matches!(
            read("date,sku,units\n").unwrap_err(),
            HistoryError::NoRows
        ));
        let e = read("date,sku,units\n2011-01-01,A\n").unwrap_err();
        assert!(matches!(e, HistoryError::Malformed { line: 2, .. }), "{e}");
        let e = read("date,sku,units\n2011-01-01,A,1\n1950-01-01,A,1\n").unwrap_err();
        assert!(matches!(e, HistoryError::Panel { line: 3, .. }), "{e}");
    }

    #[test]
    fn invalid_utf8_is_an_error_not_a_panic() {
        let bytes = b"date,sku,units\n2011-01-01,\xff\xfe,1\n";
        assert!(read_history(&bytes[..], &Columns::ordo()).is_err());
    }
}
