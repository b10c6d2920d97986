//! PNG charts: accuracy per epoch, and the ablation's accuracy per method.
//!
//! Text needs a TrueType font. The first of a few usual system fonts that exists is used
//! (DejaVu Sans, Liberation Sans, Arial, Helvetica); without one the charts are drawn with
//! their lines and bars but no text, and a note says so.

use std::path::Path;
use std::sync::OnceLock;

use plotters::coord::Shift;
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
        let found = FONT_PATHS
            .iter()
            .filter_map(|path| std::fs::read(path).ok())
            .any(|bytes| {
                let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                register_font("sans-serif", FontStyle::Normal, bytes).is_ok()
            });
        if !found {
            println!("note: no TrueType font found; charts are drawn without text");
        }
        found
    })
}

fn err(e: impl std::fmt::Display) -> String {
    format!("cannot draw the chart: {e}")
}

/// A white canvas of `size` pixels, drawn to `path`.
fn canvas<'a>(
    path: &'a Path,
    size: (u32, u32),
) -> Result<DrawingArea<BitMapBackend<'a>, Shift>, String> {
    let root = BitMapBackend::new(path, size).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    Ok(root)
}

/// Lines of `(x, y)` points, y in percent, e.g. train and test accuracy per epoch.
pub fn lines(
    path: &Path,
    title: &str,
    x_label: &str,
    series: &[(&str, Vec<(f64, f64)>)],
) -> crate::Res<()> {
    let text = have_font();
    let root = canvas(path, (900, 540))?;
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
    Ok(root.present().map_err(err)?)
}

/// One bar per method: mean accuracy (percent) with a ±std error bar, labelled with its
/// name (in up to two lines) and value. The y axis starts a little below the lowest bar, as
/// the axis says.
pub fn bars(path: &Path, title: &str, bars: &[(String, f64, f64)]) -> crate::Res<()> {
    let text = have_font();
    let root = canvas(path, ((170 * bars.len() as u32).max(600), 560))?;
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
    let mut chart = builder
        .build_cartesian_2d(0f64..bars.len() as f64, bottom..top)
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
    let line = (top - bottom) * 0.035;
    for (i, (name, mean, std)) in bars.iter().enumerate() {
        let (x, color) = (i as f64, Palette99::pick(i).to_rgba());
        chart
            .draw_series([Rectangle::new(
                [(x + 0.15, bottom), (x + 0.85, *mean)],
                color.filled(),
            )])
            .map_err(err)?;
        let error_bar = vec![(x + 0.5, mean - std), (x + 0.5, mean + std)];
        chart
            .draw_series([PathElement::new(error_bar, BLACK.stroke_width(2))])
            .map_err(err)?;
        if text {
            // The name split at the space nearest its middle, at the foot of its bar.
            let middle = name.len() / 2;
            let split = name
                .match_indices(' ')
                .map(|(i, _)| i)
                .min_by_key(|i| i.abs_diff(middle))
                .filter(|_| name.len() > 16);
            let (first, second) =
                split.map_or((name.as_str(), ""), |i| (&name[..i], &name[i + 1..]));
            let foot = bottom + (top - bottom) * 0.02;
            let value_y = (mean + std + (top - bottom) * 0.05).min(top);
            chart
                .draw_series([
                    Text::new(
                        first.to_string(),
                        (x + 0.17, foot + line),
                        ("sans-serif", 13),
                    ),
                    Text::new(second.to_string(), (x + 0.17, foot), ("sans-serif", 13)),
                    Text::new(
                        format!("{mean:.1}±{std:.1}"),
                        (x + 0.17, value_y),
                        ("sans-serif", 14),
                    ),
                ])
                .map_err(err)?;
        }
    }
    Ok(root.present().map_err(err)?)
}
