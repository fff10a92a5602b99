// A small SVG writer for the pipeline report: line plots and labelled scatter plots with axes, "nice" ticks,
// axis labels and a legend. No plotting library is available on the machines, and the report needs only
// these two kinds of plot. The output is a standalone <svg> element (no ids, no external fonts), so the
// same markup can be written to a .svg file and inlined into HTML any number of times.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace disranker {

// One line of a line plot: (x, y) points drawn in the given order. NaN or infinite coordinates are skipped
// (and x <= 0 on a logarithmic x axis); a series with a single drawable point is drawn as a marker.
struct Series {
  std::string name;
  std::vector<std::pair<double, double>> points;
};

// One point of a scatter plot, labelled with its name next to the marker and in the legend.
struct LabeledPoint {
  std::string label;
  double x = 0;
  double y = 0;
};

std::string line_plot_svg(const std::string& title, const std::string& x_label, const std::string& y_label,
                          const std::vector<Series>& series, bool log_x = false);

// NaN or infinite coordinates (and x <= 0 on a logarithmic x axis) are not drawn.
std::string scatter_plot_svg(const std::string& title, const std::string& x_label, const std::string& y_label,
                             const std::vector<LabeledPoint>& points, bool log_x = false);

// --- The pieces, exposed for the tests. ---

// Tick values at multiples of a "nice" step (1, 2 or 5 x 10^k) lying inside [lo, hi], about `target` of
// them: 0..0.87 gives 0, 0.2, 0.4, 0.6, 0.8. Requires lo < hi, both finite.
std::vector<double> nice_ticks(double lo, double hi, int target = 5);

// Ticks of a logarithmic axis over [lo, hi] (0 < lo < hi): the powers of ten inside, plus 2x and 5x of them
// when fewer than three powers fall inside.
std::vector<double> log_ticks(double lo, double hi);

// A tick's text: as many decimals as the step between ticks needs (step 0.2 -> "0.4", step 20 -> "40").
std::string tick_label(double value, double step);

// The data range of one axis mapped onto a pixel range. The range is the data's, widened by 5% on each side
// so that no point sits on the frame (a single value gets +-10% of itself, or +-1 around zero).
struct Axis {
  double lo = 0;  // data value at pixel_lo (log10 of it on a log axis)
  double hi = 1;
  double pixel_lo = 0;  // pixel of lo: the left edge (x) or the bottom edge (y, which grows downwards)
  double pixel_hi = 1;
  bool log = false;
  bool integer = false;  // whole-number data (steps, epochs): ticks only at whole numbers

  // The pixel of a data value (linear, or linear in log10 on a log axis).
  double to_pixel(double value) const;
  // The values to put ticks at, inside the range.
  std::vector<double> ticks() const;
};

// An axis covering [data_min, data_max] (the raw data, before the 5% margin) mapped onto [pixel_lo,
// pixel_hi].
Axis make_axis(double data_min, double data_max, double pixel_lo, double pixel_hi, bool log = false);

// Text escaped for XML character data and attribute values (& < > " '); control characters that XML 1.0
// cannot hold are dropped.
std::string xml_escape(std::string_view text);

}  // namespace disranker
