//! PNG charts: accuracy per epoch, and the ablation's accuracy per method.
//!
//! Text needs a TrueType font. The first of a few usual system fonts that exists is used
//! (DejaVu Sans, Liberation Sans, Arial, Helvetica); without one the charts are drawn with
//! their lines and bars but no text, and a note says so.

use std::path::Path;
use std::sync::OnceLock;

use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};

const FONT_PATHS: [&str; 6] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/Library/Fonts/Arial.ttf",
    "/System/Library/Fonts/Helvetica.ttc",
    "C:\\Windows\\Fonts\\arial.ttf",
];

/// Registers a system font once; false when none was found.
fn have_font() -> bool {
    static FOUND: OnceLock<bool> = OnceLock::new();
    *FOUND.get_or_init(|| {
        for path in FONT_PATHS {
            if let Ok(bytes) = std::fs::read(path) {
                let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                if register_font("sans-serif", FontStyle::Normal, bytes).is_ok() {
                    return true;
                }
            }
        }
        println!("note: no TrueType font found; charts are drawn without text");
        false
    })
}

fn err(e: impl std::fmt::Display) -> String {
    format!("cannot draw the chart: {e}")
}

/// Lines of `(x, y)` points, y in percent, e.g. train and test accuracy per epoch.
pub fn lines(
    path: &Path,
    title: &str,
    x_label: &str,
    series: &[(&str, Vec<(f64, f64)>)],
) -> Result<(), String> {
    let text = have_font();
    let root = BitMapBackend::new(path, (900, 540)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let max_x = series
        .iter()
        .flat_map(|(_, p)| p.iter().map(|(x, _)| *x))
        .fold(1.0f64, f64::max);
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
        .map_err(err)?;
    if text {
        chart
            .configure_mesh()
            .x_desc(x_label)
            .x_labels((max_x as usize + 1).min(20))
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_desc("accuracy (%)")
            .draw()
            .map_err(err)?;
    }
    for (i, (name, points)) in series.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        let drawn = chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(3)))
            .map_err(err)?;
        if text {
            drawn.label(*name).legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 24, y)], color.stroke_width(3))
            });
        }
        chart
            .draw_series(points.iter().map(|p| Circle::new(*p, 4, color.filled())))
            .map_err(err)?;
    }
    if text {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .label_font(("sans-serif", 16))
            .draw()
            .map_err(err)?;
    }
    root.present().map_err(err)
}

/// One bar per method: mean accuracy (percent) with a ±std error bar, labelled with its
/// name and value. The y axis starts a little below the lowest bar, as the axis says.
pub fn bars(path: &Path, title: &str, bars: &[(String, f64, f64)]) -> Result<(), String> {
    let text = have_font();
    let width = (170 * bars.len() as u32).max(600);
    let root = BitMapBackend::new(path, (width, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let low = bars.iter().map(|b| b.1 - b.2).fold(f64::INFINITY, f64::min);
    let high = bars.iter().map(|b| b.1 + b.2).fold(0.0f64, f64::max);
    let bottom = ((low - 5.0) / 5.0).floor().max(0.0) * 5.0;
    let top = (high + 4.0).min(100.0).max(bottom + 1.0);
    let mut builder = ChartBuilder::on(&root);
    builder.margin(20);
    if text {
        builder
            .caption(title, ("sans-serif", 22))
            .y_label_area_size(60);
    }
    let n = bars.len() as f64;
    let mut chart = builder
        .build_cartesian_2d(0f64..n, bottom..top)
        .map_err(err)?;
    if text {
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(0)
            .y_desc(format!("accuracy (%), axis from {bottom:.0}"))
            .draw()
            .map_err(err)?;
    }
    for (i, (name, mean, std)) in bars.iter().enumerate() {
        let x = i as f64;
        let color = Palette99::pick(i).to_rgba();
        chart
            .draw_series([Rectangle::new(
                [(x + 0.15, bottom), (x + 0.85, *mean)],
                color.filled(),
            )])
            .map_err(err)?;
        chart
            .draw_series([PathElement::new(
                vec![(x + 0.5, mean - std), (x + 0.5, mean + std)],
                BLACK.stroke_width(2),
            )])
            .map_err(err)?;
        if text {
            let label_y = bottom + (top - bottom) * 0.02;
            // The method's name in up to two lines, at the foot of its bar.
            let (first, second) = split_label(name);
            let line = (top - bottom) * 0.035;
            chart
                .draw_series([
                    Text::new(first, (x + 0.17, label_y + line), ("sans-serif", 13)),
                    Text::new(second, (x + 0.17, label_y), ("sans-serif", 13)),
                    Text::new(
                        format!("{mean:.1}±{std:.1}"),
                        (x + 0.17, (mean + std + (top - bottom) * 0.05).min(top)),
                        ("sans-serif", 14),
                    ),
                ])
                .map_err(err)?;
        }
    }
    root.present().map_err(err)
}

/// Splits a label at the space nearest its middle (or keeps it whole when short).
fn split_label(label: &str) -> (String, String) {
    if label.len() <= 16 {
        return (label.to_string(), String::new());
    }
    let middle = label.len() / 2;
    match label
        .match_indices(' ')
        .map(|(i, _)| i)
        .min_by_key(|i| i.abs_diff(middle))
    {
        Some(i) => (label[..i].to_string(), label[i + 1..].to_string()),
        None => (label.to_string(), String::new()),
    }
}
