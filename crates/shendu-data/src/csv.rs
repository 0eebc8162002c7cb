//! Tables of numbers from CSV files: every column but the label is a feature.

use std::path::Path;

use crate::dataset::check_index;
use crate::{Dataset, Error, Result, Sample};

/// Which column holds the label (or regression target).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LabelColumn {
    First,
    Last,
    /// Zero-based column index.
    Index(usize),
}

/// A CSV table held in memory: features f32 `[n_features]` per row, and the label column either
/// as numbers (class indices when they are non-negative integers; any value for regression via
/// [`CsvDataset::targets_f64`]) or as strings (class names, sorted, become indices).
///
/// The separator is a comma, or a tab when the first line has tabs and no commas. Fields are
/// trimmed and may be wrapped in double quotes (quoted separators are not supported). Blank lines
/// are skipped; line numbers in errors count them.
#[derive(Clone, Debug)]
pub struct CsvDataset {
    name: String,
    n_features: usize,
    features: Vec<f32>,
    targets: Vec<f64>,
    /// Line number of each row, for errors raised after loading.
    lines: Vec<usize>,
    label_col: usize,
    class_names: Option<Vec<String>>,
    feature_names: Vec<String>,
    num_classes: usize,
}

fn split_fields(line: &str, sep: char) -> Vec<&str> {
    line.split(sep)
        .map(|f| {
            let f = f.trim();
            f.strip_prefix('"').and_then(|f| f.strip_suffix('"')).unwrap_or(f)
        })
        .collect()
}

fn is_class_index(v: f64) -> bool {
    v >= 0.0 && v.fract() == 0.0 && v <= i64::MAX as f64
}

impl CsvDataset {
    /// Reads a CSV file; `has_header: None` takes the first line as a header when one of its
    /// feature fields is not a number.
    pub fn load(path: impl AsRef<Path>, label_column: LabelColumn, has_header: Option<bool>) -> Result<CsvDataset> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        CsvDataset::parse(&text, &path.display().to_string(), label_column, has_header)
    }

    /// Parses CSV text; `name` stands for the file in errors.
    pub fn parse(text: &str, name: &str, label_column: LabelColumn, has_header: Option<bool>) -> Result<CsvDataset> {
        let mut rows = text.lines().enumerate().map(|(i, l)| (i + 1, l)).filter(|(_, l)| !l.trim().is_empty()).peekable();
        let Some(&(_, first)) = rows.peek() else {
            return Err(Error::format(name, "no rows: the file is empty"));
        };
        let sep = if !first.contains(',') && first.contains('\t') { '\t' } else { ',' };
        let width = split_fields(first, sep).len();
        if width < 2 {
            return Err(Error::format(name, format!("the first row has {width} column; a label and at least one feature are needed")));
        }
        let label_col = match label_column {
            LabelColumn::First => 0,
            LabelColumn::Last => width - 1,
            LabelColumn::Index(i) if i < width => i,
            LabelColumn::Index(i) => {
                return Err(Error::format(name, format!("label column {i} (zero-based) does not exist: the first row has {width} columns")))
            }
        };
        let first_fields = split_fields(first, sep);
        let header =
            has_header.unwrap_or_else(|| first_fields.iter().enumerate().any(|(c, f)| c != label_col && f.parse::<f64>().is_err()));
        let feature_names: Vec<String> = if header {
            rows.next();
            first_fields.iter().enumerate().filter(|&(c, _)| c != label_col).map(|(_, f)| f.to_string()).collect()
        } else {
            (0..width).filter(|&c| c != label_col).map(|c| format!("column {}", c + 1)).collect()
        };

        let (mut features, mut targets, mut lines, mut label_strings) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut categorical: Option<bool> = None;
        for (line, text) in rows {
            let fields = split_fields(text, sep);
            if fields.len() != width {
                return Err(Error::field(
                    name,
                    line,
                    fields.len().min(width) + 1,
                    format!("row has {} fields but the first row has {width}", fields.len()),
                ));
            }
            for (c, f) in fields.iter().enumerate() {
                if c == label_col {
                    continue;
                }
                let v: f32 = f.parse().map_err(|_| {
                    let what = if f.is_empty() { "empty field".to_string() } else { format!("cannot parse '{f}' as a number") };
                    let col_name = &feature_names[if c < label_col { c } else { c - 1 }];
                    Error::field(name, line, c + 1, format!("{what} (feature '{col_name}')"))
                })?;
                features.push(v);
            }
            let label = fields[label_col];
            let parsed = label.parse::<f64>();
            // The first row decides whether labels are numbers or names.
            let is_cat = *categorical.get_or_insert(parsed.is_err());
            if is_cat {
                label_strings.push(label.to_string());
                targets.push(0.0);
            } else {
                let v = parsed.map_err(|_| {
                    Error::field(
                        name,
                        line,
                        label_col + 1,
                        format!("label '{label}' is not a number, but the first row's label is; labels must all be numbers or all names"),
                    )
                })?;
                targets.push(v);
            }
            lines.push(line);
        }
        if lines.is_empty() {
            return Err(Error::format(name, "no data rows after the header"));
        }
        let (class_names, num_classes) = if categorical == Some(true) {
            let mut names = label_strings.clone();
            names.sort();
            names.dedup();
            for (t, s) in targets.iter_mut().zip(&label_strings) {
                *t = names.binary_search(s).unwrap_or(0) as f64;
            }
            let n = names.len();
            (Some(names), n)
        } else if targets.iter().all(|&t| is_class_index(t)) {
            (None, targets.iter().fold(0.0f64, |m, &t| m.max(t)) as usize + 1)
        } else {
            (None, 0)
        };
        Ok(CsvDataset {
            name: name.to_string(),
            n_features: width - 1,
            features,
            targets,
            lines,
            label_col,
            class_names,
            feature_names,
            num_classes,
        })
    }

    /// The label column as numbers: regression targets, or class indices.
    pub fn targets_f64(&self) -> &[f64] {
        &self.targets
    }
    /// All features, row after row.
    pub fn features(&self) -> &[f32] {
        &self.features
    }
    /// The number of feature columns.
    pub fn num_features(&self) -> usize {
        self.n_features
    }
    /// Feature names from the header, or "column N" (1-based) without one.
    pub fn feature_names(&self) -> &[String] {
        &self.feature_names
    }
}

impl Dataset for CsvDataset {
    fn len(&self) -> usize {
        self.targets.len()
    }
    fn get(&self, index: usize) -> Result<Sample> {
        check_index("CsvDataset::get", index, self.targets.len())?;
        let t = self.targets[index];
        if !is_class_index(t) {
            return Err(Error::field(
                &self.name,
                self.lines[index],
                self.label_col + 1,
                format!("label {t} is not a class index (a non-negative integer); read regression targets with targets_f64()"),
            ));
        }
        let f = self.n_features;
        Ok(Sample { input: self.features[index * f..(index + 1) * f].to_vec(), label: t as i64 })
    }
    fn input_shape(&self) -> Vec<usize> {
        vec![self.n_features]
    }
    fn num_classes(&self) -> usize {
        self.num_classes
    }
    fn class_names(&self) -> Vec<String> {
        match &self.class_names {
            Some(names) => names.clone(),
            None => (0..self.num_classes).map(|c| c.to_string()).collect(),
        }
    }
}
