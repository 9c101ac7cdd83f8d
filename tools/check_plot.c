/*
  `carry check --plot`: a PNG per case with cairo.  The top panel overlays
  the expected and the actual waveform, the bottom one shows their
  difference on its own scale, both over time, so that a person sees where
  and how a rendering goes wrong.  Each pixel column shows the minimum and
  maximum of the samples it covers, so no peak is lost however long the
  signal.  The first channel only.
*/

#include "check.h"

#include <cairo.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#define WIDTH 1200
#define HEIGHT 720
#define MARGIN 60
#define PANEL_GAP 70

typedef struct panel {
  double x, y, width, height;
  double range;  ///< The value at the top edge (and minus at the bottom)
} panel;

typedef struct rgb {
  double r, g, b, a;
} rgb;

/** The two signals the plot compares, with their names. */
typedef struct pair {
  const float *expected;  ///< NULL when there is nothing to compare with
  const float *actual;
  size_t n;
  char expected_label[128];
  char actual_label[128];
} pair;

static void draw_frame(cairo_t *cr, const panel *p, const char *title)
{
  cairo_set_source_rgb(cr, 0.97, 0.97, 0.97);
  cairo_rectangle(cr, p->x, p->y, p->width, p->height);
  cairo_fill(cr);
  cairo_set_source_rgb(cr, 0.7, 0.7, 0.7);
  cairo_set_line_width(cr, 1.0);
  cairo_move_to(cr, p->x, p->y + p->height / 2);
  cairo_line_to(cr, p->x + p->width, p->y + p->height / 2);
  cairo_stroke(cr);
  cairo_set_source_rgb(cr, 0.0, 0.0, 0.0);
  cairo_move_to(cr, p->x, p->y - 8);
  cairo_show_text(cr, title);
  char scale[32];
  snprintf(scale, sizeof(scale), "%+.3g", p->range);
  cairo_move_to(cr, 4, p->y + 10);
  cairo_show_text(cr, scale);
  snprintf(scale, sizeof(scale), "%+.3g", -p->range);
  cairo_move_to(cr, 4, p->y + p->height);
  cairo_show_text(cr, scale);
}

static double to_y(const panel *p, double value)
{
  const double v = fmax(-p->range, fmin(p->range, value));
  return p->y + p->height / 2 - v / p->range * p->height / 2;
}

/** Min-max columns of `x` (or of x - minus) across the panel. */
static void draw_signal(cairo_t *cr, const panel *p, const float *x,
                        const float *minus, size_t n, rgb colour)
{
  cairo_set_source_rgba(cr, colour.r, colour.g, colour.b, colour.a);
  cairo_set_line_width(cr, 1.0);
  const int columns = (int)p->width;
  for (int column = 0; column < columns && n; ++column) {
    size_t from = (size_t)((double)column / columns * (double)n);
    size_t to = (size_t)((double)(column + 1) / columns * (double)n);
    to = to > from ? to : from + 1;
    double lo = INFINITY, hi = -INFINITY;
    for (size_t t = from; t < to && t < n; ++t) {
      const double v = (double)x[t] - (minus ? (double)minus[t] : 0.0);
      lo = fmin(lo, v);
      hi = fmax(hi, v);
    }
    if (isfinite(lo) && isfinite(hi)) {
      cairo_move_to(cr, p->x + column + 0.5, to_y(p, hi) - 0.5);
      cairo_line_to(cr, p->x + column + 0.5, to_y(p, lo) + 0.5);
    }
  }
  cairo_stroke(cr);
}

static double peak(const float *x, const float *minus, size_t n)
{
  double largest = 0.0;
  for (size_t t = 0; t < n; ++t) {
    const double v = (double)x[t] - (minus ? (double)minus[t] : 0.0);
    largest = isfinite(v) ? fmax(largest, fabs(v)) : largest;
  }
  return largest > 0.0 ? largest : 1.0;
}

static void draw_time_axis(cairo_t *cr, const panel *p, size_t n, double rate)
{
  const double seconds = (double)n / rate;
  cairo_set_source_rgb(cr, 0.0, 0.0, 0.0);
  for (int k = 0; k <= 10; ++k) {
    char label[32];
    snprintf(label, sizeof(label), "%.3g s", seconds * k / 10.0);
    cairo_move_to(cr, p->x + p->width * k / 10.0 - 10, p->y + p->height + 16);
    cairo_show_text(cr, label);
  }
}

static void choose_pair(const check_case *test, const check_result *result,
                        pair *signals)
{
  memset(signals, 0, sizeof(*signals));
  signals->actual = result->output.channels[0];
  signals->n = result->output.n_frames;
  snprintf(signals->actual_label, sizeof(signals->actual_label), "output");
  if (result->differing.n_channels) {
    signals->expected = result->output.channels[0];
    snprintf(signals->expected_label, sizeof(signals->expected_label), "%s",
             result->reference_label);
    signals->actual = result->differing.channels[0];
    snprintf(signals->actual_label, sizeof(signals->actual_label), "%s",
             result->differing_label);
  } else if (result->expected.n_channels &&
             result->expected.n_frames == signals->n) {
    signals->expected = result->expected.channels[0];
    snprintf(signals->expected_label, sizeof(signals->expected_label),
             "expected (%s)", test->expect_file);
  }
}

static void draw(cairo_t *cr, const check_case *test,
                 const check_result *result, const pair *signals)
{
  cairo_set_source_rgb(cr, 1.0, 1.0, 1.0);
  cairo_paint(cr);
  cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL,
                         CAIRO_FONT_WEIGHT_NORMAL);
  cairo_set_font_size(cr, 12.0);
  char title[CHECK_MESSAGE_SIZE + 128];
  snprintf(title, sizeof(title), "%s: %s%s", test->name,
           result->has_passed ? "pass" : "FAIL: ", result->reason);
  cairo_set_source_rgb(cr, 0.0, 0.0, 0.0);
  cairo_move_to(cr, MARGIN, 20);
  cairo_show_text(cr, title);

  const double panel_height = (HEIGHT - 2 * MARGIN - PANEL_GAP) / 2.0;
  panel wave = {MARGIN, MARGIN, WIDTH - 2 * MARGIN, panel_height, 1.0};
  panel diff = {MARGIN, MARGIN + panel_height + PANEL_GAP,
                WIDTH - 2 * MARGIN, panel_height, 1.0};
  wave.range = peak(signals->actual, NULL, signals->n);
  if (signals->expected) {
    wave.range = fmax(wave.range, peak(signals->expected, NULL, signals->n));
    diff.range = peak(signals->actual, signals->expected, signals->n);
  }
  char label[300];
  snprintf(label, sizeof(label), "blue: %s   red: %s",
           signals->expected ? signals->expected_label : "(none)",
           signals->actual_label);
  draw_frame(cr, &wave, label);
  if (signals->expected) {
    draw_signal(cr, &wave, signals->expected, NULL, signals->n,
                (rgb){0.1, 0.3, 0.9, 0.8});
  }
  draw_signal(cr, &wave, signals->actual, NULL, signals->n,
              (rgb){0.9, 0.1, 0.1, 0.5});
  draw_frame(cr, &diff, signals->expected ? "difference: red - blue"
                                          : "difference: nothing to compare");
  if (signals->expected) {
    draw_signal(cr, &diff, signals->actual, signals->expected, signals->n,
                (rgb){0.2, 0.2, 0.2, 1.0});
  }
  draw_time_axis(cr, &diff, signals->n, result->rate);
}

/** A file name from the case name: anything but [A-Za-z0-9._-] becomes _. */
static void file_name(const char *dir, const char *name, char *path,
                      size_t size)
{
  char safe[256];
  size_t k = 0;
  for (; name[k] && k + 1 < sizeof(safe); ++k) {
    const char c = name[k];
    const bool is_safe = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                         (c >= '0' && c <= '9') || c == '.' || c == '-' ||
                         c == '_';
    safe[k] = is_safe ? c : '_';
  }
  safe[k] = '\0';
  snprintf(path, size, "%s/%s.png", dir, safe);
}

bool check_plot_write(const char *dir, const check_case *test,
                      const check_result *result, char *message, size_t size)
{
  if (!result->output.n_channels) {
    snprintf(message, size, "%s: no output to plot", test->name);
    return false;
  }
  char path[4096];
  file_name(dir, test->name, path, sizeof(path));
  pair signals;
  choose_pair(test, result, &signals);
  cairo_surface_t *surface =
    cairo_image_surface_create(CAIRO_FORMAT_RGB24, WIDTH, HEIGHT);
  cairo_t *cr = cairo_create(surface);
  draw(cr, test, result, &signals);
  cairo_destroy(cr);
  const cairo_status_t status = cairo_surface_write_to_png(surface, path);
  cairo_surface_destroy(surface);
  if (status != CAIRO_STATUS_SUCCESS) {
    snprintf(message, size, "%s: %s", path, cairo_status_to_string(status));
    return false;
  }
  return true;
}
