#include "report/svg_plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

namespace disranker {
namespace {

// The layout of every plot, in SVG user units. The plot area leaves room for the title above, the x label
// and tick labels below, the y label and tick labels on the left and the legend on the right.
constexpr double kWidth = 720;
constexpr double kHeight = 420;
constexpr double kLeft = 76;
constexpr double kRight = 530;
constexpr double kTop = 44;
constexpr double kBottom = 360;
constexpr double kLegendX = 546;
constexpr double kLegendRow = 18;
constexpr std::size_t kLegendMaxRows = 16;
constexpr std::size_t kLegendMaxChars = 22;  // longer names are cut with an ellipsis (11-unit font)
// Up to this many points a line also gets a marker at each point (an ablation sweep, not a training curve).
constexpr std::size_t kMarkersUpTo = 30;

// Tableau 10: distinct and readable on white. Series beyond ten reuse the colours with a dash pattern.
constexpr const char* kColours[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
constexpr std::size_t kColourCount = sizeof kColours / sizeof kColours[0];
constexpr const char* kDashes[] = {"", "6 3", "2 2", "8 3 2 3"};
constexpr std::size_t kDashCount = sizeof kDashes / sizeof kDashes[0];

const char* colour(std::size_t index) {
  return kColours[index % kColourCount];
}
const char* dash(std::size_t index) {
  return kDashes[(index / kColourCount) % kDashCount];
}

// A coordinate: two decimals are far below a pixel and keep the files small.
std::string fmt(double value) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.2f", value);
  return buffer;
}

bool is_continuation_byte(char c) {
  return (static_cast<unsigned char>(c) & 0xC0) == 0x80;
}

// The number of characters (code points) of UTF-8 text.
std::size_t char_count(const std::string& text) {
  std::size_t count = 0;
  for (const char c : text) count += !is_continuation_byte(c);
  return count;
}

// At most `max_chars` characters of `text`, ending in "…" when cut; never splits a UTF-8 sequence.
std::string shorten(const std::string& text, std::size_t max_chars) {
  if (char_count(text) <= max_chars) return text;
  if (max_chars == 0) return "";
  std::size_t kept = 0;  // keep max_chars - 1 characters, then the ellipsis
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (is_continuation_byte(text[i])) continue;
    if (kept == max_chars - 1) return text.substr(0, i) + "\xE2\x80\xA6";
    ++kept;
  }
  return text;
}

bool drawable(double x, double y, bool log_x) {
  return std::isfinite(x) && std::isfinite(y) && (!log_x || x > 0);
}

// The smallest and largest drawable coordinates, or nothing drawable (min > max).
struct Extent {
  double x_min = std::numeric_limits<double>::infinity();
  double x_max = -std::numeric_limits<double>::infinity();
  double y_min = std::numeric_limits<double>::infinity();
  double y_max = -std::numeric_limits<double>::infinity();

  bool x_integer = true;  // every x is a whole number

  void add(double x, double y) {
    x_integer = x_integer && x == std::round(x);
    x_min = std::min(x_min, x);
    x_max = std::max(x_max, x);
    y_min = std::min(y_min, y);
    y_max = std::max(y_max, y);
  }
  bool empty() const { return x_min > x_max; }
};

// A <text> element that fits in `max_width` units: the font shrinks from `size` down to 9 units, and text
// still too long is cut with an ellipsis. The width is estimated at 0.6 em per character (about the average
// of DejaVu Sans, a wide default sans-serif), so labels of any length stay inside the picture.
std::string fitted_text(const std::string& placement, const std::string& text, double max_width, double size,
                        const std::string& attributes = "") {
  constexpr double kEm = 0.6;
  constexpr double kMinSize = 9;
  const auto chars = static_cast<double>(std::max<std::size_t>(char_count(text), 1));
  const double fitted = std::max(kMinSize, std::min(size, max_width / (kEm * chars)));
  const auto max_chars = static_cast<std::size_t>(max_width / (kEm * fitted));
  char font[32];
  std::snprintf(font, sizeof font, "%g", std::round(fitted * 10) / 10);
  return "<text " + placement + " text-anchor=\"middle\" font-size=\"" + font + "\"" + attributes + ">" +
         xml_escape(shorten(text, max_chars)) + "</text>\n";
}

std::string svg_open(const std::string& title) {
  const std::string width = std::to_string(static_cast<int>(kWidth));
  const std::string height = std::to_string(static_cast<int>(kHeight));
  std::string out = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + width + "\" height=\"" + height +
                    "\" viewBox=\"0 0 " + width + " " + height +
                    "\" font-family=\"sans-serif\" font-size=\"12\">\n";
  out += "<title>" + xml_escape(title) + "</title>\n";
  out += "<rect width=\"" + width + "\" height=\"" + height + "\" fill=\"white\"/>\n";
  // Centred over the plot area, and allowed to run to 8 units from the picture's left edge on both sides.
  const double centre = (kLeft + kRight) / 2;
  out +=
      fitted_text("x=\"" + fmt(centre) + "\" y=\"26\"", title, 2 * (centre - 8), 15, " font-weight=\"bold\"");
  return out;
}

std::string axis_labels(const std::string& x_label, const std::string& y_label) {
  std::string out;
  const double x_centre = (kLeft + kRight) / 2;
  const double y_centre = (kTop + kBottom) / 2;
  if (!x_label.empty()) {
    out += fitted_text("x=\"" + fmt(x_centre) + "\" y=\"" + fmt(kHeight - 18) + "\"", x_label,
                       2 * (x_centre - 8), 12);
  }
  if (!y_label.empty()) {
    out += fitted_text("transform=\"translate(20 " + fmt(y_centre) + ") rotate(-90)\"", y_label,
                       2 * (y_centre - 8), 12);
  }
  return out;
}

std::string frame() {
  return "<rect x=\"" + fmt(kLeft) + "\" y=\"" + fmt(kTop) + "\" width=\"" + fmt(kRight - kLeft) +
         "\" height=\"" + fmt(kBottom - kTop) + "\" fill=\"none\" stroke=\"#333\"/>\n";
}

// The label text of each tick of an axis: a log axis names its values as they are; a linear one uses the
// decimals its step needs.
std::vector<std::string> tick_texts(const Axis& axis, const std::vector<double>& ticks) {
  std::vector<std::string> texts;
  const double step = ticks.size() > 1 ? ticks[1] - ticks[0] : 1.0;
  for (const double tick : ticks) {
    if (axis.log) {
      char buffer[32];
      std::snprintf(buffer, sizeof buffer, "%g", tick);
      texts.emplace_back(buffer);
    } else {
      texts.push_back(tick_label(tick, step));
    }
  }
  return texts;
}

// Grid lines, tick marks and tick labels of both axes.
std::string ticks_and_grid(const Axis& x_axis, const Axis& y_axis) {
  std::string out = "<g stroke=\"#ddd\">\n";
  const auto x_ticks = x_axis.ticks();
  const auto y_ticks = y_axis.ticks();
  for (const double tick : x_ticks) {
    const std::string px = fmt(x_axis.to_pixel(tick));
    out +=
        "<line x1=\"" + px + "\" y1=\"" + fmt(kTop) + "\" x2=\"" + px + "\" y2=\"" + fmt(kBottom) + "\"/>\n";
  }
  for (const double tick : y_ticks) {
    const std::string py = fmt(y_axis.to_pixel(tick));
    out +=
        "<line x1=\"" + fmt(kLeft) + "\" y1=\"" + py + "\" x2=\"" + fmt(kRight) + "\" y2=\"" + py + "\"/>\n";
  }
  out += "</g>\n<g stroke=\"#333\">\n";
  for (const double tick : x_ticks) {
    const std::string px = fmt(x_axis.to_pixel(tick));
    out += "<line x1=\"" + px + "\" y1=\"" + fmt(kBottom) + "\" x2=\"" + px + "\" y2=\"" + fmt(kBottom + 5) +
           "\"/>\n";
  }
  for (const double tick : y_ticks) {
    const std::string py = fmt(y_axis.to_pixel(tick));
    out += "<line x1=\"" + fmt(kLeft - 5) + "\" y1=\"" + py + "\" x2=\"" + fmt(kLeft) + "\" y2=\"" + py +
           "\"/>\n";
  }
  out += "</g>\n<g fill=\"#333\">\n";
  const auto x_texts = tick_texts(x_axis, x_ticks);
  for (std::size_t i = 0; i < x_ticks.size(); ++i) {
    out += "<text x=\"" + fmt(x_axis.to_pixel(x_ticks[i])) + "\" y=\"" + fmt(kBottom + 19) +
           "\" text-anchor=\"middle\">" + xml_escape(x_texts[i]) + "</text>\n";
  }
  const auto y_texts = tick_texts(y_axis, y_ticks);
  for (std::size_t i = 0; i < y_ticks.size(); ++i) {
    out += "<text x=\"" + fmt(kLeft - 8) + "\" y=\"" + fmt(y_axis.to_pixel(y_ticks[i])) +
           "\" dy=\"0.32em\" text-anchor=\"end\">" + xml_escape(y_texts[i]) + "</text>\n";
  }
  return out + "</g>\n";
}

std::string no_data() {
  return "<text x=\"" + fmt((kLeft + kRight) / 2) + "\" y=\"" + fmt((kTop + kBottom) / 2) +
         "\" text-anchor=\"middle\" fill=\"#777\" font-size=\"16\">no data</text>\n";
}

std::string marker(double px, double py, const char* fill) {
  return "<circle cx=\"" + fmt(px) + "\" cy=\"" + fmt(py) + "\" r=\"3.5\" fill=\"" + fill + "\"/>\n";
}

// One legend row per entry, right of the plot area: a short line in the entry's colour (and dash), a
// marker, and the name.
std::string legend(const std::vector<std::string>& names, bool with_lines) {
  std::string out;
  for (std::size_t i = 0; i < names.size(); ++i) {
    const double y = kTop + 8 + kLegendRow * static_cast<double>(i);
    if (i == kLegendMaxRows) {
      out += "<text x=\"" + fmt(kLegendX) + "\" y=\"" + fmt(y) +
             "\" dy=\"0.32em\" fill=\"#555\">\xE2\x80\xA6 " + std::to_string(names.size() - i) +
             " more</text>\n";
      break;
    }
    if (with_lines) {
      out += "<line x1=\"" + fmt(kLegendX) + "\" y1=\"" + fmt(y) + "\" x2=\"" + fmt(kLegendX + 20) +
             "\" y2=\"" + fmt(y) + "\" stroke=\"" + colour(i) + "\" stroke-width=\"2\"";
      if (*dash(i) != '\0') out += std::string(" stroke-dasharray=\"") + dash(i) + "\"";
      out += "/>\n";
    }
    out += marker(kLegendX + 10, y, colour(i));
    out += "<text x=\"" + fmt(kLegendX + 26) + "\" y=\"" + fmt(y) + "\" dy=\"0.32em\" font-size=\"11\">" +
           xml_escape(shorten(names[i], kLegendMaxChars)) + "</text>\n";
  }
  return out;
}

}  // namespace

std::string xml_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      default:
        // XML 1.0 allows no control characters but tab, newline and carriage return, not even escaped.
        if (static_cast<unsigned char>(c) < 0x20 && c != '\t' && c != '\n' && c != '\r') break;
        out += c;
    }
  }
  return out;
}

std::vector<double> nice_ticks(double lo, double hi, int target) {
  std::vector<double> ticks;
  if (!(lo < hi) || !std::isfinite(lo) || !std::isfinite(hi)) return ticks;
  const double raw = (hi - lo) / std::max(target, 1);
  const int exponent = static_cast<int>(std::floor(std::log10(raw)));
  const double normalized = raw / std::pow(10.0, exponent);
  // Round the raw step to 1, 2, 5 or 10 (Heckbert's "nice numbers"): the tick count stays near the target.
  double nice = 10;
  if (normalized < 1.5) {
    nice = 1;
  } else if (normalized < 3) {
    nice = 2;
  } else if (normalized < 7) {
    nice = 5;
  }
  const double step = nice * std::pow(10.0, exponent);
  // Tick i is i * nice * 10^exponent; dividing by an exact power of ten (rather than multiplying by 0.1..)
  // gives the correctly rounded decimal, so 3 * 0.2 is 0.6 and not 0.6000000000000001.
  const double scale = std::pow(10.0, std::abs(exponent));
  const auto first = static_cast<long long>(std::ceil(lo / step - 1e-9));
  const auto last = static_cast<long long>(std::floor(hi / step + 1e-9));
  for (long long i = first; i <= last; ++i) {
    const double units = static_cast<double>(i) * nice;
    ticks.push_back(exponent < 0 ? units / scale : units * scale);
  }
  return ticks;
}

std::vector<double> log_ticks(double lo, double hi) {
  std::vector<double> ticks;
  if (!(lo > 0 && lo < hi) || !std::isfinite(hi)) return ticks;
  const int first = static_cast<int>(std::floor(std::log10(lo)));
  const int last = static_cast<int>(std::floor(std::log10(hi)));
  auto inside = [&](double v) { return v >= lo * (1 - 1e-12) && v <= hi * (1 + 1e-12); };
  for (int k = first; k <= last; ++k) {
    if (inside(std::pow(10.0, k))) ticks.push_back(std::pow(10.0, k));
  }
  if (ticks.size() >= 3) return ticks;
  // A short range: 1, 2, 5 of each decade.
  ticks.clear();
  for (int k = first; k <= last; ++k) {
    for (const double m : {1.0, 2.0, 5.0}) {
      if (inside(m * std::pow(10.0, k))) ticks.push_back(m * std::pow(10.0, k));
    }
  }
  // Less than a factor of two: no round value of that kind inside, so linear ticks.
  if (ticks.size() < 2) ticks = nice_ticks(lo, hi);
  return ticks;
}

std::string tick_label(double value, double step) {
  char buffer[64];
  if (std::abs(value) < std::abs(step) * 1e-9) value = 0;  // never print "-0"
  const double magnitude = std::max(std::abs(value), std::abs(step));
  if (!(step > 0) || magnitude >= 1e7 || step < 1e-6) {
    std::snprintf(buffer, sizeof buffer, "%g", value);
    return buffer;
  }
  const int decimals = std::max(0, static_cast<int>(std::ceil(-std::log10(step) - 1e-9)));
  std::snprintf(buffer, sizeof buffer, "%.*f", decimals, value);
  return buffer;
}

double Axis::to_pixel(double value) const {
  const double v = log ? std::log10(value) : value;
  return pixel_lo + (v - lo) / (hi - lo) * (pixel_hi - pixel_lo);
}

std::vector<double> Axis::ticks() const {
  if (log) return log_ticks(std::pow(10.0, lo), std::pow(10.0, hi));
  std::vector<double> ticks = nice_ticks(lo, hi);
  // Steps, epochs, counts: a tick at 1.5 would name a value that cannot occur.
  if (integer) std::erase_if(ticks, [](double tick) { return tick != std::round(tick); });
  return ticks;
}

Axis make_axis(double data_min, double data_max, double pixel_lo, double pixel_hi, bool log) {
  Axis axis;
  axis.pixel_lo = pixel_lo;
  axis.pixel_hi = pixel_hi;
  axis.log = log;
  double lo = log ? std::log10(data_min) : data_min;
  double hi = log ? std::log10(data_max) : data_max;
  if (lo == hi) {
    // One value: a range around it, so that it sits in the middle with ticks on both sides.
    double half = 0;
    if (log) {
      half = 0.5;
    } else {
      half = lo == 0 ? 1.0 : std::abs(lo) * 0.1;
    }
    lo -= half;
    hi += half;
  } else {
    const double margin = 0.05 * (hi - lo);
    lo -= margin;
    hi += margin;
  }
  axis.lo = lo;
  axis.hi = hi;
  return axis;
}

// An x–y plot's start, up to its frame: the title, then the ticks and grid of axes over `extent`.
struct XyPlot {
  std::string svg;
  Axis x, y;
};

XyPlot open_xy_plot(const std::string& title, const Extent& extent, bool log_x) {
  XyPlot plot{svg_open(title), make_axis(extent.x_min, extent.x_max, kLeft, kRight, log_x),
              make_axis(extent.y_min, extent.y_max, kBottom, kTop)};
  plot.x.integer = extent.x_integer;
  plot.svg += ticks_and_grid(plot.x, plot.y) + frame();
  return plot;
}

// A plot with nothing drawable: its frame, "no data" and the axis labels.
std::string empty_plot(const std::string& title, const std::string& x_label, const std::string& y_label) {
  return svg_open(title) + frame() + no_data() + axis_labels(x_label, y_label) + "</svg>\n";
}

std::string line_plot_svg(const std::string& title, const std::string& x_label, const std::string& y_label,
                          const std::vector<Series>& series, bool log_x) {
  Extent extent;
  for (const auto& s : series) {
    for (const auto& [x, y] : s.points) {
      if (drawable(x, y, log_x)) extent.add(x, y);
    }
  }
  if (extent.empty()) return empty_plot(title, x_label, y_label);
  auto [out, x_axis, y_axis] = open_xy_plot(title, extent, log_x);
  std::vector<std::string> names;
  for (std::size_t i = 0; i < series.size(); ++i) {
    names.push_back(series[i].name);
    std::vector<std::pair<double, double>> pixels;
    for (const auto& [x, y] : series[i].points) {
      if (drawable(x, y, log_x)) pixels.emplace_back(x_axis.to_pixel(x), y_axis.to_pixel(y));
    }
    if (pixels.size() > 1) {
      out += "<polyline fill=\"none\" stroke=\"" + std::string(colour(i)) +
             "\" stroke-width=\"1.8\" stroke-linejoin=\"round\"";
      if (*dash(i) != '\0') out += std::string(" stroke-dasharray=\"") + dash(i) + "\"";
      out += " points=\"";
      for (std::size_t p = 0; p < pixels.size(); ++p) {
        out += (p > 0 ? " " : "") + fmt(pixels[p].first) + "," + fmt(pixels[p].second);
      }
      out += "\"/>\n";
    }
    if (pixels.size() <= kMarkersUpTo) {
      for (const auto& [px, py] : pixels) out += marker(px, py, colour(i));
    }
  }
  out += legend(names, true);
  return out + axis_labels(x_label, y_label) + "</svg>\n";
}

std::string scatter_plot_svg(const std::string& title, const std::string& x_label, const std::string& y_label,
                             const std::vector<LabeledPoint>& points, bool log_x) {
  Extent extent;
  for (const auto& point : points) {
    if (drawable(point.x, point.y, log_x)) extent.add(point.x, point.y);
  }
  if (extent.empty()) return empty_plot(title, x_label, y_label);
  auto [out, x_axis, y_axis] = open_xy_plot(title, extent, log_x);
  std::vector<std::string> names;
  for (std::size_t i = 0; i < points.size(); ++i) {
    names.push_back(points[i].label);
    if (!drawable(points[i].x, points[i].y, log_x)) continue;
    const double px = x_axis.to_pixel(points[i].x);
    const double py = y_axis.to_pixel(points[i].y);
    out += marker(px, py, colour(i));
    // The name beside its marker, on the side towards the middle so that it stays inside the plot area.
    const bool left_half = px < (kLeft + kRight) / 2;
    out += "<text x=\"" + fmt(left_half ? px + 7 : px - 7) + "\" y=\"" + fmt(py - 7) + "\" text-anchor=\"" +
           (left_half ? "start" : "end") + "\" font-size=\"11\">" +
           xml_escape(shorten(points[i].label, kLegendMaxChars)) + "</text>\n";
  }
  out += legend(names, false);
  return out + axis_labels(x_label, y_label) + "</svg>\n";
}

}  // namespace disranker
