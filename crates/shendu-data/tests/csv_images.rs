//! CSV parsing and its error messages; image folders of tiny PNGs written here.

mod common;

use common::TempDir;
use shendu_data::{CsvDataset, Dataset, ImageFolder, LabelColumn};

#[test]
fn csv_header_autodetect_and_label_columns() {
    let text = "a, b ,label\n1,2,0\n\n3.5,-4,2\n";
    let d = CsvDataset::parse(text, "t.csv", LabelColumn::Last, None).unwrap();
    assert_eq!((d.len(), d.num_features(), d.num_classes()), (2, 2, 3));
    assert_eq!(d.feature_names(), &["a", "b"]);
    assert_eq!(d.get(1).unwrap().input, vec![3.5, -4.0]);
    assert_eq!(d.get(1).unwrap().label, 2);
    assert_eq!(d.input_shape(), vec![2]);

    let d = CsvDataset::parse("1,0.5,0.25\n0,1,2\n", "t.csv", LabelColumn::First, None).unwrap();
    assert_eq!(d.len(), 2, "numeric first row is data");
    assert_eq!(d.get(0).unwrap(), shendu_data::Sample { input: vec![0.5, 0.25], label: 1 });
    let d = CsvDataset::parse("1\t7\t2\n", "t.tsv", LabelColumn::Index(1), Some(false)).unwrap();
    assert_eq!((d.get(0).unwrap().input, d.get(0).unwrap().label), (vec![1.0, 2.0], 7));
    let d = CsvDataset::parse("x,y\n1,2\n", "t.csv", LabelColumn::Last, Some(true)).unwrap();
    assert_eq!(d.len(), 1);
}

#[test]
fn csv_named_classes_and_regression_targets() {
    let text = "sepal,petal,species\n5.1,1.4,setosa\n7.0,4.7,\"versicolor\"\n5.0,1.5,setosa\n";
    let d = CsvDataset::parse(text, "iris.csv", LabelColumn::Last, None).unwrap();
    assert_eq!(d.class_names(), vec!["setosa", "versicolor"]);
    assert_eq!((0..3).map(|i| d.get(i).unwrap().label).collect::<Vec<_>>(), vec![0, 1, 0]);

    let d = CsvDataset::parse("x,y\n1,0.5\n2,3\n", "r.csv", LabelColumn::Last, None).unwrap();
    assert_eq!(d.targets_f64(), &[0.5, 3.0]);
    assert_eq!(d.num_classes(), 0);
    let e = d.get(0).unwrap_err().to_string();
    assert_eq!(e, "r.csv:2:2: label 0.5 is not a class index (a non-negative integer); read regression targets with targets_f64()");
    assert_eq!(d.get(1).unwrap().label, 3);
}

#[test]
fn csv_errors_name_file_line_column_and_field() {
    let e = CsvDataset::parse("a,b,c\n1,2,0\n1,x2,1\n", "d.csv", LabelColumn::Last, None).unwrap_err().to_string();
    assert_eq!(e, "d.csv:3:2: cannot parse 'x2' as a number (feature 'b')");
    let e = CsvDataset::parse("1,2,0\n\n1,,1\n", "d.csv", LabelColumn::Last, None).unwrap_err().to_string();
    assert_eq!(e, "d.csv:3:2: empty field (feature 'column 2')");
    let e = CsvDataset::parse("1,2,0\n1,2\n", "d.csv", LabelColumn::Last, None).unwrap_err().to_string();
    assert_eq!(e, "d.csv:2:3: row has 2 fields but the first row has 3");
    let e = CsvDataset::parse("1,2,0\n1,2,cat\n", "d.csv", LabelColumn::Last, None).unwrap_err().to_string();
    assert!(e.starts_with("d.csv:2:3: label 'cat' is not a number"), "{e}");
    let e = CsvDataset::parse("a,b\n", "d.csv", LabelColumn::Index(5), None).unwrap_err().to_string();
    assert_eq!(e, "d.csv: label column 5 (zero-based) does not exist: the first row has 2 columns");
    let e = CsvDataset::parse("x,y\n", "d.csv", LabelColumn::Last, None).unwrap_err().to_string();
    assert_eq!(e, "d.csv: no data rows after the header");
    let e = CsvDataset::parse("a,b\n1,2\n", "d.csv", LabelColumn::Last, Some(false)).unwrap_err().to_string();
    assert_eq!(e, "d.csv:1:1: cannot parse 'a' as a number (feature 'column 1')");

    let dir = TempDir::new("csv");
    let path = dir.path().join("data.csv");
    std::fs::write(&path, "f,label\n0.25,1\n").unwrap();
    let d = CsvDataset::load(&path, LabelColumn::Last, None).unwrap();
    assert_eq!(d.get(0).unwrap().input, vec![0.25]);
    let e = CsvDataset::load(dir.path().join("nope.csv"), LabelColumn::Last, None).unwrap_err().to_string();
    assert!(e.contains("nope.csv"), "{e}");
}

fn write_png(path: &std::path::Path, w: u32, h: u32, f: impl Fn(u32, u32) -> [u8; 3]) {
    let img = image::RgbImage::from_fn(w, h, |x, y| image::Rgb(f(x, y)));
    img.save(path).unwrap();
}

#[test]
fn image_folder_classes_pixels_and_size_errors() {
    let dir = TempDir::new("images");
    let root = dir.path();
    for class in ["cat", "dog"] {
        std::fs::create_dir_all(root.join(class)).unwrap();
    }
    write_png(&root.join("dog/b.png"), 3, 2, |x, y| [(x * 100) as u8, (y * 255) as u8, 7]);
    write_png(&root.join("cat/a.png"), 3, 2, |_, _| [255, 0, 51]);
    write_png(&root.join("dog/a.PNG"), 3, 2, |_, _| [0, 0, 0]);
    std::fs::write(root.join("dog/notes.txt"), "ignored").unwrap();

    let d = ImageFolder::load(root, None, false).unwrap();
    assert_eq!(d.class_names(), vec!["cat", "dog"]);
    assert_eq!(d.len(), 3);
    assert_eq!(d.labels(), &[0, 1, 1]);
    assert_eq!(d.input_shape(), vec![3, 2, 3]);
    assert!(d.paths()[2].ends_with("dog/b.png"));
    let s = d.get(2).unwrap();
    assert_eq!(s.label, 1);
    // CHW: the red plane is x*100, the green plane y*255, blue constant 7.
    let r: Vec<f32> = [0.0, 100.0, 200.0, 0.0, 100.0, 200.0].iter().map(|v| v / 255.0).collect();
    assert_eq!(&s.input[..6], &r[..]);
    assert_eq!(&s.input[6..12], &[0.0, 0.0, 0.0, 1.0, 1.0, 1.0]);
    assert_eq!(s.input[12], 7.0 / 255.0);

    let g = ImageFolder::load(root, Some((3, 2)), true).unwrap();
    assert_eq!(g.input_shape(), vec![1, 2, 3]);
    assert_eq!(g.get(1).unwrap().input, vec![0.0; 6]);

    let e = ImageFolder::load(root, Some((4, 4)), false).unwrap_err().to_string();
    assert!(e.contains("cat/a.png: image is 3x2 (width x height) but the requested size is 4x4"), "{e}");
    write_png(&root.join("dog/c.png"), 5, 4, |_, _| [1, 2, 3]);
    let e = ImageFolder::load(root, None, false).unwrap_err().to_string();
    assert!(e.contains("dog/c.png: image is 5x4 (width x height) but the first image"), "{e}");
    assert!(e.contains("cat/a.png is 3x2"), "{e}");

    let r = ImageFolder::load_resized(root, (4, 4), false).unwrap();
    assert_eq!((r.len(), r.input_shape()), (4, vec![3, 4, 4]));
    let c = r.get(0).unwrap(); // A constant image stays constant under resizing.
    assert!(c.input[..16].iter().all(|&v| v == 1.0) && c.input[16..32].iter().all(|&v| v == 0.0));

    std::fs::write(root.join("cat/broken.png"), b"not a png").unwrap();
    let e = ImageFolder::load_resized(root, (4, 4), false).unwrap_err().to_string();
    assert!(e.contains("broken.png: cannot decode image"), "{e}");
    let empty = TempDir::new("images-empty");
    assert!(ImageFolder::load(empty.path(), None, false).unwrap_err().to_string().contains("no class subfolders"));
}
