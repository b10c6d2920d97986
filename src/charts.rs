//! PNG charts for experiment reports (feature `charts`): a bar chart of methods compared over
//! seeds (mean with a ± standard deviation bar) and a line chart of values per epoch.
//!
//! Text needs a TrueType font. The first of a few usual system fonts that exists is used
//! (DejaVu Sans, Liberation Sans, Arial, Helvetica); without one the charts are drawn with
//! their bars and lines but no text, and a note on standard error says so once.
//!
//! # Example
//! ```
//! use burn_distill::charts::{Bar, Series, bar_chart, line_chart};
//!
//! let dir = std::env::temp_dir().join(format!("charts-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir).unwrap();
//! let bars = [Bar::new("KD", 71.2, 0.4), Bar::new("screened + features", 72.5, 0.3)];
//! bar_chart(dir.join("methods.png"), "accuracy per method", &bars).unwrap();
//! let valid = Series::new("validation", vec![(1.0, 40.0), (2.0, 55.0), (3.0, 61.5)]);
//! line_chart(dir.join("history.png"), "accuracy per epoch", "epoch", &[valid]).unwrap();
//! assert!(std::fs::read(dir.join("history.png")).unwrap().starts_with(b"\x89PNG"));
//! # std::fs::remove_dir_all(dir).unwrap();
//! ```

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};

use crate::{Error, Result};

const FONT_PATHS: [&str; 6] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/Library/Fonts/Arial.ttf",
    "/System/Library/Fonts/Helvetica.ttc",
    "C:\\Windows\\Fonts\\arial.ttf",
];

/// One bar: a method's mean (in percent) and its standard deviation over seeds.
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    /// The method's name, written under its bar (in two lines when long).
    pub label: String,
    /// The bar's height, in percent.
    pub mean: f64,
    /// Half the error bar's length, in percent.
    pub std: f64,
}

impl Bar {
    /// A bar of height `mean` with a `± std` error bar.
    pub fn new(label: impl Into<String>, mean: f64, std: f64) -> Self {
        let label = label.into();
        Self { label, mean, std }
    }
}

/// One line: `(x, y)` points, `y` in percent.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The line's name in the legend.
    pub label: String,
    /// The points, in drawing order.
    pub points: Vec<(f64, f64)>,
}

impl Series {
    /// A line named `label` through `points`.
    pub fn new(label: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        let label = label.into();
        Self { label, points }
    }
}

/// Registers a system font once (the registry is plotters' own); false when none was found.
fn have_font() -> bool {
    static FOUND: OnceLock<bool> = OnceLock::new();
    *FOUND.get_or_init(|| {
        let found = FONT_PATHS
            .iter()
            .filter_map(|path| std::fs::read(path).ok())
            .any(|bytes| {
                let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                register_font("sans-serif", FontStyle::Normal, bytes).is_ok()
            });
        if !found {
            eprintln!("note: no TrueType font found; charts are drawn without text");
        }
        found
    })
}

/// The error for a chart of `path` that failed for `reason`.
fn failed(path: &Path, reason: &dyn std::fmt::Display) -> Error {
    let (path, reason) = (path.to_path_buf(), reason.to_string());
    Error::Chart { path, reason }
}

/// A white canvas of `size` pixels drawn to `path`.
fn canvas(path: &Path, size: (u32, u32)) -> Result<DrawingArea<BitMapBackend<'_>, Shift>> {
    let root = BitMapBackend::new(path, size).into_drawing_area();
    root.fill(&WHITE).map_err(|e| failed(path, &e))?;
    Ok(root)
}

fn check(path: &Path, values: impl IntoIterator<Item = f64>, what: &str) -> Result<()> {
    match values.into_iter().any(|v| !v.is_finite()) {
        true => Err(Error::Chart {
            path: path.to_path_buf(),
            reason: format!("a {what} is not a finite number"),
        }),
        false => Ok(()),
    }
}

/// Draws one line per series, `y` from 0 to 100 % (labelled "accuracy (%)"), `x` from 0.5 to
/// the largest `x` + 0.5 (labelled `x_label`, e.g. "epoch"), to the PNG file `path`.
///
/// # Errors
/// [`Error::Chart`] when a point is NaN or infinite, or the file cannot be written.
pub fn line_chart(
    path: impl AsRef<Path>,
    title: &str,
    x_label: &str,
    series: &[Series],
) -> Result<()> {
    let path = path.as_ref();
    let points = || series.iter().flat_map(|s| s.points.iter());
    check(path, points().flat_map(|(x, y)| [*x, *y]), "point")?;
    let text = have_font();
    let err = |e: &dyn std::fmt::Display| failed(path, e);
    let root = canvas(path, (900, 540))?;
    let max_x = points().map(|(x, _)| *x).fold(1.0f64, f64::max);
    let mut builder = ChartBuilder::on(&root);
    builder.margin(20);
    if text {
        builder
            .caption(title, ("sans-serif", 24))
            .x_label_area_size(45)
            .y_label_area_size(60);
    }
    let mut chart = builder
        .build_cartesian_2d(0.5f64..max_x + 0.5, 0f64..100f64)
        .map_err(|e| err(&e))?;
    if text {
        chart
            .configure_mesh()
            .x_desc(x_label)
            .x_labels((max_x as usize + 1).min(20))
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_desc("accuracy (%)")
            .draw()
            .map_err(|e| err(&e))?;
    }
    for (i, line) in series.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        let style = color.stroke_width(3);
        let drawn = chart
            .draw_series(LineSeries::new(line.points.clone(), style))
            .map_err(|e| err(&e))?;
        if text {
            let legend = move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], style);
            drawn.label(line.label.as_str()).legend(legend);
        }
        let dots = line
            .points
            .iter()
            .map(|p| Circle::new(*p, 4, color.filled()));
        chart.draw_series(dots).map_err(|e| err(&e))?;
    }
    if text {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .label_font(("sans-serif", 16))
            .draw()
            .map_err(|e| err(&e))?;
    }
    root.present().map_err(|e| err(&e))
}

/// Draws one bar per method with its `± std` error bar, its name at its foot and its value
/// above it, to the PNG file `path`. The `y` axis starts a little below the lowest bar (at
/// a multiple of 5, as its label says) so that close methods stay apart.
///
/// # Errors
/// [`Error::Chart`] when `bars` is empty, a mean or std is NaN or infinite, or the file
/// cannot be written.
pub fn bar_chart(path: impl AsRef<Path>, title: &str, bars: &[Bar]) -> Result<()> {
    let path: PathBuf = path.as_ref().to_path_buf();
    check(
        &path,
        bars.iter().flat_map(|b| [b.mean, b.std]),
        "bar value",
    )?;
    if bars.is_empty() {
        let reason = "no bars to draw".to_string();
        return Err(Error::Chart { path, reason });
    }
    let text = have_font();
    let err = |e: &dyn std::fmt::Display| failed(&path, e);
    let root = canvas(&path, ((170 * bars.len() as u32).max(600), 560))?;
    let low = bars
        .iter()
        .map(|b| b.mean - b.std)
        .fold(f64::INFINITY, f64::min);
    let high = bars.iter().map(|b| b.mean + b.std).fold(0.0f64, f64::max);
    let bottom = ((low - 5.0) / 5.0).floor().max(0.0) * 5.0;
    let top = (high + 4.0).min(100.0).max(bottom + 1.0);
    let mut builder = ChartBuilder::on(&root);
    builder.margin(20);
    if text {
        builder
            .caption(title, ("sans-serif", 22))
            .y_label_area_size(60);
    }
    let mut chart = builder
        .build_cartesian_2d(0f64..bars.len() as f64, bottom..top)
        .map_err(|e| err(&e))?;
    if text {
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(0)
            .y_desc(format!("accuracy (%), axis from {bottom:.0}"))
            .draw()
            .map_err(|e| err(&e))?;
    }
    let line = (top - bottom) * 0.035;
    for (i, bar) in bars.iter().enumerate() {
        let (x, color, mean, std) = (i as f64, Palette99::pick(i).to_rgba(), bar.mean, bar.std);
        let rectangle = Rectangle::new([(x + 0.15, bottom), (x + 0.85, mean)], color.filled());
        chart.draw_series([rectangle]).map_err(|e| err(&e))?;
        let error_bar = vec![(x + 0.5, mean - std), (x + 0.5, mean + std)];
        let error_bar = PathElement::new(error_bar, BLACK.stroke_width(2));
        chart.draw_series([error_bar]).map_err(|e| err(&e))?;
        if text {
            // The name split at the space nearest its middle, at the foot of its bar.
            let (name, middle) = (&bar.label, bar.label.len() / 2);
            let split = name
                .match_indices(' ')
                .map(|(i, _)| i)
                .min_by_key(|i| i.abs_diff(middle))
                .filter(|_| name.len() > 16);
            let (first, second) =
                split.map_or((name.as_str(), ""), |i| (&name[..i], &name[i + 1..]));
            let foot = bottom + (top - bottom) * 0.02;
            let value_y = (mean + std + (top - bottom) * 0.05).min(top);
            let font = ("sans-serif", 13);
            chart
                .draw_series([
                    Text::new(first.to_string(), (x + 0.17, foot + line), font),
                    Text::new(second.to_string(), (x + 0.17, foot), font),
                    Text::new(format!("{mean:.1}±{std:.1}"), (x + 0.17, value_y), font),
                ])
                .map_err(|e| err(&e))?;
        }
    }
    root.present().map_err(|e| err(&e))
}

/// A distillation run's learning curves ([`crate::train::read_history`]): train accuracy
/// (on augmented batches) and accuracy on the evaluation split, named `eval_split`, per
/// epoch, as a [`line_chart`] (feature `train` too).
///
/// # Errors
/// As [`line_chart`].
#[cfg(feature = "train")]
pub fn history_chart(
    path: impl AsRef<Path>,
    history: &[crate::train::EpochRecord],
    eval_split: &str,
) -> Result<()> {
    let points = |f: fn(&crate::train::EpochRecord) -> f64| {
        history
            .iter()
            .map(|e| (e.epoch as f64, 100.0 * f(e)))
            .collect()
    };
    let train = Series::new("train (augmented)", points(|e| e.train_accuracy));
    let eval = Series::new(eval_split, points(|e| e.valid_accuracy));
    line_chart(path, "accuracy per epoch", "epoch", &[train, eval])
}
