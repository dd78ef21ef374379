//! Bar charts as inline SVG and tables as CSV for the public dashboard.
//!
//! A chart is drawn in a 600-unit wide `viewBox` at `width="100%"`, so it
//! scales to its column. Up to [`MAX_VERTICAL_CATEGORIES`] categories get
//! vertical bars; more (the 47 prefectures) get horizontal bars, one row per
//! category with its label on the left, the chart growing in height. Bars of
//! several series stand side by side in the colours of [`PALETTE`] with a
//! legend. A value withheld by disclosure control is an empty dashed bar
//! labelled as such. Every text is XML-escaped.

use std::fmt::Write as _;

/// One bar: the value of one category (and series, when there are several).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Bar<'a> {
    pub category: &'a str,
    pub series: Option<&'a str>,
    /// A count; `None` when disclosure control withheld it.
    pub value: Option<i64>,
}

/// Charts with more categories than this draw horizontal bars.
pub(crate) const MAX_VERTICAL_CATEGORIES: usize = 30;

/// The Okabe–Ito colour-blind-safe palette, yellow (low contrast on white)
/// last.
pub(crate) const PALETTE: [&str; 8] = [
    "#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#000000", "#F0E442",
];

const FONT_FAMILY: &str = "system-ui, 'Noto Sans CJK JP', sans-serif";
const WIDTH: f64 = 600.0;
const PAD: f64 = 8.0;
const FONT_SIZE: f64 = 12.0;
const TITLE_SIZE: f64 = 15.0;
const LINE: f64 = 18.0;
const TARGET_TICKS: i64 = 5;
/// Height of the plot area of a vertical chart.
const VERTICAL_PLOT_HEIGHT: f64 = 260.0;
/// Thickness of one horizontal bar, and the gap between category rows.
const BAR_THICKNESS: f64 = 12.0;
const ROW_GAP: f64 = 6.0;
/// Length of a withheld value's empty bar, as a share of the value axis.
const SUPPRESSED_SHARE: f64 = 0.06;
const AXIS_COLOUR: &str = "#444444";
const GRID_COLOUR: &str = "#DDDDDD";

/// An accessible SVG bar chart of `bars` (in the order given; categories
/// and series in order of first appearance). `value_label` names the value
/// axis; `suppressed_label` labels withheld values.
pub(crate) fn bar_chart_svg(
    title: &str,
    value_label: &str,
    bars: &[Bar<'_>],
    suppressed_label: &str,
) -> String {
    let chart = Chart::new(bars, suppressed_label);
    let mut body = Svg::default();
    let legend_bottom = chart.legend(&mut body, TITLE_SIZE + 2.0 * PAD);
    let height = if chart.is_horizontal() {
        chart.horizontal(&mut body, legend_bottom + PAD, value_label)
    } else {
        chart.vertical(&mut body, legend_bottom + PAD, value_label)
    };
    wrap(title, &chart.description(), height, &body.0)
}

/// `header` and `rows` as CSV (RFC 4180: fields quoted where needed, CRLF
/// line ends), UTF-8 with a byte order mark so spreadsheet software reads
/// Japanese text correctly.
pub(crate) fn csv(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut out = String::from('\u{FEFF}');
    push_record(&mut out, header.iter().copied());
    for row in rows {
        push_record(&mut out, row.iter().map(String::as_str));
    }
    out
}

fn push_record<'a>(out: &mut String, fields: impl Iterator<Item = &'a str>) {
    for (index, field) in fields.enumerate() {
        if index > 0 {
            out.push(',');
        }
        if field.contains([',', '"', '\r', '\n']) {
            out.push('"');
            out.push_str(&field.replace('"', "\"\""));
            out.push('"');
        } else {
            out.push_str(field);
        }
    }
    out.push_str("\r\n");
}

/// `text` safe inside XML content and attribute values; characters XML 1.0
/// does not allow are dropped.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if c < ' ' || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}

/// `value` with thousands separators (`1,234,567`).
fn thousands(value: i64) -> String {
    let grouped = enclave_catalog::group_thousands(value.unsigned_abs());
    if value < 0 {
        format!("-{grouped}")
    } else {
        grouped
    }
}

/// Rough rendered width of `text`: full width for CJK and other non-ASCII
/// characters, a little over half for ASCII.
fn text_width(text: &str, size: f64) -> f64 {
    text.chars()
        .map(|c| if c.is_ascii() { 0.6 } else { 1.0 })
        .sum::<f64>()
        * size
}

/// The value axis: round tick values from 0 to at least the largest value.
#[derive(Debug, PartialEq, Eq)]
struct Axis {
    ticks: Vec<i64>,
}

impl Axis {
    fn for_max(max: i64) -> Axis {
        let max = max.max(1);
        let step = tick_step(max);
        let count = ceil_div(max, step);
        Axis {
            ticks: (0..=count).map(|index| index * step).collect(),
        }
    }

    fn top(&self) -> i64 {
        self.ticks.last().copied().unwrap_or(1).max(1)
    }

    /// Where `value` lies between 0 and the top tick, from 0.0 to 1.0.
    fn share(&self, value: i64) -> f64 {
        value.clamp(0, self.top()) as f64 / self.top() as f64
    }
}

/// The smallest 1, 2 or 5 times a power of ten that splits `max` into at
/// most [`TARGET_TICKS`] steps.
fn tick_step(max: i64) -> i64 {
    let rough = ceil_div(max, TARGET_TICKS).max(1);
    let mut magnitude: i64 = 1;
    loop {
        for multiple in [1_i64, 2, 5] {
            let step = multiple.saturating_mul(magnitude);
            if step >= rough {
                return step;
            }
        }
        magnitude = magnitude.saturating_mul(10);
    }
}

/// `dividend / divisor` rounded up, both positive.
fn ceil_div(dividend: i64, divisor: i64) -> i64 {
    dividend / divisor + i64::from(dividend % divisor != 0)
}

/// SVG elements, written into one string.
#[derive(Default)]
struct Svg(String);

impl Svg {
    /// A text element; `attributes` are fixed markup, `content` is escaped.
    fn text(&mut self, x: f64, y: f64, attributes: &str, content: &str) {
        let _ = write!(
            self.0,
            r#"<text x="{x:.1}" y="{y:.1}" {attributes}>{}</text>"#,
            escape(content)
        );
    }

    fn line(&mut self, (x1, y1): (f64, f64), (x2, y2): (f64, f64), colour: &str) {
        let _ = write!(
            self.0,
            r#"<line x1="{x1:.1}" y1="{y1:.1}" x2="{x2:.1}" y2="{y2:.1}" stroke="{colour}"/>"#
        );
    }

    /// A bar with a tooltip; `attributes` are fixed markup.
    fn rect(&mut self, (x, y, width, height): (f64, f64, f64, f64), attributes: &str, tip: &str) {
        let _ = write!(
            self.0,
            r#"<rect x="{x:.1}" y="{y:.1}" width="{width:.1}" height="{height:.1}" {attributes}><title>{}</title></rect>"#,
            escape(tip)
        );
    }
}

/// The whole document around the chart's elements.
fn wrap(title: &str, description: &str, height: f64, body: &str) -> String {
    let id = format!("chart-{:08x}", fnv1a(title) as u32);
    let title = escape(title);
    format!(
        concat!(
            r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height:.0}" width="100%" "#,
            r#"role="img" aria-labelledby="{id}-title" aria-describedby="{id}-desc" "#,
            r#"font-family="{font}" font-size="{size}">"#,
            r#"<title id="{id}-title">{title}</title><desc id="{id}-desc">{description}</desc>"#,
            r#"<text x="{pad}" y="{title_y}" font-size="{title_size}" font-weight="bold">{title}</text>"#,
            "{body}</svg>"
        ),
        width = WIDTH,
        height = height.ceil(),
        id = id,
        font = FONT_FAMILY,
        size = FONT_SIZE,
        title = title,
        description = escape(description),
        pad = PAD,
        title_y = PAD + TITLE_SIZE,
        title_size = TITLE_SIZE,
        body = body,
    )
}

/// A stable id for a chart's title, so several charts on a page keep
/// distinct `aria` references.
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// How a withheld value's bar (and its legend key) is drawn: empty, dashed.
fn suppressed_style() -> String {
    format!(r#"fill="none" stroke="{AXIS_COLOUR}" stroke-dasharray="3 2""#)
}

/// The bars with their categories, series and value axis.
struct Chart<'a> {
    bars: &'a [Bar<'a>],
    categories: Vec<&'a str>,
    series: Vec<Option<&'a str>>,
    axis: Axis,
    suppressed_label: &'a str,
}

fn first_appearances<T: PartialEq + Copy>(items: impl Iterator<Item = T>) -> Vec<T> {
    let mut seen = Vec::new();
    for item in items {
        if !seen.contains(&item) {
            seen.push(item);
        }
    }
    seen
}

impl<'a> Chart<'a> {
    fn new(bars: &'a [Bar<'a>], suppressed_label: &'a str) -> Chart<'a> {
        let max = bars.iter().filter_map(|bar| bar.value).max().unwrap_or(0);
        Chart {
            bars,
            categories: first_appearances(bars.iter().map(|bar| bar.category)),
            series: first_appearances(bars.iter().map(|bar| bar.series)),
            axis: Axis::for_max(max),
            suppressed_label,
        }
    }

    fn is_horizontal(&self) -> bool {
        self.categories.len() > MAX_VERTICAL_CATEGORIES
    }

    fn has_named_series(&self) -> bool {
        self.series.iter().any(Option::is_some)
    }

    fn colour(&self, series: Option<&str>) -> &'static str {
        let index = self.series.iter().position(|s| *s == series).unwrap_or(0);
        PALETTE[index % PALETTE.len()]
    }

    fn value_text(&self, value: Option<i64>) -> String {
        value.map_or_else(|| self.suppressed_label.to_string(), thousands)
    }

    fn tip(&self, bar: &Bar<'_>) -> String {
        let name = match bar.series {
            Some(series) => format!("{} {series}", bar.category),
            None => bar.category.to_string(),
        };
        format!("{name}: {}", self.value_text(bar.value))
    }

    /// Every bar as text, for screen readers.
    fn description(&self) -> String {
        self.bars
            .iter()
            .map(|bar| self.tip(bar))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// The bars of one category with their place among its series.
    fn bars_of(&self, category: &str) -> impl Iterator<Item = (usize, &Bar<'a>)> {
        self.bars
            .iter()
            .filter(move |bar| bar.category == category)
            .map(|bar| {
                let slot = self.series.iter().position(|s| *s == bar.series);
                (slot.unwrap_or(0), bar)
            })
    }

    /// Keys of the series' colours and of the withheld-value bar, wrapped
    /// into lines from `top`; returns the bottom of the legend.
    fn legend(&self, svg: &mut Svg, top: f64) -> f64 {
        let mut keys: Vec<(String, &str)> = Vec::new();
        if self.has_named_series() {
            for series in &self.series {
                let attributes = format!(r#"fill="{}""#, self.colour(*series));
                keys.push((attributes, series.unwrap_or_default()));
            }
        }
        if self.bars.iter().any(|bar| bar.value.is_none()) {
            keys.push((suppressed_style(), self.suppressed_label));
        }
        if keys.is_empty() {
            return top;
        }
        let (mut x, mut y) = (PAD, top);
        for (attributes, name) in &keys {
            let key_width = FONT_SIZE + 4.0 + text_width(name, FONT_SIZE) + 2.0 * PAD;
            if x > PAD && x + key_width > WIDTH - PAD {
                (x, y) = (PAD, y + LINE);
            }
            svg.rect((x, y, FONT_SIZE, FONT_SIZE), attributes, name);
            svg.text(x + FONT_SIZE + 4.0, y + FONT_SIZE - 1.0, "", name);
            x += key_width;
        }
        y + LINE
    }

    /// One bar's rectangle, or the empty dashed one of a withheld value.
    fn bar(&self, svg: &mut Svg, bar: &Bar<'_>, rect: (f64, f64, f64, f64)) {
        let attributes = match bar.value {
            Some(_) => format!(r#"class="bar" fill="{}""#, self.colour(bar.series)),
            None => format!(r#"class="bar suppressed" {}"#, suppressed_style()),
        };
        svg.rect(rect, &attributes, &self.tip(bar));
    }

    /// Vertical bars below `top`; returns the chart's height.
    fn vertical(&self, svg: &mut Svg, top: f64, value_label: &str) -> f64 {
        let tick_width = self
            .axis
            .ticks
            .iter()
            .map(|tick| text_width(&thousands(*tick), FONT_SIZE))
            .fold(0.0, f64::max);
        let plot_top = top + LINE;
        let (left, right) = (PAD + tick_width + 6.0, WIDTH - PAD);
        let bottom = plot_top + VERTICAL_PLOT_HEIGHT;
        svg.text(left, top + FONT_SIZE, r#"text-anchor="start""#, value_label);
        for tick in &self.axis.ticks {
            let y = bottom - self.axis.share(*tick) * VERTICAL_PLOT_HEIGHT;
            svg.line((left, y), (right, y), GRID_COLOUR);
            let attributes = r#"text-anchor="end" dominant-baseline="middle""#;
            svg.text(left - 4.0, y, attributes, &thousands(*tick));
        }
        let slot = (right - left) / self.categories.len().max(1) as f64;
        let bar_width = slot * 0.8 / self.series.len().max(1) as f64;
        for (index, category) in self.categories.iter().enumerate() {
            let slot_left = left + slot * index as f64 + slot * 0.1;
            for (position, bar) in self.bars_of(category) {
                let x = slot_left + bar_width * position as f64;
                self.vertical_bar(svg, bar, x, bar_width, bottom);
            }
        }
        svg.line((left, bottom), (right, bottom), AXIS_COLOUR);
        bottom + self.category_labels_below(svg, left, slot, bottom) + PAD
    }

    fn vertical_bar(&self, svg: &mut Svg, bar: &Bar<'_>, x: f64, width: f64, bottom: f64) {
        let share = bar.value.map_or(SUPPRESSED_SHARE, |v| self.axis.share(v));
        let height = share * VERTICAL_PLOT_HEIGHT;
        self.bar(svg, bar, (x, bottom - height, width, height));
        // Bars too narrow for an upright label rely on the legend's key.
        if bar.value.is_none() && width >= FONT_SIZE {
            let (cx, cy) = (x + width / 2.0, bottom - height - 4.0);
            let attributes =
                format!(r#"text-anchor="start" transform="rotate(-90 {cx:.1} {cy:.1})""#);
            svg.text(cx, cy + FONT_SIZE / 3.0, &attributes, self.suppressed_label);
        }
    }

    /// Category names under vertical bars, slanted when they do not fit
    /// their slot; returns the height they take.
    fn category_labels_below(&self, svg: &mut Svg, left: f64, slot: f64, bottom: f64) -> f64 {
        let widest = self
            .categories
            .iter()
            .map(|category| text_width(category, FONT_SIZE))
            .fold(0.0, f64::max);
        let slanted = widest > slot * 0.9;
        for (index, category) in self.categories.iter().enumerate() {
            let x = left + slot * (index as f64 + 0.5);
            let y = bottom + LINE;
            let attributes = if slanted {
                format!(r#"text-anchor="end" transform="rotate(-45 {x:.1} {y:.1})""#)
            } else {
                r#"text-anchor="middle""#.to_string()
            };
            svg.text(x, y, &attributes, category);
        }
        if slanted {
            LINE + widest * std::f64::consts::FRAC_1_SQRT_2
        } else {
            LINE
        }
    }

    /// Horizontal bars below `top`, one row per category; returns the
    /// chart's height.
    fn horizontal(&self, svg: &mut Svg, top: f64, value_label: &str) -> f64 {
        let widest_label = self
            .categories
            .iter()
            .map(|category| text_width(category, FONT_SIZE))
            .fold(0.0, f64::max);
        let widest_value = self
            .bars
            .iter()
            .map(|bar| text_width(&self.value_text(bar.value), FONT_SIZE))
            .fold(0.0, f64::max);
        let left = PAD + widest_label.min(WIDTH * 0.4) + 6.0;
        let right = WIDTH - PAD - widest_value - 4.0;
        let row = BAR_THICKNESS * self.series.len().max(1) as f64 + ROW_GAP;
        let bottom = top + row * self.categories.len() as f64;
        for tick in &self.axis.ticks {
            let x = left + self.axis.share(*tick) * (right - left);
            svg.line((x, top), (x, bottom), GRID_COLOUR);
            let label = thousands(*tick);
            svg.text(x, bottom + LINE, r#"text-anchor="middle""#, &label);
        }
        for (index, category) in self.categories.iter().enumerate() {
            let row_top = top + row * index as f64 + ROW_GAP / 2.0;
            let middle = row_top + (row - ROW_GAP) / 2.0;
            let attributes = r#"text-anchor="end" dominant-baseline="middle""#;
            svg.text(left - 6.0, middle, attributes, category);
            for (position, bar) in self.bars_of(category) {
                let y = row_top + BAR_THICKNESS * position as f64;
                self.horizontal_bar(svg, bar, (left, right), y);
            }
        }
        svg.line((left, top), (left, bottom), AXIS_COLOUR);
        svg.text(
            right,
            bottom + 2.0 * LINE,
            r#"text-anchor="end""#,
            value_label,
        );
        bottom + 2.0 * LINE + PAD
    }

    fn horizontal_bar(&self, svg: &mut Svg, bar: &Bar<'_>, (left, right): (f64, f64), y: f64) {
        let share = bar.value.map_or(SUPPRESSED_SHARE, |v| self.axis.share(v));
        let length = share * (right - left);
        self.bar(svg, bar, (left, y + 1.0, length, BAR_THICKNESS - 2.0));
        let attributes = r#"dominant-baseline="middle" font-size="11""#;
        let value = self.value_text(bar.value);
        svg.text(
            left + length + 4.0,
            y + BAR_THICKNESS / 2.0,
            attributes,
            &value,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bar(category: &str, value: Option<i64>) -> Bar<'_> {
        Bar {
            category,
            series: None,
            value,
        }
    }

    fn view_box_height(svg: &str) -> f64 {
        let start = svg.find("viewBox=\"0 0 600 ").expect("viewBox") + 17;
        let end = start + svg[start..].find('"').unwrap();
        svg[start..end].parse().unwrap()
    }

    fn categories(count: usize) -> Vec<String> {
        (1..=count).map(|code| format!("{code:02} 県")).collect()
    }

    fn chart_of(names: &[String]) -> String {
        let bars: Vec<Bar<'_>> = names.iter().map(|name| bar(name, Some(1_000))).collect();
        bar_chart_svg("t", "件数", &bars, "秘匿")
    }

    #[test]
    fn escape_replaces_markup_and_drops_invalid_characters() {
        assert_eq!(
            escape("<a href=\"x\">&'</a>\u{0}\u{1b}"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&apos;&lt;/a&gt;"
        );
        assert_eq!(escape("東京都 Tokyo"), "東京都 Tokyo");
    }

    #[test]
    fn every_text_of_a_chart_is_escaped() {
        let hostile = "<script>alert('x')</script>&";
        let bars = [Bar {
            category: hostile,
            series: Some(hostile),
            value: None,
        }];
        let svg = bar_chart_svg(hostile, hostile, &bars, hostile);
        assert!(!svg.contains("<script>"), "{svg}");
        assert!(!svg.contains("'x'"), "{svg}");
        assert!(svg.contains("&lt;script&gt;alert(&apos;x&apos;)&lt;/script&gt;&amp;"));
        assert_eq!(svg.matches("<svg").count(), 1);
        assert!(svg.starts_with("<svg ") && svg.ends_with("</svg>"));
    }

    #[test]
    fn chart_is_accessible_and_scales_to_its_column() {
        let svg = chart_of(&categories(3));
        assert!(svg.contains(r#"role="img""#));
        assert!(svg.contains(r#"width="100%""#));
        assert!(svg.contains(r#"viewBox="0 0 600 "#));
        let id = format!("chart-{:08x}", fnv1a("t") as u32);
        assert!(svg.contains(&format!(r#"aria-labelledby="{id}-title""#)));
        assert!(svg.contains(&format!(r#"<title id="{id}-title">t</title>"#)));
        assert!(svg.contains("Noto Sans CJK JP"));
        assert!(!svg.contains("height=\"100%\""));
    }

    #[test]
    fn more_than_thirty_categories_switch_to_horizontal_rows() {
        let thirty = chart_of(&categories(30));
        let thirty_one = chart_of(&categories(31));
        let forty_seven = chart_of(&categories(47));
        assert!(thirty.contains("rotate(-45"), "30 month-like labels slant");
        assert!(!thirty_one.contains("rotate(-45"));
        assert_eq!(
            thirty_one
                .matches(r#"text-anchor="end" dominant-baseline="middle">"#)
                .count(),
            31,
            "one left-hand label per category row"
        );
        let per_row = view_box_height(&forty_seven) - view_box_height(&thirty_one);
        assert_eq!(per_row, 16.0 * (BAR_THICKNESS + ROW_GAP));
        assert!(view_box_height(&thirty) < view_box_height(&forty_seven));
    }

    #[test]
    fn withheld_values_are_empty_outlined_bars_with_their_label() {
        let bars = [bar("01", Some(120)), bar("02", None), bar("03", Some(40))];
        let svg = bar_chart_svg("t", "件数", &bars, "秘匿");
        assert_eq!(
            svg.matches(r#"class="bar suppressed" fill="none""#).count(),
            1
        );
        assert_eq!(svg.matches(r#"class="bar" fill="#).count(), 2);
        assert!(
            svg.contains(r#"rotate(-90"#),
            "a wide bar's label stands above it"
        );
        assert!(svg.contains(">秘匿</text>"));
        assert!(svg.contains("<title>02: 秘匿</title>"));
        let key = format!(r#"<rect x="{PAD:.1}""#);
        let legend_key = &svg[svg.find(&key).expect("legend key")..];
        assert!(legend_key.starts_with(&format!(
            r#"{key} y="31.0" width="12.0" height="12.0" {}><title>秘匿</title>"#,
            suppressed_style()
        )));
        assert!(svg.contains("<title>01: 120</title>"));
    }

    #[test]
    fn series_get_palette_colours_and_a_legend() {
        let bars = [
            Bar {
                category: "65-69",
                series: Some("要介護1"),
                value: Some(30),
            },
            Bar {
                category: "65-69",
                series: Some("要介護2"),
                value: Some(20),
            },
        ];
        let svg = bar_chart_svg("t", "件数", &bars, "秘匿");
        assert!(svg.contains(&format!(r#"fill="{}"><title>要介護1</title>"#, PALETTE[0])));
        assert!(svg.contains(&format!(r#"fill="{}"><title>要介護2</title>"#, PALETTE[1])));
        assert!(svg.contains(">要介護2</text>"));
        let plain = chart_of(&categories(2));
        assert!(!plain.contains(&format!(r#"fill="{}"><title>"#, PALETTE[1])));
    }

    #[test]
    fn ticks_are_round_and_cover_the_largest_value() {
        assert_eq!(Axis::for_max(12_340).ticks, [0, 5_000, 10_000, 15_000]);
        assert_eq!(Axis::for_max(1_000).ticks, [0, 200, 400, 600, 800, 1_000]);
        assert_eq!(Axis::for_max(7).ticks, [0, 2, 4, 6, 8]);
        assert_eq!(Axis::for_max(0).ticks, [0, 1]);
        assert_eq!(Axis::for_max(-5).ticks, [0, 1]);
        let big = Axis::for_max(987_654_321);
        assert_eq!(big.ticks[1], 200_000_000);
        assert_eq!(big.top(), 1_000_000_000);
        let svg = bar_chart_svg("t", "件数", &[bar("a", Some(12_340))], "秘匿");
        assert!(svg.contains(">15,000</text>"));
    }

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(thousands(-1_234), "-1,234");
        assert_eq!(thousands(i64::MIN), "-9,223,372,036,854,775,808");
    }

    #[test]
    fn csv_quotes_where_needed_with_crlf_and_a_bom() {
        let rows = vec![
            vec!["13 東京都".to_string(), "1,230".to_string()],
            vec!["say \"hi\"".to_string(), "line\nbreak".to_string()],
            vec!["plain".to_string(), String::new()],
        ];
        let text = csv(&["都道府県", "件数"], &rows);
        assert_eq!(
            text,
            "\u{FEFF}都道府県,件数\r\n13 東京都,\"1,230\"\r\n\"say \"\"hi\"\"\",\"line\nbreak\"\r\nplain,\r\n"
        );
        assert!(text.as_bytes().starts_with(&[0xEF, 0xBB, 0xBF]));
    }
}
