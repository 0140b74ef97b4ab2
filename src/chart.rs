//! Small SVG charts for measured reports: a grouped bar chart (categories x
//! series) and a line chart (one line per series, optional log axes).
//!
//! Drawn with plotters' SVG backend only. SVG text is written as `<text>`
//! elements and the viewer picks the font, so no font files, font crates or
//! system libraries are needed to build or run this; plotters only estimates
//! label widths for layout. Colours are the Okabe-Ito palette, readable by
//! colour-blind viewers, and series `i` gets the same colour in every chart,
//! so a transport keeps its colour from one chart to the next when callers
//! list series in the same order.
//!
//! ```no_run
//! use skyrocket::chart::BarChart;
//! BarChart::new("Bytes per message", "bytes", ["16 B", "1 KiB"])
//!     .series("ws", [6.0, 8.0])
//!     .series("sse", [30.0, 31.0])
//!     .write("target/example.svg")
//!     .unwrap();
//! ```

use plotters::coord::ranged1d::{
    AsRangedCoord, DefaultFormatting, KeyPointHint, Ranged, ValueFormatter,
};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::ops::Range;
use std::path::Path;

/// Okabe-Ito: eight colours that stay distinct for colour-blind readers.
const PALETTE: [RGBColor; 8] = [
    RGBColor(0x00, 0x72, 0xB2),
    RGBColor(0xE6, 0x9F, 0x00),
    RGBColor(0x00, 0x9E, 0x73),
    RGBColor(0xCC, 0x79, 0xA7),
    RGBColor(0x56, 0xB4, 0xE9),
    RGBColor(0xD5, 0x5E, 0x00),
    RGBColor(0xF0, 0xE4, 0x42),
    RGBColor(0x00, 0x00, 0x00),
];

const DEFAULT_SIZE: (u32, u32) = (900, 500);
/// Above this many bars, value labels would overlap and are left out.
const MAX_LABELLED_BARS: usize = 32;

#[derive(Debug)]
pub enum ChartError {
    /// The data cannot be drawn as asked (say, a zero on a log axis).
    Data(String),
    /// plotters failed while drawing.
    Draw(String),
    Io(std::io::Error),
}

impl std::fmt::Display for ChartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Data(why) => write!(f, "chart data: {why}"),
            Self::Draw(why) => write!(f, "drawing chart: {why}"),
            Self::Io(e) => write!(f, "writing chart: {e}"),
        }
    }
}

impl std::error::Error for ChartError {}

impl<E: std::error::Error + Send + Sync> From<DrawingAreaErrorKind<E>> for ChartError {
    fn from(e: DrawingAreaErrorKind<E>) -> Self {
        Self::Draw(e.to_string())
    }
}

impl From<std::io::Error> for ChartError {
    fn from(e: std::io::Error) -> Self {
        Self::Io(e)
    }
}

/// One series of a bar chart: a value per category.
#[derive(Debug, Clone)]
pub struct Series {
    pub name: String,
    pub values: Vec<f64>,
}

/// Bars grouped by category, one bar per series in each group.
#[derive(Debug, Clone)]
pub struct BarChart {
    pub title: String,
    pub y_label: String,
    pub categories: Vec<String>,
    pub series: Vec<Series>,
    pub log_y: bool,
    /// Width and height in pixels.
    pub size: (u32, u32),
    /// A line under the chart, saying what it leaves out and why.
    pub note: Option<String>,
}

impl BarChart {
    pub fn new(
        title: impl Into<String>,
        y_label: impl Into<String>,
        categories: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        Self {
            title: title.into(),
            y_label: y_label.into(),
            categories: categories.into_iter().map(Into::into).collect(),
            series: Vec::new(),
            log_y: false,
            size: DEFAULT_SIZE,
            note: None,
        }
    }

    /// Adds a series: one value per category, in the categories' order.
    pub fn series(
        mut self,
        name: impl Into<String>,
        values: impl IntoIterator<Item = f64>,
    ) -> Self {
        self.series.push(Series {
            name: name.into(),
            values: values.into_iter().collect(),
        });
        self
    }

    /// A logarithmic y axis, for values that span orders of magnitude.
    pub fn log_y(mut self) -> Self {
        self.log_y = true;
        self
    }

    /// A line of text under the chart: what it leaves out, and why.
    pub fn note(mut self, note: impl Into<String>) -> Self {
        self.note = Some(note.into());
        self
    }

    pub fn to_svg(&self) -> Result<String, ChartError> {
        self.check()?;
        let values = || self.series.iter().flat_map(|s| s.values.iter().copied());
        let y = value_range(values(), self.log_y, true)?;
        let mut svg = String::new();
        if self.log_y {
            self.draw(&mut svg, y.clone().log_scale(), y.start)?;
        } else {
            self.draw(&mut svg, y.clone(), y.start)?;
        }
        Ok(svg)
    }

    pub fn write(&self, path: impl AsRef<Path>) -> Result<(), ChartError> {
        write_file(path.as_ref(), &self.to_svg()?)
    }

    fn check(&self) -> Result<(), ChartError> {
        if self.categories.is_empty() || self.series.is_empty() {
            return Err(ChartError::Data("no categories or no series".into()));
        }
        for s in &self.series {
            if s.values.len() != self.categories.len() {
                return Err(ChartError::Data(format!(
                    "series {:?} has {} values for {} categories",
                    s.name,
                    s.values.len(),
                    self.categories.len()
                )));
            }
        }
        Ok(())
    }

    /// Draws on an x axis running 0..categories, category `i` centred on
    /// `i + 0.5`; `floor` is where bars start (0, or the bottom of a log axis).
    fn draw<Y>(&self, svg: &mut String, y: Y, floor: f64) -> Result<(), ChartError>
    where
        Y: AsRangedCoord<Value = f64>,
        Y::CoordDescType: ValueFormatter<f64>,
    {
        let n = self.categories.len();
        let x = CategoryAxis(n);
        let root = SVGBackend::with_string(svg, self.size).into_drawing_area();
        root.fill(&WHITE)?;
        let root = with_note(root, self.note.as_deref())?;
        let mut chart = ChartBuilder::on(&root)
            .caption(&self.title, ("sans-serif", 22))
            .margin(16)
            .x_label_area_size(40)
            .y_label_area_size(72)
            .build_cartesian_2d(x, y)?;
        let category = |v: &f64| {
            let i = v.floor() as usize;
            self.categories.get(i).cloned().unwrap_or_default()
        };
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_label_formatter(&category)
            // The value labels carry the numbers; a faint grid is enough.
            .light_line_style(WHITE)
            .x_label_style(("sans-serif", 16))
            .y_label_style(("sans-serif", 14))
            .axis_desc_style(("sans-serif", 15))
            .y_label_formatter(&|v| short_number(*v))
            .y_desc(self.y_label.as_str())
            .draw()?;

        // Each group fills 80% of its slot; the rest is the gap between groups.
        let width = 0.8 / self.series.len() as f64;
        let labelled = n * self.series.len() <= MAX_LABELLED_BARS;
        let label_style = TextStyle::from(("sans-serif", 12))
            .color(&BLACK)
            .pos(Pos::new(HPos::Center, VPos::Bottom));
        for (s, series) in self.series.iter().enumerate() {
            let colour = PALETTE[s % PALETTE.len()];
            let left = |c: usize| c as f64 + 0.1 + s as f64 * width;
            chart
                .draw_series(series.values.iter().enumerate().map(|(c, &v)| {
                    Rectangle::new([(left(c), floor), (left(c) + width, v)], colour.filled())
                }))?
                .label(series.name.as_str())
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 6), (x + 12, y + 6)], colour.filled())
                });
            if labelled {
                chart.draw_series(series.values.iter().enumerate().map(|(c, &v)| {
                    Text::new(
                        short_number(v),
                        (left(c) + width / 2.0, v),
                        label_style.clone(),
                    )
                }))?;
            }
        }
        draw_legend(&mut chart)?;
        root.present()?;
        Ok(())
    }
}

/// The x axis of a bar chart: linear over 0..n, with one tick per category
/// at its centre (`i + 0.5`) rather than plotters' round-number ticks.
struct CategoryAxis(usize);

impl Ranged for CategoryAxis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let share = value / self.0 as f64;
        limit.0 + (share * f64::from(limit.1 - limit.0)).round() as i32
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        // Only bold points (ticks and labels); no light grid between them.
        if hint.weight().allow_light_points() {
            return Vec::new();
        }
        (0..self.0).map(|i| i as f64 + 0.5).collect()
    }

    fn range(&self) -> Range<f64> {
        0.0..self.0 as f64
    }
}

/// One line of a line chart.
#[derive(Debug, Clone)]
pub struct Line {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

/// One line per series over a shared x axis, each point marked.
#[derive(Debug, Clone)]
pub struct LineChart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub lines: Vec<Line>,
    pub log_x: bool,
    pub log_y: bool,
    /// Width and height in pixels.
    pub size: (u32, u32),
    /// A line under the chart, saying what it leaves out and why.
    pub note: Option<String>,
}

impl LineChart {
    pub fn new(
        title: impl Into<String>,
        x_label: impl Into<String>,
        y_label: impl Into<String>,
    ) -> Self {
        Self {
            title: title.into(),
            x_label: x_label.into(),
            y_label: y_label.into(),
            lines: Vec::new(),
            log_x: false,
            log_y: false,
            size: DEFAULT_SIZE,
            note: None,
        }
    }

    /// Adds a line through `points` (x, y), drawn in the order given.
    pub fn line(
        mut self,
        name: impl Into<String>,
        points: impl IntoIterator<Item = (f64, f64)>,
    ) -> Self {
        self.lines.push(Line {
            name: name.into(),
            points: points.into_iter().collect(),
        });
        self
    }

    /// A logarithmic x axis (say, 10, 100, 1000 clients evenly spaced).
    pub fn log_x(mut self) -> Self {
        self.log_x = true;
        self
    }

    pub fn log_y(mut self) -> Self {
        self.log_y = true;
        self
    }

    /// A line of text under the chart: what it leaves out, and why.
    pub fn note(mut self, note: impl Into<String>) -> Self {
        self.note = Some(note.into());
        self
    }

    pub fn to_svg(&self) -> Result<String, ChartError> {
        if self.lines.iter().all(|l| l.points.is_empty()) {
            return Err(ChartError::Data("no points".into()));
        }
        let points = || self.lines.iter().flat_map(|l| l.points.iter().copied());
        let x = value_range(points().map(|p| p.0), self.log_x, false)?;
        let y = value_range(points().map(|p| p.1), self.log_y, true)?;
        let mut svg = String::new();
        match (self.log_x, self.log_y) {
            (false, false) => self.draw(&mut svg, x, y)?,
            (true, false) => self.draw(&mut svg, x.log_scale(), y)?,
            (false, true) => self.draw(&mut svg, x, y.log_scale())?,
            (true, true) => self.draw(&mut svg, x.log_scale(), y.log_scale())?,
        }
        Ok(svg)
    }

    pub fn write(&self, path: impl AsRef<Path>) -> Result<(), ChartError> {
        write_file(path.as_ref(), &self.to_svg()?)
    }

    fn draw<X, Y>(&self, svg: &mut String, x: X, y: Y) -> Result<(), ChartError>
    where
        X: AsRangedCoord<Value = f64>,
        X::CoordDescType: ValueFormatter<f64>,
        Y: AsRangedCoord<Value = f64>,
        Y::CoordDescType: ValueFormatter<f64>,
    {
        let root = SVGBackend::with_string(svg, self.size).into_drawing_area();
        root.fill(&WHITE)?;
        let root = with_note(root, self.note.as_deref())?;
        let mut chart = ChartBuilder::on(&root)
            .caption(&self.title, ("sans-serif", 22))
            .margin(16)
            .x_label_area_size(48)
            .y_label_area_size(72)
            .build_cartesian_2d(x, y)?;
        chart
            .configure_mesh()
            .x_label_formatter(&|v| short_number(*v))
            .y_label_formatter(&|v| short_number(*v))
            .label_style(("sans-serif", 14))
            .axis_desc_style(("sans-serif", 15))
            .x_desc(self.x_label.as_str())
            .y_desc(self.y_label.as_str())
            .draw()?;
        for (i, line) in self.lines.iter().enumerate() {
            let colour = PALETTE[i % PALETTE.len()];
            let style = colour.stroke_width(2);
            chart
                .draw_series(LineSeries::new(line.points.iter().copied(), style))?
                .label(line.name.as_str())
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], style));
            chart.draw_series((line.points.iter()).map(|&p| Circle::new(p, 3, colour.filled())))?;
        }
        draw_legend(&mut chart)?;
        root.present()?;
        Ok(())
    }
}

/// Height in pixels of the strip a note takes under a chart.
const NOTE_HEIGHT: u32 = 28;

/// With a `note`, draws it in a strip along the bottom and returns the
/// area above for the chart; without one, the whole area.
fn with_note<DB>(
    root: DrawingArea<DB, plotters::coord::Shift>,
    note: Option<&str>,
) -> Result<DrawingArea<DB, plotters::coord::Shift>, ChartError>
where
    DB: DrawingBackend,
    DB::ErrorType: 'static,
{
    let Some(note) = note else {
        return Ok(root);
    };
    let height = root.dim_in_pixel().1;
    let (chart, strip) = root.split_vertically(height.saturating_sub(NOTE_HEIGHT));
    let style = TextStyle::from(("sans-serif", 14)).color(&BLACK);
    strip.draw(&Text::new(note.to_owned(), (16, 4), style))?;
    Ok(chart)
}

fn draw_legend<'a, DB, X, Y>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
) -> Result<(), ChartError>
where
    DB: DrawingBackend + 'a,
    DB::ErrorType: 'static,
    X: plotters::coord::ranged1d::Ranged,
    Y: plotters::coord::ranged1d::Ranged,
{
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .label_font(("sans-serif", 14))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .draw()?;
    Ok(())
}

/// The axis range for `values`. A value axis starts at 0 (on a log axis,
/// below the smallest value) and leaves room above the largest for labels
/// and the legend; an x axis hugs the data. A log axis cannot show zero or
/// less: that is an error, not a silently dropped point.
fn value_range(
    values: impl Iterator<Item = f64>,
    log: bool,
    value_axis: bool,
) -> Result<Range<f64>, ChartError> {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values {
        if !v.is_finite() {
            return Err(ChartError::Data(format!("{v} cannot be drawn")));
        }
        if log && v <= 0.0 {
            return Err(ChartError::Data(format!("{v} on a log axis")));
        }
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if log {
        let (below, above) = if value_axis { (2.0, 4.0) } else { (1.5, 1.5) };
        return Ok(lo / below..hi * above);
    }
    if value_axis {
        lo = lo.min(0.0);
    }
    if hi <= lo {
        return Ok(lo - 1.0..hi + 1.0);
    }
    let span = hi - lo;
    Ok(if value_axis {
        lo..hi + span * 0.25
    } else {
        lo - span * 0.03..hi + span * 0.03
    })
}

/// 1234 -> "1.23k", 0.25 -> "0.25", 12 -> "12": short enough for axis
/// ticks and bar labels.
pub fn short_number(v: f64) -> String {
    let a = v.abs();
    let (scaled, suffix) = match a {
        a if a >= 1e9 => (v / 1e9, "G"),
        a if a >= 1e6 => (v / 1e6, "M"),
        a if a >= 1e4 => (v / 1e3, "k"),
        _ => (v, ""),
    };
    let s = scaled.abs();
    let digits = if s == s.trunc() || s >= 100.0 {
        0
    } else if s >= 10.0 {
        1
    } else {
        2
    };
    let text = format!("{scaled:.digits$}");
    // "1.50" -> "1.5", "2.00" (rounded) -> "2".
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        text
    };
    format!("{text}{suffix}")
}

fn write_file(path: &Path, svg: &str) -> Result<(), ChartError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, svg)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(haystack: &str, needle: &str) -> usize {
        haystack.matches(needle).count()
    }

    /// The contents of every `<text>` element, trimmed.
    fn texts(svg: &str) -> Vec<&str> {
        svg.split("<text")
            .skip(1)
            .filter_map(|t| Some(t.split_once('>')?.1.split_once("</text>")?.0.trim()))
            .collect()
    }

    fn assert_labels(svg: &str, labels: &[&str]) {
        let texts = texts(svg);
        for label in labels {
            assert!(texts.contains(label), "no {label:?} in {texts:?}");
        }
    }

    #[test]
    fn bar_chart_names_every_series_and_category() {
        let svg = BarChart::new("Wire bytes", "bytes", ["16 B", "1 KiB", "64 KiB"])
            .series("ws", [6.0, 8.0, 14.0])
            .series("sse", [30.0, 32.0, 40.0])
            .series("longpoll", [380.0, 382.0, 390.0])
            .to_svg()
            .unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..60]);
        assert_labels(
            &svg,
            &[
                "Wire bytes",
                "bytes",
                "16 B",
                "1 KiB",
                "64 KiB",
                "ws",
                "sse",
                "longpoll",
            ],
        );
        // 9 bars and 3 legend swatches, on top of the frame and background.
        assert!(count(&svg, "<rect") >= 12, "{} rects", count(&svg, "<rect"));
        // The bar labels carry the values.
        assert_labels(&svg, &["380", "14", "6"]);
    }

    #[test]
    fn line_chart_on_log_axes_names_every_line() {
        let svg = LineChart::new("Fan-out", "receivers", "ms")
            .line("ws", [(1.0, 0.2), (10.0, 0.5), (1000.0, 30.0)])
            .line("poll", [(1.0, 0.4), (10.0, 1.5), (1000.0, 120.0)])
            .log_x()
            .log_y()
            .to_svg()
            .unwrap();
        assert_labels(&svg, &["Fan-out", "receivers", "ms", "ws", "poll"]);
        assert!(count(&svg, "<polyline") >= 2);
        assert!(count(&svg, "<circle") >= 6);
    }

    #[test]
    fn a_note_is_drawn_under_either_chart() {
        let note = "Not shown: longpoll, overloaded";
        let bars = BarChart::new("t", "y", ["a"])
            .series("ws", [1.0])
            .note(note);
        assert_labels(&bars.to_svg().unwrap(), &[note, "ws"]);
        let lines = LineChart::new("t", "x", "y")
            .line("ws", [(1.0, 2.0)])
            .note(note);
        assert_labels(&lines.to_svg().unwrap(), &[note, "ws"]);
        let plain = BarChart::new("t", "y", ["a"]).series("ws", [1.0]);
        assert!(!plain.to_svg().unwrap().contains(note));
    }

    #[test]
    fn names_are_escaped_not_injected() {
        let svg = BarChart::new("a < b", "y", ["x"])
            .series("<script>", [1.0])
            .to_svg()
            .unwrap();
        assert!(!svg.contains("<script>"));
        assert!(svg.contains("&lt;script&gt;"));
    }

    #[test]
    fn bad_data_is_an_error_not_a_broken_chart() {
        let short = BarChart::new("t", "y", ["a", "b"]).series("s", [1.0]);
        assert!(matches!(short.to_svg(), Err(ChartError::Data(_))));
        let zero_on_log = LineChart::new("t", "x", "y")
            .line("s", [(0.0, 1.0)])
            .log_x();
        assert!(matches!(zero_on_log.to_svg(), Err(ChartError::Data(_))));
        let nan = BarChart::new("t", "y", ["a"]).series("s", [f64::NAN]);
        assert!(matches!(nan.to_svg(), Err(ChartError::Data(_))));
        let empty = LineChart::new("t", "x", "y");
        assert!(matches!(empty.to_svg(), Err(ChartError::Data(_))));
    }

    #[test]
    fn write_creates_the_directory_and_the_file() {
        let dir = std::env::temp_dir().join(format!("skyrocket-chart-{}", std::process::id()));
        let path = dir.join("nested").join("bars.svg");
        BarChart::new("t", "y", ["a"])
            .series("only", [2.0])
            .write(&path)
            .unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert_labels(&svg, &["only"]);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn short_numbers() {
        assert_eq!(short_number(0.0), "0");
        assert_eq!(short_number(0.25), "0.25");
        assert_eq!(short_number(12.0), "12");
        assert_eq!(short_number(12.34), "12.3");
        assert_eq!(short_number(427.1), "427");
        assert_eq!(short_number(65_546.0), "65.5k");
        assert_eq!(short_number(2_500_000.0), "2.5M");
    }
}
