//! Figures: reliability diagrams, uncertainty maps and overlaid histograms, each written as
//! both `<stem>.svg` and `<stem>.png` (plotters).
//!
//! Every figure is rendered into memory and then written with [`crate::fsx::write_atomic`],
//! so a crash or an error never leaves a partial file.
//!
//! Fonts. Nothing here uses fontconfig or FreeType. The SVG needs no font file: its text is
//! `<text font-family="sans-serif">` rendered by the viewer, and its layout uses an estimate
//! of text widths. The PNG rasterises its text with plotters' pure-Rust `ab_glyph` support
//! from a TrueType/OpenType file: `$DISTILLERY_FONT` when set (and non-empty), else the first
//! existing of [`FONT_CANDIDATES`]. Each function writes the SVG first; when no font is found
//! it then returns an error naming the paths it tried (install the Debian package
//! `fonts-dejavu-core` or set `DISTILLERY_FONT`), and no PNG is written.
//!
//! Heat maps are bitmaps (one pixel per output pixel, nearest grid cell); in the SVG they are
//! embedded as base64 PNG `<image>` elements: nine panels of a 101 × 101 grid take about
//! 200 kB rather than ninety thousand `<rect>`s. Overlaid dots cost about 200 bytes each per
//! panel in the SVG (300 dots on nine panels: another ~550 kB), so pass a subsample.

use std::cell::RefCell;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use anyhow::{Context, Result, anyhow, bail, ensure};
use metrics::ReliabilityBin;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters_backend::{BackendColor, BackendCoord, BackendTextStyle, DrawingErrorKind};

use crate::fsx;

/// Environment variable naming the TTF/OTF font used for PNG text.
pub const FONT_ENV: &str = "DISTILLERY_FONT";

/// Font files tried, in order, when `$DISTILLERY_FONT` is not set.
pub const FONT_CANDIDATES: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", // Debian, Ubuntu (fonts-dejavu-core)
    "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf", // Fedora
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",          // older Fedora, CentOS
    "/usr/share/fonts/TTF/DejaVuSans.ttf",             // Arch
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/liberation-sans/LiberationSans-Regular.ttf",
    "/usr/share/fonts/truetype/noto/NotoSans-Regular.ttf",
    "/Library/Fonts/Arial.ttf",
    "/System/Library/Fonts/Supplemental/Arial.ttf",
];

/// The font family every text style uses (and under which the PNG font is registered).
const FAMILY: &str = "sans-serif";

/// One heat map of [`uncertainty_maps`].
#[derive(Debug, Clone, PartialEq)]
pub struct MapPanel {
    /// Panel title, e.g. "EnD² — MI".
    pub title: String,
    /// Row-major `ys.len() × xs.len()`: the value at `(xs[i], ys[j])` is `values[j * xs.len() + i]`.
    /// Non-finite values are drawn grey.
    pub values: Vec<f64>,
}

/// Reliability diagram: per confidence bin a bar of its accuracy, the gap to the bin's mean
/// confidence shaded, and the diagonal of perfect calibration. `ece`, when given, is shown
/// in the title (as a percentage). Empty bins draw nothing.
pub fn reliability_diagram(stem: &Path, title: &str, bins: &[ReliabilityBin], ece: Option<f64>) -> Result<()> {
    reliability_diagram_with(stem, title, bins, ece, font_from_env().as_deref())
}

/// A grid of heat maps over the grid `xs × ys` (cell centres, strictly increasing), `columns`
/// panels per row in the order given, each with its own colour scale and colour bar.
/// `points` (x, y, class) are overlaid as dots coloured by class; pass a subsample of a few
/// hundred, since every dot is an SVG element in every panel.
pub fn uncertainty_maps(
    stem: &Path,
    title: &str,
    xs: &[f64],
    ys: &[f64],
    panels: &[MapPanel],
    columns: usize,
    points: &[(f64, f64, u8)],
) -> Result<()> {
    uncertainty_maps_with(stem, title, xs, ys, panels, columns, points, font_from_env().as_deref())
}

/// Overlaid histograms normalised to unit area (density), `bins` equal-width bins over the
/// common range of all finite values, with a legend "name (n = …)". Non-finite values are
/// left out (and not counted in n).
pub fn histograms(stem: &Path, title: &str, series: &[(String, Vec<f64>)], bins: usize, x_label: &str) -> Result<()> {
    histograms_with(stem, title, series, bins, x_label, font_from_env().as_deref())
}

// ---------------------------------------------------------------------------------------
// The three figures, with the PNG font passed explicitly (tests use these: no env vars).

fn reliability_diagram_with(
    stem: &Path,
    title: &str,
    bins: &[ReliabilityBin],
    ece: Option<f64>,
    font: Option<&Path>,
) -> Result<()> {
    ensure!(!bins.is_empty(), "reliability diagram {}: no bins", stem.display());
    for (i, b) in bins.iter().enumerate() {
        let ok = b.lower.is_finite() && b.upper.is_finite() && b.lower < b.upper;
        ensure!(ok, "reliability diagram {}: bin {i} has edges ({}, {}]", stem.display(), b.lower, b.upper);
    }
    if let Some(e) = ece {
        ensure!(e.is_finite(), "reliability diagram {}: ECE = {e}", stem.display());
    }
    let title = match ece {
        Some(e) => format!("{title}  (ECE = {:.2}%)", 100.0 * e),
        None => title.to_string(),
    };
    save(stem, &ReliabilityFigure { title, bins }, font)
}

fn uncertainty_maps_with(
    stem: &Path,
    title: &str,
    xs: &[f64],
    ys: &[f64],
    panels: &[MapPanel],
    columns: usize,
    points: &[(f64, f64, u8)],
    font: Option<&Path>,
) -> Result<()> {
    let what = || format!("uncertainty maps {}", stem.display());
    ensure!(!panels.is_empty(), "{}: no panels", what());
    ensure!(columns > 0, "{}: columns = 0", what());
    let x_edges = cell_edges(xs).with_context(|| format!("{}: xs", what()))?;
    let y_edges = cell_edges(ys).with_context(|| format!("{}: ys", what()))?;
    for p in panels {
        ensure!(
            p.values.len() == xs.len() * ys.len(),
            "{}: panel {:?} has {} values, expected ys.len() × xs.len() = {} × {} = {}",
            what(),
            p.title,
            p.values.len(),
            ys.len(),
            xs.len(),
            xs.len() * ys.len()
        );
    }
    let fig = MapsFigure { title: title.to_string(), x_edges, y_edges, panels, columns, points };
    save(stem, &fig, font)
}

fn histograms_with(
    stem: &Path,
    title: &str,
    series: &[(String, Vec<f64>)],
    bins: usize,
    x_label: &str,
    font: Option<&Path>,
) -> Result<()> {
    let what = || format!("histograms {}", stem.display());
    ensure!(!series.is_empty(), "{}: no series", what());
    ensure!(bins > 0, "{}: bins = 0", what());
    let (lo, hi, densities) = densities(series, bins).with_context(what)?;
    let fig = HistogramFigure { title: title.to_string(), x_label: x_label.to_string(), lo, hi, densities };
    save(stem, &fig, font)
}

/// A series' legend label and density per bin.
type SeriesDensity = (String, Vec<f64>);

/// The common range `(lo, hi)` of all finite values (widened when empty) and per series its
/// legend label and density per bin (unit area; all zero for a series without finite values).
fn densities(series: &[(String, Vec<f64>)], bins: usize) -> Result<(f64, f64, Vec<SeriesDensity>)> {
    let finite = || series.iter().flat_map(|(_, v)| v.iter().copied()).filter(|v| v.is_finite());
    let lo = finite().fold(f64::INFINITY, f64::min);
    let hi = finite().fold(f64::NEG_INFINITY, f64::max);
    ensure!(lo <= hi, "no finite value in any series");
    let (lo, hi) = padded_range(lo, hi);
    let width = (hi - lo) / bins as f64;
    let out = series
        .iter()
        .map(|(name, values)| {
            let mut counts = vec![0usize; bins];
            let mut n = 0usize;
            for &v in values.iter().filter(|v| v.is_finite()) {
                let b = (((v - lo) / width).floor().max(0.0) as usize).min(bins - 1);
                counts[b] += 1;
                n += 1;
            }
            let density = counts.iter().map(|&c| if n == 0 { 0.0 } else { c as f64 / (n as f64 * width) }).collect();
            (format!("{name} (n = {n})"), density)
        })
        .collect();
    Ok((lo, hi, out))
}

// ---------------------------------------------------------------------------------------
// Rendering: SVG then PNG, both in memory, each written atomically.

type DrawResult<T, DB> = Result<T, DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

/// A figure drawable on any backend (drawn twice: SVG, then PNG).
trait Figure {
    /// Size in pixels.
    fn size(&self) -> (u32, u32);
    /// Draw on a white root area of [`Figure::size`].
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<(), DB>;
}

fn with_suffix(stem: &Path, ext: &str) -> PathBuf {
    let mut s: OsString = stem.as_os_str().to_owned();
    s.push(".");
    s.push(ext);
    PathBuf::from(s)
}

/// Write `<stem>.svg`, then (if a font is found) `<stem>.png`.
fn save(stem: &Path, fig: &impl Figure, font: Option<&Path>) -> Result<()> {
    let svg_path = with_suffix(stem, "svg");
    let png_path = with_suffix(stem, "png");
    let svg = render_svg(fig).with_context(|| format!("drawing {}", svg_path.display()))?;
    fsx::write_atomic(&svg_path, svg.as_bytes())?;
    let font = resolve_font(font, FONT_CANDIDATES)
        .with_context(|| format!("{} written, but {} cannot be drawn", svg_path.display(), png_path.display()))?;
    register_font(&font).with_context(|| format!("drawing {}", png_path.display()))?;
    let png = render_png(fig).with_context(|| format!("drawing {}", png_path.display()))?;
    fsx::write_atomic(&png_path, &png)
}

fn render_svg(fig: &impl Figure) -> Result<String> {
    let mut out = String::new();
    let images = RefCell::new(Vec::new());
    {
        let root = SvgBackend { inner: SVGBackend::with_string(&mut out, fig.size()), images: &images }.into_drawing_area();
        root.fill(&WHITE).map_err(|e| anyhow!("{e}"))?;
        fig.draw(&root).map_err(|e| anyhow!("{e}"))?;
        root.present().map_err(|e| anyhow!("{e}"))?;
    }
    // Replace each placeholder `<text …>marker</text>` by its `<image …/>`.
    for (i, image) in images.into_inner().into_iter().enumerate() {
        let marker = image_marker(i);
        let at = out.find(&marker).with_context(|| format!("SVG image placeholder {i} missing"))?;
        let start = out[..at].rfind("<text").context("SVG image placeholder without <text>")?;
        let end = at + out[at..].find("</text>").context("SVG image placeholder without </text>")? + "</text>".len();
        out.replace_range(start..end, &image);
    }
    Ok(out)
}

fn render_png(fig: &impl Figure) -> Result<Vec<u8>> {
    let (w, h) = fig.size();
    let mut rgb = vec![0u8; w as usize * h as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| anyhow!("{e}"))?;
        fig.draw(&root).map_err(|e| anyhow!("{e}"))?;
        root.present().map_err(|e| anyhow!("{e}"))?;
    }
    encode_png(&rgb, w, h)
}

/// PNG bytes of an 8-bit RGB image.
fn encode_png(rgb: &[u8], w: u32, h: u32) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, w, h);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    let mut writer = enc.write_header().context("encoding PNG")?;
    writer.write_image_data(rgb).context("encoding PNG")?;
    writer.finish().context("encoding PNG")?;
    Ok(out)
}

fn base64(bytes: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for k in 0..4 {
            if k <= chunk.len() {
                s.push(ABC[(n >> (18 - 6 * k) & 63) as usize] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}

fn image_marker(i: usize) -> String {
    format!("@@distillery-plots-image-{i}@@")
}

/// plotters' SVG backend with two changes: text sizes are estimated without a font file, and
/// bitmaps become embedded PNG images (via a placeholder replaced in [`render_svg`]).
struct SvgBackend<'a> {
    inner: SVGBackend<'a>,
    images: &'a RefCell<Vec<String>>,
}

/// Average advance width of a character as a fraction of the plotters font size (DejaVu Sans
/// averages ≈ 0.52 at ab_glyph's scale); the height matches ab_glyph's `size / 1.24`.
const CHAR_WIDTH: f64 = 0.52;

/// Text style of the SVG image placeholders (never rasterised).
struct MarkerStyle;

impl BackendTextStyle for MarkerStyle {
    type FontError = std::fmt::Error;
    fn family(&self) -> plotters_backend::FontFamily<'_> {
        plotters_backend::FontFamily::SansSerif
    }
    fn layout_box(&self, _: &str) -> Result<((i32, i32), (i32, i32)), Self::FontError> {
        Ok(((0, 0), (0, 0)))
    }
    fn draw<E, F: FnMut(i32, i32, BackendColor) -> Result<(), E>>(
        &self,
        _: &str,
        _: BackendCoord,
        _: F,
    ) -> Result<Result<(), E>, Self::FontError> {
        Ok(Ok(()))
    }
}

impl DrawingBackend for SvgBackend<'_> {
    type ErrorType = std::io::Error;

    fn get_size(&self) -> (u32, u32) {
        self.inner.get_size()
    }
    fn ensure_prepared(&mut self) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.ensure_prepared()
    }
    fn present(&mut self) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.present()
    }
    fn draw_pixel(&mut self, point: BackendCoord, color: BackendColor) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.draw_pixel(point, color)
    }
    fn draw_line<S: plotters_backend::BackendStyle>(
        &mut self,
        from: BackendCoord,
        to: BackendCoord,
        style: &S,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.draw_line(from, to, style)
    }
    fn draw_rect<S: plotters_backend::BackendStyle>(
        &mut self,
        upper_left: BackendCoord,
        bottom_right: BackendCoord,
        style: &S,
        fill: bool,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.draw_rect(upper_left, bottom_right, style, fill)
    }
    fn draw_path<S: plotters_backend::BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        path: I,
        style: &S,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.draw_path(path, style)
    }
    fn draw_circle<S: plotters_backend::BackendStyle>(
        &mut self,
        center: BackendCoord,
        radius: u32,
        style: &S,
        fill: bool,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.draw_circle(center, radius, style, fill)
    }
    fn fill_polygon<S: plotters_backend::BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        vert: I,
        style: &S,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.fill_polygon(vert, style)
    }
    fn draw_text<S: BackendTextStyle>(
        &mut self,
        text: &str,
        style: &S,
        pos: BackendCoord,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.draw_text(text, style, pos)
    }
    fn estimate_text_size<S: BackendTextStyle>(
        &self,
        text: &str,
        style: &S,
    ) -> Result<(u32, u32), DrawingErrorKind<Self::ErrorType>> {
        let size = style.size();
        let w = (CHAR_WIDTH * size * text.chars().count() as f64).ceil() as u32;
        Ok((w, (size / 1.24).ceil() as u32))
    }
    fn blit_bitmap(
        &mut self,
        pos: BackendCoord,
        (w, h): (u32, u32),
        src: &[u8],
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        let png = encode_png(src, w, h).map_err(|e| DrawingErrorKind::DrawingError(std::io::Error::other(format!("{e:#}"))))?;
        let mut images = self.images.borrow_mut();
        let tag = format!(
            "<image x=\"{}\" y=\"{}\" width=\"{w}\" height=\"{h}\" preserveAspectRatio=\"none\" href=\"data:image/png;base64,{}\"/>\n",
            pos.0,
            pos.1,
            base64(&png)
        );
        let marker = image_marker(images.len());
        images.push(tag);
        drop(images);
        self.inner.draw_text(&marker, &MarkerStyle, pos)
    }
}

// ---------------------------------------------------------------------------------------
// Fonts (PNG only).

fn font_from_env() -> Option<PathBuf> {
    std::env::var_os(FONT_ENV).filter(|v| !v.is_empty()).map(PathBuf::from)
}

/// The font file: `explicit` (from `$DISTILLERY_FONT`) if given, else the first existing
/// candidate; errors name every path tried.
fn resolve_font(explicit: Option<&Path>, candidates: &[&str]) -> Result<PathBuf> {
    const HELP: &str = "install the Debian package fonts-dejavu-core (apt-get install fonts-dejavu-core) \
                        or set DISTILLERY_FONT to a .ttf/.otf file";
    if let Some(path) = explicit {
        ensure!(path.is_file(), "font {} (from {FONT_ENV}) is not a file: {HELP}", path.display());
        return Ok(path.to_path_buf());
    }
    match candidates.iter().map(Path::new).find(|p| p.is_file()) {
        Some(p) => Ok(p.to_path_buf()),
        None => bail!("no font for PNG text; tried {FONT_ENV} (unset) and {}: {HELP}", candidates.join(", ")),
    }
}

/// Register `path` as plotters' "sans-serif" font (ab_glyph), once per path. The bytes are
/// leaked: plotters keeps `&'static` font data for the life of the process.
fn register_font(path: &Path) -> Result<()> {
    static REGISTERED: Mutex<Option<PathBuf>> = Mutex::new(None);
    let mut registered = REGISTERED.lock().unwrap_or_else(PoisonError::into_inner);
    if registered.as_deref() == Some(path) {
        return Ok(());
    }
    let bytes = std::fs::read(path).with_context(|| format!("reading font {}", path.display()))?;
    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
    plotters::style::register_font(FAMILY, FontStyle::Normal, bytes).map_err(|_| {
        anyhow!(
            "font {} is not a TrueType/OpenType font (set {FONT_ENV} to a .ttf/.otf file, \
             or install the Debian package fonts-dejavu-core)",
            path.display()
        )
    })?;
    *registered = Some(path.to_path_buf());
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Shared drawing helpers.

fn text(size: f64) -> TextStyle<'static> {
    (FAMILY, size).into_font().into()
}

/// Tick labels for an axis over `[lo, hi]` with at most `n` ticks: as many decimals as the
/// tick step needs (plotters steps by 1, 2 or 5 × 10ᵏ; the step is taken as the smallest such
/// value ≥ span / (n + 1), so that labels never lose a digit they need); scientific when
/// every magnitude is below 0.01 or reaches 10⁴.
fn ticks(lo: f64, hi: f64, n: usize) -> impl Fn(&f64) -> String {
    let span = (hi - lo).abs();
    let raw = span / (n + 1) as f64;
    let decimals = if raw > 0.0 && raw.is_finite() {
        let k = raw.log10().floor();
        let m = raw / 10f64.powf(k);
        let k = if m <= 5.0 + 1e-9 { k } else { k + 1.0 };
        (-k).clamp(0.0, 8.0) as usize
    } else {
        2
    };
    let big = lo.abs().max(hi.abs());
    let scientific = !(1e-2..1e4).contains(&big);
    move |v: &f64| {
        let v = if v.abs() <= span * 1e-9 { 0.0 } else { *v };
        if scientific && v != 0.0 { format!("{v:.1e}") } else { format!("{v:.decimals$}") }
    }
}

/// `(lo, hi)` widened when empty, so that axes and colour scales have a span.
fn padded_range(lo: f64, hi: f64) -> (f64, f64) {
    if hi > lo {
        (lo, hi)
    } else {
        let pad = if lo == 0.0 { 0.5 } else { 0.05 * lo.abs() };
        (lo - pad, hi + pad)
    }
}

/// Categorical colours (series, classes).
const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

/// Dot colours for classes over viridis (with a black outline): red, white, orange, pink, …
const CLASS_COLOURS: [RGBColor; 6] = [
    RGBColor(228, 26, 28),
    RGBColor(255, 255, 255),
    RGBColor(255, 127, 0),
    RGBColor(247, 129, 191),
    RGBColor(166, 86, 40),
    RGBColor(153, 153, 153),
];

const BAR: RGBColor = RGBColor(49, 130, 189);
const GAP: RGBColor = RGBColor(222, 45, 38);
const MISSING: RGBColor = RGBColor(190, 190, 190);

/// Viridis at `t ∈ [0, 1]` (clamped): 8 stops of matplotlib's table, linearly interpolated.
fn viridis(t: f64) -> RGBColor {
    const STOPS: [[f64; 3]; 8] = [
        [68.0, 1.0, 84.0],
        [70.0, 50.0, 127.0],
        [54.0, 92.0, 141.0],
        [39.0, 127.0, 143.0],
        [31.0, 162.0, 136.0],
        [74.0, 194.0, 110.0],
        [160.0, 219.0, 57.0],
        [254.0, 232.0, 37.0],
    ];
    let x = t.clamp(0.0, 1.0) * (STOPS.len() - 1) as f64;
    let i = (x.floor() as usize).min(STOPS.len() - 2);
    let f = x - i as f64;
    let c = |k: usize| (STOPS[i][k] + f * (STOPS[i + 1][k] - STOPS[i][k])).round() as u8;
    RGBColor(c(0), c(1), c(2))
}

enum Mark {
    Box(RGBColor),
    Dashed(RGBColor),
}

enum Corner {
    TopLeft,
    TopRight,
}

/// A legend box inside `area` (pixel coordinates), measured through the backend.
fn legend<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, entries: &[(Mark, String)], corner: Corner) -> DrawResult<(), DB> {
    let style = text(14.0);
    let mut text_w = 0;
    let mut text_h = 0;
    for (_, label) in entries {
        let (w, h) = area.estimate_text_size(label, &style)?;
        text_w = text_w.max(w as i32);
        text_h = text_h.max(h as i32);
    }
    let line = text_h + 8;
    let (bw, bh) = (10 + 26 + 8 + text_w + 10, 8 + line * entries.len() as i32);
    let (aw, _) = area.dim_in_pixel();
    let x = match corner {
        Corner::TopLeft => 10,
        Corner::TopRight => aw as i32 - bw - 10,
    };
    let y = 10;
    area.draw(&Rectangle::new([(x, y), (x + bw, y + bh)], WHITE.mix(0.9).filled()))?;
    area.draw(&Rectangle::new([(x, y), (x + bw, y + bh)], BLACK.mix(0.4)))?;
    let style = style.pos(Pos::new(HPos::Left, VPos::Center));
    for (i, (mark, label)) in entries.iter().enumerate() {
        let yc = y + 4 + line * i as i32 + line / 2;
        let (x0, x1) = (x + 10, x + 36);
        match mark {
            Mark::Box(c) => {
                area.draw(&Rectangle::new([(x0, yc - 6), (x1, yc + 6)], c.mix(0.6).filled()))?;
                area.draw(&Rectangle::new([(x0, yc - 6), (x1, yc + 6)], *c))?;
            }
            Mark::Dashed(c) => {
                for k in 0..3 {
                    area.draw(&PathElement::new(vec![(x0 + 10 * k, yc), (x0 + 10 * k + 6, yc)], c.stroke_width(2)))?;
                }
            }
        }
        area.draw(&Text::new(label.clone(), (x1 + 8, yc), style.clone()))?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Reliability diagram.

struct ReliabilityFigure<'a> {
    title: String,
    bins: &'a [ReliabilityBin],
}

impl Figure for ReliabilityFigure<'_> {
    fn size(&self) -> (u32, u32) {
        (640, 600)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<(), DB> {
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, text(20.0))
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(55)
            .build_cartesian_2d(0f64..1f64, 0f64..1f64)?;
        chart
            .configure_mesh()
            .x_desc("Confidence")
            .y_desc("Accuracy")
            .label_style(text(14.0))
            .axis_desc_style(text(16.0))
            .light_line_style(TRANSPARENT)
            .bold_line_style(BLACK.mix(0.08))
            .x_label_formatter(&|v| format!("{v:.1}"))
            .y_label_formatter(&|v| format!("{v:.1}"))
            .draw()?;
        let unit = |v: f64| v.clamp(0.0, 1.0);
        let filled: Vec<_> = self
            .bins
            .iter()
            .filter_map(|b| Some((unit(b.lower), unit(b.upper), unit(b.accuracy?), b.confidence.map(unit))))
            .collect();
        chart.draw_series(
            filled.iter().map(|&(lo, hi, acc, _)| Rectangle::new([(lo, 0.0), (hi, acc)], BAR.mix(0.85).filled())),
        )?;
        chart.draw_series(filled.iter().map(|&(lo, hi, acc, _)| Rectangle::new([(lo, 0.0), (hi, acc)], BLACK.mix(0.6))))?;
        let gaps: Vec<_> = filled.iter().filter_map(|&(lo, hi, acc, conf)| Some((lo, hi, acc, conf?))).collect();
        chart.draw_series(
            gaps.iter().map(|&(lo, hi, acc, conf)| Rectangle::new([(lo, acc.min(conf)), (hi, acc.max(conf))], GAP.mix(0.3).filled())),
        )?;
        chart.draw_series(
            gaps.iter().map(|&(lo, hi, acc, conf)| Rectangle::new([(lo, acc.min(conf)), (hi, acc.max(conf))], GAP.stroke_width(1))),
        )?;
        chart.draw_series(DashedLineSeries::new([(0.0, 0.0), (1.0, 1.0)], 8, 5, BLACK.mix(0.7).stroke_width(2)))?;
        let entries = [
            (Mark::Box(BAR), "Accuracy".to_string()),
            (Mark::Box(GAP), "Gap to mean confidence".to_string()),
            (Mark::Dashed(BLACK), "Perfect calibration".to_string()),
        ];
        legend(&chart.plotting_area().strip_coord_spec(), &entries, Corner::TopLeft)
    }
}

// ---------------------------------------------------------------------------------------
// Uncertainty maps.

/// Cell edges around strictly increasing finite centres (midpoints; the outer cells are
/// symmetric about their centre; a single centre gets a cell of width 1).
fn cell_edges(c: &[f64]) -> Result<Vec<f64>> {
    ensure!(!c.is_empty(), "no grid coordinates");
    ensure!(c.iter().all(|v| v.is_finite()), "non-finite grid coordinate");
    ensure!(c.windows(2).all(|w| w[0] < w[1]), "grid coordinates are not strictly increasing");
    let n = c.len();
    if n == 1 {
        return Ok(vec![c[0] - 0.5, c[0] + 0.5]);
    }
    let mut e = Vec::with_capacity(n + 1);
    e.push(c[0] - (c[1] - c[0]) / 2.0);
    e.extend(c.windows(2).map(|w| (w[0] + w[1]) / 2.0));
    e.push(c[n - 1] + (c[n - 1] - c[n - 2]) / 2.0);
    Ok(e)
}

/// Index of the cell containing `v` (clamped to the outer cells).
fn cell_of(edges: &[f64], v: f64) -> usize {
    let n = edges.len() - 1;
    edges[1..n].partition_point(|&e| e <= v)
}

struct MapsFigure<'a> {
    title: String,
    x_edges: Vec<f64>,
    y_edges: Vec<f64>,
    panels: &'a [MapPanel],
    columns: usize,
    points: &'a [(f64, f64, u8)],
}

const PANEL_W: u32 = 400;
const PANEL_H: u32 = 370;
const COLOUR_BAR_W: u32 = 80;

impl MapsFigure<'_> {
    fn grid(&self) -> (usize, usize) {
        let columns = self.columns.min(self.panels.len());
        (self.panels.len().div_ceil(columns), columns)
    }

    fn panel<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>, panel: &MapPanel) -> DrawResult<(), DB> {
        let (x0, x1) = (self.x_edges[0], *self.x_edges.last().unwrap_or(&1.0));
        let (y0, y1) = (self.y_edges[0], *self.y_edges.last().unwrap_or(&1.0));
        let finite = || panel.values.iter().copied().filter(|v| v.is_finite());
        let (lo, hi) = (finite().fold(f64::INFINITY, f64::min), finite().fold(f64::NEG_INFINITY, f64::max));
        let (lo, hi) = if lo <= hi { padded_range(lo, hi) } else { (0.0, 1.0) };
        let colour = |v: f64| if v.is_finite() { viridis((v - lo) / (hi - lo)) } else { MISSING };

        let area = area.titled(&panel.title, text(16.0))?;
        let (map_area, bar_area) = area.split_horizontally(area.dim_in_pixel().0.saturating_sub(COLOUR_BAR_W));
        let mut chart = ChartBuilder::on(&map_area)
            .margin(6)
            .x_label_area_size(26)
            .y_label_area_size(40)
            .build_cartesian_2d(x0..x1, y0..y1)?;
        // The heat map: each pixel takes the value of the grid cell under its centre.
        let plot = chart.plotting_area().strip_coord_spec();
        let (w, h) = plot.dim_in_pixel();
        if w > 0 && h > 0 {
            let nx = self.x_edges.len() - 1;
            let cols: Vec<usize> =
                (0..w).map(|c| cell_of(&self.x_edges, x0 + (c as f64 + 0.5) / w as f64 * (x1 - x0))).collect();
            let mut rgb = Vec::with_capacity(w as usize * h as usize * 3);
            for r in 0..h {
                let j = cell_of(&self.y_edges, y1 - (r as f64 + 0.5) / h as f64 * (y1 - y0));
                for &i in &cols {
                    let c = colour(panel.values[j * nx + i]);
                    rgb.extend([c.0, c.1, c.2]);
                }
            }
            if let Some(image) = BitMapElement::with_owned_buffer((0, 0), (w, h), rgb) {
                plot.draw(&image)?;
            }
        }
        let (x_ticks, y_ticks) = (ticks(x0, x1, 5), ticks(y0, y1, 5));
        chart
            .configure_mesh()
            .disable_mesh()
            .x_labels(5)
            .y_labels(5)
            .label_style(text(12.0))
            .x_label_formatter(&x_ticks)
            .y_label_formatter(&y_ticks)
            .draw()?;
        let inside = |x: f64, y: f64| (x0..=x1).contains(&x) && (y0..=y1).contains(&y);
        let dots = self.points.iter().filter(|&&(x, y, _)| inside(x, y));
        chart.draw_series(dots.clone().map(|&(x, y, _)| Circle::new((x, y), 3, BLACK.filled())))?;
        chart.draw_series(
            dots.map(|&(x, y, class)| Circle::new((x, y), 2, CLASS_COLOURS[class as usize % CLASS_COLOURS.len()].filled())),
        )?;

        // Colour bar with its own axis.
        let mut bar = ChartBuilder::on(&bar_area)
            .margin(6)
            .margin_left(8)
            .x_label_area_size(26)
            .right_y_label_area_size(52)
            .build_cartesian_2d(0f64..1f64, lo..hi)?;
        let plot = bar.plotting_area().strip_coord_spec();
        let (w, h) = plot.dim_in_pixel();
        if w > 0 && h > 0 {
            let mut rgb = Vec::with_capacity(w as usize * h as usize * 3);
            for r in 0..h {
                let c = colour(hi - (r as f64 + 0.5) / h as f64 * (hi - lo));
                for _ in 0..w {
                    rgb.extend([c.0, c.1, c.2]);
                }
            }
            if let Some(image) = BitMapElement::with_owned_buffer((0, 0), (w, h), rgb) {
                plot.draw(&image)?;
            }
        }
        let bar_ticks = ticks(lo, hi, 6);
        bar.configure_mesh()
            .disable_mesh()
            .disable_x_axis()
            .y_labels(6)
            .set_tick_mark_size(LabelAreaPosition::Right, 3)
            .label_style(text(12.0))
            .y_label_formatter(&bar_ticks)
            .draw()?;
        Ok(())
    }
}

impl Figure for MapsFigure<'_> {
    fn size(&self) -> (u32, u32) {
        let (rows, columns) = self.grid();
        (columns as u32 * PANEL_W, rows as u32 * PANEL_H + 50)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<(), DB> {
        let area = root.titled(&self.title, text(22.0))?;
        let cells = area.split_evenly(self.grid());
        for (cell, panel) in cells.iter().zip(self.panels) {
            self.panel(cell, panel)?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// Histograms.

struct HistogramFigure {
    title: String,
    x_label: String,
    lo: f64,
    hi: f64,
    densities: Vec<SeriesDensity>,
}

impl Figure for HistogramFigure {
    fn size(&self) -> (u32, u32) {
        (760, 500)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<(), DB> {
        let top = self.densities.iter().flat_map(|(_, d)| d.iter().copied()).fold(0.0, f64::max);
        let top = if top > 0.0 { top * 1.25 } else { 1.0 }; // headroom for the legend
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, text(20.0))
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(65)
            .build_cartesian_2d(self.lo..self.hi, 0f64..top)?;
        let (x_ticks, y_ticks) = (ticks(self.lo, self.hi, 10), ticks(0.0, top, 8));
        chart
            .configure_mesh()
            .x_desc(self.x_label.as_str())
            .y_desc("Density")
            .x_labels(10)
            .y_labels(8)
            .label_style(text(14.0))
            .axis_desc_style(text(16.0))
            .light_line_style(TRANSPARENT)
            .bold_line_style(BLACK.mix(0.08))
            .x_label_formatter(&x_ticks)
            .y_label_formatter(&y_ticks)
            .draw()?;
        let mut entries = Vec::new();
        for (k, (label, density)) in self.densities.iter().enumerate() {
            let colour = PALETTE[k % PALETTE.len()];
            let width = (self.hi - self.lo) / density.len() as f64;
            let edge = |b: usize| self.lo + b as f64 * width;
            chart.draw_series(
                density
                    .iter()
                    .enumerate()
                    .filter(|&(_, &d)| d > 0.0)
                    .map(|(b, &d)| Rectangle::new([(edge(b), 0.0), (edge(b + 1), d)], colour.mix(0.25).filled())),
            )?;
            let mut step = vec![(edge(0), 0.0)];
            for (b, &d) in density.iter().enumerate() {
                step.push((edge(b), d));
                step.push((edge(b + 1), d));
            }
            step.push((self.hi, 0.0));
            chart.draw_series(LineSeries::new(step, colour.stroke_width(2)))?;
            entries.push((Mark::Box(colour), label.clone()));
        }
        legend(&chart.plotting_area().strip_coord_spec(), &entries, Corner::TopRight)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh empty directory under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> Self {
            use std::sync::atomic::{AtomicUsize, Ordering};
            static N: AtomicUsize = AtomicUsize::new(0);
            let n = N.fetch_add(1, Ordering::Relaxed);
            let dir = std::env::temp_dir().join(format!("distillery-plots-{name}-{}-{n}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            Self(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// Decoded RGB pixels of `<stem>.png` after checking signature and size.
    fn read_png(stem: &Path, size: (u32, u32)) -> Vec<u8> {
        let bytes = std::fs::read(with_suffix(stem, "png")).unwrap();
        assert!(bytes.starts_with(&[0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a]), "PNG signature");
        let mut reader = png::Decoder::new(std::io::Cursor::new(bytes)).read_info().unwrap();
        assert_eq!((reader.info().width, reader.info().height), size);
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let frame = reader.next_frame(&mut buf).unwrap();
        assert_eq!((frame.color_type, frame.bit_depth), (png::ColorType::Rgb, png::BitDepth::Eight));
        buf.truncate(frame.buffer_size());
        buf
    }

    fn has_pixel(rgb: &[u8], c: RGBColor) -> bool {
        rgb.chunks_exact(3).any(|p| p == [c.0, c.1, c.2])
    }

    fn count_pixels(rgb: &[u8], pred: impl Fn(&[u8]) -> bool) -> usize {
        rgb.chunks_exact(3).filter(|p| pred(p)).count()
    }

    fn read_svg(stem: &Path, title: &str, size: (u32, u32)) -> String {
        let svg = std::fs::read_to_string(with_suffix(stem, "svg")).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..svg.len().min(200)]);
        assert!(svg.contains(&format!("width=\"{}\" height=\"{}\"", size.0, size.1)));
        assert!(svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains(title), "title {title:?} missing");
        assert!(!svg.contains("@@distillery-plots-image"), "image placeholder left");
        svg
    }

    fn no_temp_files(dir: &Path) {
        for e in std::fs::read_dir(dir).unwrap() {
            let name = e.unwrap().file_name();
            assert!(!name.to_string_lossy().contains(".tmp-"), "temp file {name:?} left");
        }
    }

    fn reliability_bins() -> (Vec<ReliabilityBin>, f64) {
        let p = metrics::Predictions::new(
            vec![0.5, 0.5, 0.625, 0.375, 0.75, 0.25, 0.125, 0.875, 1.0, 0.0, 0.95, 0.05],
            6,
            2,
        )
        .unwrap();
        let r = metrics::reliability(&p, &[0, 1, 0, 1, 0, 1], 10).unwrap();
        (r.bins, r.ece)
    }

    #[test]
    fn reliability_diagram_writes_png_and_svg() {
        let dir = TempDir::new("reliability");
        let stem = dir.0.join("sub").join("reliability.test");
        let (bins, ece) = reliability_bins();
        reliability_diagram_with(&stem, "Ensemble CIFAR-10", &bins, Some(ece), None).unwrap();
        let svg = read_svg(&stem, "Ensemble CIFAR-10", (640, 600));
        assert!(svg.contains(&format!("ECE = {:.2}%", 100.0 * ece)), "ECE missing");
        assert!(svg.contains("Perfect calibration") && svg.contains("Confidence") && svg.contains("Accuracy"));
        // One filled bar per non-empty bin, plus the legend swatch (BAR at 0.6 opacity there).
        let non_empty = bins.iter().filter(|b| b.count > 0).count();
        assert_eq!(non_empty, 5);
        let bar_fill = "opacity=\"0.85\" fill=\"#3182BD\"";
        assert_eq!(svg.matches(bar_fill).count(), non_empty, "bars in\n{svg}");
        let rgb = read_png(&stem, (640, 600));
        assert!(has_pixel(&rgb, WHITE));
        // Text was rasterised: grey anti-aliased pixels, beyond the bar/gap colours.
        assert!(count_pixels(&rgb, |p| p[0] == p[1] && p[1] == p[2] && p[0] > 20 && p[0] < 200) > 100);
        // The bars: BAR at 85 % over white.
        let blend = |c: u8| (0.85 * f64::from(c) + 0.15 * 255.0) as u8;
        let bar = RGBColor(blend(BAR.0), blend(BAR.1), blend(BAR.2));
        assert!(count_pixels(&rgb, |p| p.iter().zip([bar.0, bar.1, bar.2]).all(|(&a, b)| a.abs_diff(b) <= 1)) > 1000);
        no_temp_files(stem.parent().unwrap());
        // Without ECE the title is as given.
        reliability_diagram_with(&stem, "Without score", &bins, None, None).unwrap();
        let svg = read_svg(&stem, "Without score", (640, 600));
        assert!(!svg.contains("ECE ="));
    }

    #[test]
    fn reliability_diagram_rejects_bad_input() {
        let dir = TempDir::new("reliability-bad");
        let stem = dir.0.join("r");
        let e = reliability_diagram_with(&stem, "t", &[], None, None).unwrap_err();
        assert!(e.to_string().contains("no bins"), "{e}");
        let (bins, _) = reliability_bins();
        let e = reliability_diagram_with(&stem, "t", &bins, Some(f64::NAN), None).unwrap_err();
        assert!(e.to_string().contains("ECE"), "{e}");
        assert!(!with_suffix(&stem, "svg").exists() && !with_suffix(&stem, "png").exists());
    }

    struct Grid {
        xs: Vec<f64>,
        ys: Vec<f64>,
        panels: Vec<MapPanel>,
        points: Vec<(f64, f64, u8)>,
    }

    fn spiral_grid(n: usize) -> Grid {
        let xs: Vec<f64> = (0..n).map(|i| -2.0 + 4.0 * i as f64 / (n - 1) as f64).collect();
        let ys: Vec<f64> = (0..n - 3).map(|j| -1.0 + 2.0 * j as f64 / (n - 4) as f64).collect();
        let panel = |title: &str, f: &dyn Fn(f64, f64) -> f64| MapPanel {
            title: title.to_string(),
            values: ys.iter().flat_map(|&y| xs.iter().map(move |&x| f(x, y))).collect(),
        };
        let panels = vec![
            panel("ensemble TU", &|x, y| x * x + y * y),
            panel("ensemble DU", &|x, _| x.sin()),
            panel("ensemble MI", &|x, y| (x * y).exp() * 1e-3),
            panel("EnD2 TU", &|_, _| 0.25),
            panel("EnD2 DU", &|x, y| if x > 0.0 && y > 0.0 { f64::NAN } else { x }),
        ];
        let points = (0..60).map(|k| (-1.8 + 0.06 * k as f64, 0.5 * (k as f64 * 0.3).sin(), (k % 3) as u8)).collect();
        Grid { xs, ys, panels, points }
    }

    #[test]
    fn uncertainty_maps_write_png_and_svg() {
        let dir = TempDir::new("maps");
        let stem = dir.0.join("maps");
        let Grid { xs, ys, panels, points } = spiral_grid(31);
        uncertainty_maps_with(&stem, "Spirals uncertainty", &xs, &ys, &panels, 3, &points, None).unwrap();
        let size = (3 * PANEL_W, 2 * PANEL_H + 50);
        let svg = read_svg(&stem, "Spirals uncertainty", size);
        for p in &panels {
            assert!(svg.contains(&p.title), "panel title {:?} missing", p.title);
        }
        // A heat map and a colour bar per panel, embedded as PNG images.
        assert_eq!(svg.matches("<image ").count(), 2 * panels.len());
        assert_eq!(svg.matches("href=\"data:image/png;base64,iVBORw0KGgo").count(), 2 * panels.len());
        // 60 dots per panel, each a black outline and a coloured centre.
        assert_eq!(svg.matches("<circle").count(), 2 * 60 * panels.len());
        let rgb = read_png(&stem, size);
        // Both ends of the colour scale, the missing-value grey and the class dots are drawn.
        assert!(has_pixel(&rgb, viridis(0.0)) && has_pixel(&rgb, viridis(1.0)));
        assert!(count_pixels(&rgb, |p| p == [MISSING.0, MISSING.1, MISSING.2]) > 1000);
        for c in &CLASS_COLOURS[..3] {
            assert!(has_pixel(&rgb, *c), "class colour {c:?} missing");
        }
        no_temp_files(&dir.0);
    }

    #[test]
    fn uncertainty_maps_reject_bad_input() {
        let dir = TempDir::new("maps-bad");
        let stem = dir.0.join("maps");
        let Grid { xs, ys, mut panels, .. } = spiral_grid(9);
        let e = uncertainty_maps_with(&stem, "t", &xs, &ys, &panels, 0, &[], None).unwrap_err();
        assert!(e.to_string().contains("columns = 0"), "{e}");
        let rev: Vec<f64> = xs.iter().rev().copied().collect();
        let e = uncertainty_maps_with(&stem, "t", &rev, &ys, &panels, 2, &[], None).unwrap_err();
        assert!(format!("{e:#}").contains("xs: grid coordinates are not strictly increasing"), "{e:#}");
        panels[1].values.pop();
        let e = uncertainty_maps_with(&stem, "t", &xs, &ys, &panels, 2, &[], None).unwrap_err();
        assert!(e.to_string().contains("\"ensemble DU\" has 53 values, expected ys.len() × xs.len() = 6 × 9 = 54"), "{e}");
        assert!(!with_suffix(&stem, "svg").exists());
    }

    #[test]
    fn histograms_write_png_and_svg() {
        let dir = TempDir::new("hist");
        let stem = dir.0.join("ood-hist");
        let ind: Vec<f64> = (0..500).map(|i| (i as f64 / 500.0).powi(3)).collect();
        let mut ood: Vec<f64> = (0..200).map(|i| 0.5 + i as f64 / 400.0).collect();
        ood.push(f64::NAN);
        let series = vec![("in-distribution".to_string(), ind), ("OOD".to_string(), ood)];
        histograms_with(&stem, "Mutual information", &series, 30, "MI (nats)", None).unwrap();
        let svg = read_svg(&stem, "Mutual information", (760, 500));
        assert!(svg.contains("in-distribution (n = 500)") && svg.contains("OOD (n = 200)"), "legend");
        assert!(svg.contains("MI (nats)") && svg.contains("Density"));
        let rgb = read_png(&stem, (760, 500));
        assert!(has_pixel(&rgb, PALETTE[0]) && has_pixel(&rgb, PALETTE[1]), "step outlines");
        no_temp_files(&dir.0);

        let e = histograms_with(&stem, "t", &series, 0, "x", None).unwrap_err();
        assert!(e.to_string().contains("bins = 0"), "{e}");
        let e = histograms_with(&stem, "t", &[("a".into(), vec![f64::NAN])], 5, "x", None).unwrap_err();
        assert!(format!("{e:#}").contains("no finite value in any series"), "{e:#}");
    }

    #[test]
    fn histogram_densities_by_hand() {
        // Range [0, 3], 3 bins of width 1 (the maximum falls into the last bin).
        let series = vec![
            ("a".to_string(), vec![0.0, 1.0, 1.5, 3.0, f64::INFINITY]),
            ("b".to_string(), vec![2.0]),
            ("c".to_string(), vec![f64::NAN]),
        ];
        let (lo, hi, d) = densities(&series, 3).unwrap();
        assert_eq!((lo, hi), (0.0, 3.0));
        assert_eq!(d[0], ("a (n = 4)".to_string(), vec![0.25, 0.5, 0.25]));
        assert_eq!(d[1], ("b (n = 1)".to_string(), vec![0.0, 0.0, 1.0]));
        assert_eq!(d[2], ("c (n = 0)".to_string(), vec![0.0, 0.0, 0.0]));
        // A single distinct value: the range is widened, the density still has unit area.
        let (lo, hi, d) = densities(&[("k".to_string(), vec![2.0, 2.0])], 4).unwrap();
        assert_eq!((lo, hi), (1.9, 2.1));
        let area: f64 = d[0].1.iter().map(|v| v * (hi - lo) / 4.0).sum();
        assert!((area - 1.0).abs() < 1e-12, "{area}");
    }

    #[test]
    fn missing_font_writes_svg_and_names_the_path() {
        let dir = TempDir::new("nofont");
        let stem = dir.0.join("r");
        let missing = dir.0.join("no-such-font.ttf");
        let (bins, ece) = reliability_bins();
        let e = reliability_diagram_with(&stem, "no font", &bins, Some(ece), Some(&missing)).unwrap_err();
        let msg = format!("{e:#}");
        assert!(msg.contains(&missing.display().to_string()), "{msg}");
        assert!(msg.contains("fonts-dejavu-core") && msg.contains(FONT_ENV), "{msg}");
        read_svg(&stem, "no font", (640, 600));
        assert!(!with_suffix(&stem, "png").exists());
        no_temp_files(&dir.0);
    }

    #[test]
    fn no_candidate_font_names_every_path() {
        let e = resolve_font(None, &["/nonexistent/a.ttf", "/nonexistent/b.ttf"]).unwrap_err().to_string();
        assert!(e.contains("/nonexistent/a.ttf, /nonexistent/b.ttf"), "{e}");
        assert!(e.contains("fonts-dejavu-core") && e.contains(FONT_ENV), "{e}");
        let first = resolve_font(None, FONT_CANDIDATES).unwrap();
        assert_eq!(resolve_font(Some(&first), &[]).unwrap(), first);
    }

    #[test]
    fn invalid_font_file_is_an_error() {
        let dir = TempDir::new("badfont");
        let bad = dir.0.join("bad.ttf");
        std::fs::write(&bad, b"not a font").unwrap();
        let e = register_font(&bad).unwrap_err().to_string();
        assert!(e.contains("bad.ttf") && e.contains("not a TrueType"), "{e}");
    }

    #[test]
    fn base64_matches_rfc4648() {
        for (raw, enc) in [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg=="), ("foobar", "Zm9vYmFy")] {
            assert_eq!(base64(raw.as_bytes()), enc);
        }
        assert_eq!(base64(&[0xff, 0xfe, 0xfd]), "//79");
    }

    #[test]
    fn cells_and_ticks() {
        let e = cell_edges(&[0.0, 1.0, 3.0]).unwrap();
        assert_eq!(e, [-0.5, 0.5, 2.0, 4.0]);
        assert_eq!([-9.0, 0.4, 0.5, 1.9, 2.0, 9.0].map(|v| cell_of(&e, v)), [0, 0, 1, 1, 2, 2]);
        assert_eq!(cell_edges(&[2.0]).unwrap(), [1.5, 2.5]);
        assert_eq!((viridis(-1.0), viridis(0.0), viridis(1.0)), (RGBColor(68, 1, 84), RGBColor(68, 1, 84), RGBColor(254, 232, 37)));
        assert_eq!(viridis(0.5 / 7.0), RGBColor(69, 26, 106));
        assert!(cell_edges(&[]).is_err() && cell_edges(&[1.0, 1.0]).is_err());
        let t = ticks(0.0, 0.9975, 10); // step 0.1: one decimal
        assert_eq!([0.0, 0.1, 0.9].map(|v| t(&v)), ["0.0", "0.1", "0.9"]);
        let t = ticks(0.0, 1.0, 5); // step 0.2: one decimal
        assert_eq!([0.0, 0.4, 1.0, -1e-17].map(|v| t(&v)), ["0.0", "0.4", "1.0", "0.0"]);
        let t = ticks(0.0, 12.5, 6); // step ≈ 2: integers
        assert_eq!([0.0, 2.0, 12.0].map(|v| t(&v)), ["0", "2", "12"]);
        let t = ticks(0.2375, 0.2625, 6); // step ≈ 0.004: three decimals
        assert_eq!(t(&0.245), "0.245");
        let t = ticks(0.0, 0.006, 6); // all below 0.01: scientific, zero plain
        assert_eq!([0.0, 0.002].map(|v| t(&v)), ["0.000", "2.0e-3"]);
    }
}
