//! Numeric CSV tables read as f64, for the data of gradient descent, k-means and Rademacher
//! complexity, where every column is a number and none is singled out as a class label.
//!
//! The separator is a comma (or a tab when the first line has tabs and no commas); fields are
//! trimmed; blank lines and lines starting with `#` are skipped but counted, so errors give the
//! line and column of the file as an editor shows them.

use std::path::Path;

use crate::{Error, Result};

/// A table of numbers: `rows` rows of `cols` columns, row-major, and the header if there was one.
#[derive(Clone, Debug, PartialEq)]
pub struct Table {
    pub data: Vec<f64>,
    pub rows: usize,
    pub cols: usize,
    pub header: Option<Vec<String>>,
}

impl Table {
    /// Row `i`.
    pub fn row(&self, i: usize) -> &[f64] {
        &self.data[i * self.cols..(i + 1) * self.cols]
    }
}

/// Reads a numeric CSV file; a first line whose fields are not all numbers is a header.
pub fn read_csv(path: impl AsRef<Path>) -> Result<Table> {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path).map_err(|e| Error::Io { path: path.display().to_string(), msg: e.to_string() })?;
    parse_csv(&text, &path.display().to_string())
}

/// Parses numeric CSV text; `name` stands for the file in errors.
pub fn parse_csv(text: &str, name: &str) -> Result<Table> {
    let field_err = |line: usize, column: usize, msg: String| Error::Field { path: name.to_string(), line, column, msg };
    let mut lines =
        text.lines().enumerate().map(|(i, l)| (i + 1, l)).filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'));
    let Some((first_no, first)) = lines.next() else {
        return Err(Error::invalid("read_csv", format!("{name}: no rows: the file is empty")));
    };
    let sep = if !first.contains(',') && first.contains('\t') { '\t' } else { ',' };
    let split = |l: &str| -> Vec<String> {
        l.split(sep)
            .map(|f| {
                let f = f.trim();
                f.strip_prefix('"').and_then(|f| f.strip_suffix('"')).unwrap_or(f).to_string()
            })
            .collect()
    };
    let first_fields = split(first);
    let cols = first_fields.len();
    let header_row = first_fields.iter().any(|f| f.parse::<f64>().is_err());
    let mut data = Vec::new();
    let mut rows = 0;
    let mut push_row = |line: usize, fields: &[String], data: &mut Vec<f64>| -> Result<()> {
        if fields.len() != cols {
            return Err(field_err(
                line,
                fields.len().min(cols) + 1,
                format!("row has {} fields but the first row has {cols}", fields.len()),
            ));
        }
        for (c, f) in fields.iter().enumerate() {
            let v: f64 = f.parse().map_err(|_| {
                let what = if f.is_empty() { "empty field".to_string() } else { format!("cannot parse '{f}' as a number") };
                field_err(line, c + 1, what)
            })?;
            if !v.is_finite() {
                return Err(field_err(line, c + 1, format!("'{f}' is not a finite number")));
            }
            data.push(v);
        }
        rows += 1;
        Ok(())
    };
    let header = if header_row {
        Some(first_fields)
    } else {
        push_row(first_no, &first_fields, &mut data)?;
        None
    };
    for (line, text) in lines {
        push_row(line, &split(text), &mut data)?;
    }
    if rows == 0 {
        return Err(Error::invalid("read_csv", format!("{name}: no data rows after the header")));
    }
    Ok(Table { data, rows, cols, header })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_blank_lines_and_errors() {
        let t = parse_csv("a,b\n\n1,2\n3, 4\n", "t.csv").unwrap();
        assert_eq!((t.rows, t.cols, t.data.clone()), (2, 2, vec![1.0, 2.0, 3.0, 4.0]));
        assert_eq!(t.header, Some(vec!["a".to_string(), "b".to_string()]));
        let e = parse_csv("1,2\n3\n", "t.csv").unwrap_err().to_string();
        assert!(e.starts_with("t.csv:2:2: row has 1 fields"), "{e}");
        let e = parse_csv("1,2\n\n3,x\n", "t.csv").unwrap_err().to_string();
        assert!(e.starts_with("t.csv:3:2: cannot parse 'x'"), "{e}");
        assert!(parse_csv("a,b\n", "t.csv").unwrap_err().to_string().contains("no data rows"));
        assert!(parse_csv("\n", "t.csv").unwrap_err().to_string().contains("empty"));
    }
}
