/*
  The reference effects (effects/) against independent references: the
  diode clipper's DC curve against the diode equation solved here by
  bisection, small-signal responses against the circuits' transfer
  functions derived here, and measured behaviour (compression and
  harmonics, the fuzz's memory and asymmetry, the preamp's sag); then
  properties every effect must have: hostile input, determinism, reset,
  block-size invariance, every sample rate, knobs at their extremes.

  The circuit values are restated here from the effects' documentation,
  so a change in an effect shows up as a failure, not as a new reference.
*/

#include "effects.h"
#include "guitar.h"
#include "harness.h"

#include <complex.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PI 3.14159265358979323846
#define RATE 48000.0

/* The circuits, as documented. */
#define DIODE_IS 2.52e-9
#define DIODE_NVT 45.3e-3
#define CLIPPER_R 2.2e3
#define CLIPPER_C 10e-9
#define CLIPPER_MAX_DRIVE_DB 30.0
#define OD_R4 4.7e3
#define OD_C3 47e-9
#define OD_CF 51e-12
#define OD_R_MIN 51e3
#define OD_R_POT 500e3
#define OD_OUTPUT 0.5
#define SAG_RELEASE_S 0.2

static const double all_rates[] = {22050, 32000, 44100, 48000,
                                   88200, 96000, 176400, 192000};
#define N_RATES (sizeof(all_rates) / sizeof(all_rates[0]))

/* ------------------------------------------------------------------------ */
/* Signals and measurements */

static float *new_buffer(size_t n)
{
  float *x = calloc(n ? n : 1, sizeof(float));
  if (!x) {
    fprintf(stderr, "out of memory\n");
    exit(1);
  }
  return x;
}

/** Adds amplitude sin(2 pi f t / rate) over frames [from, to). */
static void add_sine(float *x, size_t from, size_t to, double amplitude,
                     double frequency, double rate)
{
  for (size_t t = from; t < to; ++t) {
    x[t] += (float)(amplitude * sin(2.0 * PI * frequency * (double)t / rate));
  }
}

/** The complex amplitude of the component at `frequency` in x[from, to),
    by a least-squares fit of a cosine and a sine (exact for a pure tone
    whatever the number of cycles): x ~ Re(c exp(j w t)). */
static double complex phasor(const float *x, size_t from, size_t to,
                             double frequency, double rate)
{
  double cc = 0.0, ss = 0.0, cs = 0.0, xc = 0.0, xs = 0.0;
  const double w = 2.0 * PI * frequency / rate;
  for (size_t t = from; t < to; ++t) {
    const double c = cos(w * (double)t), s = sin(w * (double)t);
    cc += c * c;
    ss += s * s;
    cs += c * s;
    xc += x[t] * c;
    xs += x[t] * s;
  }
  const double det = cc * ss - cs * cs;
  const double a = (xc * ss - xs * cs) / det, b = (xs * cc - xc * cs) / det;
  return a - I * b;
}

static double db(double ratio)
{
  return 20.0 * log10(ratio);
}

static double rms(const float *x, size_t n)
{
  double sum = 0.0;
  for (size_t t = 0; t < n; ++t) {
    sum += (double)x[t] * x[t];
  }
  return n ? sqrt(sum / (double)n) : 0.0;
}

static double peak(const float *x, size_t n)
{
  double p = 0.0;
  for (size_t t = 0; t < n; ++t) {
    p = fmax(p, fabs(x[t]));
  }
  return p;
}

static bool all_finite(const float *x, size_t n)
{
  for (size_t t = 0; t < n; ++t) {
    if (!isfinite(x[t])) {
      return false;
    }
  }
  return true;
}

/** A few seconds of the training programme (peak -3 dBFS). */
static float *guitar(size_t n, double rate, uint64_t seed)
{
  float *x = new_buffer(n);
  if (!guitar_render_programme(x, n, rate, seed)) {
    fprintf(stderr, "out of memory\n");
    exit(1);
  }
  return x;
}

/* ------------------------------------------------------------------------ */
/* Effects */

/** An effect with up to two knobs set (a NULL name sets none). */
static effect *make(const char *name, double rate, const char *knob1,
                    double value1, const char *knob2, double value2)
{
  effect_error err = {EFFECT_SUCCESS, ""};
  effect *fx = effect_create(name, rate, &err);
  if (!fx) {
    fprintf(stderr, "cannot create %s at %g Hz: %s\n", name, rate,
            err.message);
    exit(1);
  }
  if (knob1) {
    CHECK(effect_set_param(fx, knob1, value1, &err) == EFFECT_SUCCESS,
          "%s", err.message);
  }
  if (knob2) {
    CHECK(effect_set_param(fx, knob2, value2, &err) == EFFECT_SUCCESS,
          "%s", err.message);
  }
  return fx;
}

/** Runs a fresh effect over x and returns the output (to free). */
static float *run(const char *name, double rate, const char *knob1,
                  double value1, const char *knob2, double value2,
                  const float *x, size_t n)
{
  effect *fx = make(name, rate, knob1, value1, knob2, value2);
  float *y = new_buffer(n);
  effect_process(fx, x, y, n);
  effect_free(fx);
  return y;
}

/** Sets every knob of `fx` to `value`. */
static void set_all_knobs(effect *fx, double value)
{
  const effect_info *info = effect_get_info(fx);
  for (int k = 0; k < info->n_params; ++k) {
    effect_set_param(fx, info->params[k].name, value, NULL);
  }
}

/* ------------------------------------------------------------------------ */
/* The registry and errors */

static void test_registry(void)
{
  static const char *const names[] = {"diode_clipper", "overdrive", "fuzz",
                                      "preamp"};
  CHECK(effect_count() == 4, "%d effects", effect_count());
  for (int k = 0; k < 4; ++k) {
    const effect_info *info = effect_info_at(k);
    CHECK(info && !strcmp(info->name, names[k]) &&
            effect_find(names[k]) == info,
          "effect %d is not %s", k, names[k]);
    for (int p = 0; info && p < info->n_params; ++p) {
      const effect_param *param = &info->params[p];
      CHECK(param->min == 0.0 && param->max == 1.0 &&
              param->value >= 0.0 && param->value <= 1.0,
            "%s.%s: range [%g, %g], default %g", info->name, param->name,
            param->min, param->max, param->value);
    }
  }
  CHECK(!effect_info_at(4) && !effect_info_at(-1) && !effect_find("x") &&
          !effect_find(NULL),
        "lookups out of range found something");
  const effect_info *od = effect_find("overdrive");
  CHECK(effect_find_param(od, "TONE") == 1 &&
          effect_find_param(od, "drive") == 0 &&
          effect_find_param(od, "gain") == -1,
        "knob lookup by name");
}

static void test_errors(void)
{
  effect_error err = {EFFECT_SUCCESS, ""};
  CHECK(!effect_create("flanger", RATE, &err) &&
          err.status == EFFECT_ERR_UNKNOWN_EFFECT &&
          strstr(err.message, "'flanger'") &&
          strstr(err.message, "diode_clipper, overdrive, fuzz, preamp"),
        "unknown effect: %s", err.message);
  CHECK(!effect_create("fuzz", 7999.0, &err) &&
          err.status == EFFECT_ERR_RATE && strstr(err.message, "7999"),
        "rate 7999: %s", err.message);
  CHECK(!effect_create("fuzz", 384001.0, &err) &&
          err.status == EFFECT_ERR_RATE,
        "rate 384001: %s", err.message);
  CHECK(!effect_create("fuzz", NAN, NULL), "a NaN rate was taken");
  effect *fx = make("overdrive", RATE, "drive", 0.25, NULL, 0.0);
  CHECK(effect_set_param(fx, "level", 0.5, &err) ==
            EFFECT_ERR_UNKNOWN_PARAM &&
          strstr(err.message, "drive [0, 1], tone [0, 1]"),
        "unknown knob: %s", err.message);
  CHECK(effect_set_param(fx, "drive", 1.5, &err) == EFFECT_ERR_VALUE &&
          effect_set_param(fx, "drive", -0.01, &err) == EFFECT_ERR_VALUE &&
          effect_set_param(fx, "drive", NAN, &err) == EFFECT_ERR_VALUE &&
          effect_get_param(fx, 0) == 0.25,
        "a bad value was taken: %s", err.message);
  CHECK(effect_set_param(fx, "Drive", 1.0, NULL) == EFFECT_SUCCESS &&
          effect_get_param(fx, 0) == 1.0 && isnan(effect_get_param(fx, 2)),
        "knob by name in another case");
  CHECK(effect_get_rate(fx) == RATE, "rate");
  effect_free(fx);
  effect_free(NULL);
  for (int s = EFFECT_SUCCESS; s <= EFFECT_ERR_NO_MEMORY; ++s) {
    CHECK(strcmp(effect_strerror((effect_status)s), "unknown status") != 0,
          "status %d has no text", s);
  }
}

/* ------------------------------------------------------------------------ */
/* Diode clipper */

/** The DC solution of (u - v) / R = 2 Is sinh(v / (n Vt)), by bisection:
    the left side falls and the right side rises with v, and the root lies
    between 0 and u. */
static double clipper_dc(double u)
{
  double lo = fmin(0.0, u), hi = fmax(0.0, u);
  for (int k = 0; k < 200 && hi - lo > 0.0; ++k) {
    const double v = 0.5 * (lo + hi);
    if (v == lo || v == hi) {
      break;
    }
    const double excess = (u - v) / CLIPPER_R -
                          2.0 * DIODE_IS * sinh(v / DIODE_NVT);
    if (excess > 0.0) {
      lo = v;
    } else {
      hi = v;
    }
  }
  return 0.5 * (lo + hi);
}

/** Largest error of the settled output against clipper_dc over inputs
    from -1 to 1, in volts. */
static double clipper_dc_error(double drive, double rate, int *n_bad)
{
  const size_t n = 2000;
  float *x = new_buffer(n), *y = new_buffer(n);
  const double gain = pow(10.0, CLIPPER_MAX_DRIVE_DB * drive / 20.0);
  double worst = 0.0;
  for (int k = -50; k <= 50; ++k) {
    const float level = (float)(k / 50.0 * fabs(k / 50.0));  // dense near 0
    effect *fx = make("diode_clipper", rate, "drive", drive, NULL, 0.0);
    for (size_t t = 0; t < n; ++t) {
      x[t] = level;
    }
    effect_process(fx, x, y, n);
    effect_free(fx);
    const double expected = clipper_dc(gain * (double)level);
    const double error = fabs(y[n - 1] - expected);
    /* The output is a float: one rounding of the exact value. */
    *n_bad += error > 6e-8 * fabs(expected) + 1e-15;
    worst = fmax(worst, error);
  }
  free(x);
  free(y);
  return worst;
}

static void test_clipper_dc_curve(void)
{
  static const double drives[] = {0.0, 0.5, 1.0};
  static const double rates[] = {22050.0, 48000.0, 192000.0};
  double worst = 0.0;
  for (size_t d = 0; d < 3; ++d) {
    for (size_t r = 0; r < 3; ++r) {
      int n_bad = 0;
      const double error = clipper_dc_error(drives[d], rates[r], &n_bad);
      CHECK(n_bad == 0, "drive %g, %g Hz: %d DC points off the diode "
            "equation's solution by more than a float rounding (worst "
            "%.3g V)", drives[d], rates[r], n_bad, error);
      worst = fmax(worst, error);
    }
  }
  printf("note: diode clipper DC curve: largest error %.2g V against "
         "bisection (inputs to +-31.6 V)\n", worst);
}

/** The clipper's small-signal response as the solver discretises it: the
    RC part by the trapezoidal rule, the diodes' conductance 2 Is/(n Vt)
    at 0 V by backward Euler. */
static double complex clipper_discrete(double frequency, double rate)
{
  const double period = 1.0 / rate;
  const double k = period / (2.0 * CLIPPER_R * CLIPPER_C);
  const double g = period / CLIPPER_C * 2.0 * DIODE_IS / DIODE_NVT;
  const double complex z1 = cexp(-I * 2.0 * PI * frequency / rate);
  return k * (1.0 + z1) / ((1.0 + k + g) - (1.0 - k) * z1);
}

/** The analogue RC low-pass with the diodes' small-signal conductance. */
static double complex clipper_analog(double frequency)
{
  const double g_diodes = 2.0 * DIODE_IS / DIODE_NVT;
  return (1.0 / CLIPPER_R) / (1.0 / CLIPPER_R + g_diodes +
                              I * 2.0 * PI * frequency * CLIPPER_C);
}

static double complex measure_response(const char *name, double rate,
                                       const char *knob1, double value1,
                                       const char *knob2, double value2,
                                       double amplitude, double frequency)
{
  const size_t n = (size_t)(0.15 * rate), settle = (size_t)(0.05 * rate);
  float *x = new_buffer(n);
  add_sine(x, 0, n, amplitude, frequency, rate);
  float *y = run(name, rate, knob1, value1, knob2, value2, x, n);
  const double complex h = phasor(y, settle, n, frequency, rate) /
                           phasor(x, settle, n, frequency, rate);
  free(x);
  free(y);
  return h;
}

static double phase_degrees(double complex h)
{
  return carg(h) * 180.0 / PI;
}

static void test_clipper_small_signal(void)
{
  static const double frequencies[] = {100.0, 1000.0, 3000.0, 7234.0};
  for (size_t r = 0; r < N_RATES; ++r) {
    for (size_t f = 0; f < 4; ++f) {
      const double rate = all_rates[r], frequency = frequencies[f];
      /* 1 mV: the diodes' current is linear to 1e-4 there. */
      const double complex h = measure_response(
        "diode_clipper", rate, "drive", 0.0, NULL, 0.0, 1e-3, frequency);
      const double complex d = clipper_discrete(frequency, rate);
      CHECK(fabs(db(cabs(h) / cabs(d))) < 0.002 &&
              fabs(phase_degrees(h / d)) < 0.01,
            "%g Hz at %g Hz: %.5f dB %.4f deg, the discretised RC gives "
            "%.5f dB %.4f deg", frequency, rate, db(cabs(h)),
            phase_degrees(h), db(cabs(d)), phase_degrees(d));
      if (frequency == 1000.0 && rate >= 44100.0) {
        /* Below a tenth of the rate the bilinear warping is negligible:
           the analogue filter itself. */
        const double complex a = clipper_analog(frequency);
        CHECK(fabs(db(cabs(h) / cabs(a))) < 0.002 &&
                fabs(phase_degrees(h / a)) < 0.02,
              "1 kHz at %g Hz: %.5f dB %.4f deg; the RC low-pass: %.5f dB "
              "%.4f deg", rate, db(cabs(h)), phase_degrees(h),
              db(cabs(a)), phase_degrees(a));
      }
    }
  }
  const double complex h = measure_response("diode_clipper", RATE, "drive",
                                            0.0, NULL, 0.0, 1e-3, 1000.0);
  const double complex a = clipper_analog(1000.0);
  printf("note: diode clipper at 1 kHz, 1 mV: %.4f dB %.3f deg; the RC "
         "low-pass: %.4f dB %.3f deg\n", db(cabs(h)), phase_degrees(h),
         db(cabs(a)), phase_degrees(a));
}

/* ------------------------------------------------------------------------ */
/* Newton */

static void test_newton_convergence(void)
{
  const size_t n = (size_t)(4.0 * RATE);
  float *x = guitar(n, RATE, 11), *y = new_buffer(n);
  for (size_t t = 0; t < n; ++t) {
    x[t] *= 10.0f;  // +20 dB: past full scale, the diodes hard on
  }
  static const char *const names[] = {"diode_clipper", "overdrive",
                                      "preamp"};
  for (int e = 0; e < 3; ++e) {
    for (int knob = 0; knob <= 1; ++knob) {
      effect *fx = make(names[e], RATE, NULL, 0.0, NULL, 0.0);
      set_all_knobs(fx, knob);
      effect_process(fx, x, y, n);
      const effect_stats s = effect_get_stats(fx);
      CHECK(s.n_unconverged == 0 && s.max_iterations <= 20 &&
              s.n_solves >= n,
            "%s, knobs %d: %llu solves, %llu unconverged, at most %d "
            "steps", names[e], knob, (unsigned long long)s.n_solves,
            (unsigned long long)s.n_unconverged, s.max_iterations);
      printf("note: %s, knobs at %d, guitar at +17 dBFS peak: Newton "
             "%.2f steps a solve on average, at most %d, none "
             "unconverged\n", names[e], knob,
             (double)s.n_iterations / (double)s.n_solves, s.max_iterations);
      effect_free(fx);
    }
  }
  free(x);
  free(y);
}

/* ------------------------------------------------------------------------ */
/* Overdrive */

static double audio_taper(double rotation)
{
  return (pow(10.0, 2.0 * rotation) - 1.0) / 99.0;
}

/** The clipping stage's small-signal gain vout / vin as the solver
    discretises it: the R4-C3 leg by the bilinear transform, the
    feedback's Rd and Cf by the trapezoidal rule and the diodes'
    conductance at 0 V by backward Euler. */
static double complex overdrive_stage(double drive, double frequency,
                                      double rate)
{
  const double period = 1.0 / rate;
  const double complex z1 = cexp(-I * 2.0 * PI * frequency / rate);
  const double complex s = 2.0 / period * (1.0 - z1) / (1.0 + z1);
  const double complex y_ground = 1.0 / (OD_R4 + 1.0 / (s * OD_C3));
  const double r_drive = OD_R_MIN + OD_R_POT * audio_taper(drive);
  const double k = period / (2.0 * r_drive * OD_CF);
  const double g = period / OD_CF * 2.0 * DIODE_IS / DIODE_NVT;
  const double complex z_feedback = period / (2.0 * OD_CF) * (1.0 + z1) /
                                    ((1.0 + k + g) - (1.0 - k) * z1);
  return 1.0 + z_feedback * y_ground;
}

/** The same stage in the analogue domain. */
static double complex overdrive_stage_analog(double drive, double frequency)
{
  const double complex s = I * 2.0 * PI * frequency;
  const double r_drive = OD_R_MIN + OD_R_POT * audio_taper(drive);
  const double g = 1.0 / r_drive + 2.0 * DIODE_IS / DIODE_NVT;
  return 1.0 + (1.0 / (g + s * OD_CF)) / (OD_R4 + 1.0 / (s * OD_C3));
}

/** |tone| at f: the measured response over the stage's and the output
    gain's. */
static double tone_gain(double tone, double frequency)
{
  const double complex h = measure_response(
    "overdrive", RATE, "drive", 0.0, "tone", tone, 1e-5, frequency);
  return cabs(h / (OD_OUTPUT * overdrive_stage(0.0, frequency, RATE)));
}

/** Where the tone low-pass is 3 dB down, by bisection on log frequency. */
static double tone_corner(double tone)
{
  double lo = log(100.0), hi = log(20000.0);
  for (int k = 0; k < 24; ++k) {
    const double mid = 0.5 * (lo + hi);
    if (tone_gain(tone, exp(mid)) > sqrt(0.5)) {
      lo = mid;
    } else {
      hi = mid;
    }
  }
  return exp(0.5 * (lo + hi));
}

static void test_overdrive_small_signal(void)
{
  static const double frequencies[] = {50.0, 300.0, 720.0, 2000.0, 6000.0};
  for (int drive = 0; drive <= 1; ++drive) {
    for (int tone = 0; tone <= 1; ++tone) {
      for (size_t f = 0; f < 5; ++f) {
        const double frequency = frequencies[f];
        const double complex h = measure_response(
          "overdrive", RATE, "drive", drive, "tone", tone, 1e-5, frequency);
        const double fc = 600.0 * pow(10.0, tone);
        const double kw = tan(PI * fc / RATE);
        const double complex z1 = cexp(-I * 2.0 * PI * frequency / RATE);
        const double complex lowpass = kw * (1.0 + z1) /
                                       ((1.0 + kw) + (kw - 1.0) * z1);
        const double complex d = OD_OUTPUT * lowpass *
                                 overdrive_stage(drive, frequency, RATE);
        CHECK(fabs(db(cabs(h) / cabs(d))) < 0.01 &&
                fabs(phase_degrees(h / d)) < 0.05,
              "drive %d tone %d at %g Hz: %.4f dB %.3f deg, the circuit: "
              "%.4f dB %.3f deg", drive, tone, frequency, db(cabs(h)),
              phase_degrees(h), db(cabs(d)), phase_degrees(d));
      }
      /* The stage alone, against the analogue circuit, below 3 kHz where
         the bilinear warping stays under 0.1 dB. */
      const double complex stage = overdrive_stage(drive, 2000.0, RATE);
      const double complex analog = overdrive_stage_analog(drive, 2000.0);
      CHECK(fabs(db(cabs(stage) / cabs(analog))) < 0.1,
            "stage at 2 kHz: %.3f dB, analogue %.3f dB", db(cabs(stage)),
            db(cabs(analog)));
    }
  }
  const double shelf_lo = cabs(overdrive_stage_analog(1.0, 30.0));
  const double shelf_hi = cabs(overdrive_stage_analog(1.0, 2000.0));
  printf("note: overdrive stage at full drive: %.2f dB at 30 Hz, %.1f dB at "
         "2 kHz (1 + Rd/R4 = %.1f dB before Cf)\n", db(shelf_lo),
         db(shelf_hi), db(1.0 + (OD_R_MIN + OD_R_POT) / OD_R4));
}

static void test_overdrive_tone_corners(void)
{
  for (int k = 0; k <= 4; ++k) {
    const double tone = k / 4.0;
    const double documented = 600.0 * pow(10.0, tone);
    const double measured = tone_corner(tone);
    CHECK(fabs(measured / documented - 1.0) < 0.005,
          "tone %g: -3 dB at %.1f Hz, documented %.1f Hz", tone, measured,
          documented);
    printf("note: overdrive tone %.2f: -3 dB at %.1f Hz (documented "
           "%.1f Hz)\n", tone, measured, documented);
  }
}

/** Harmonic h of a steady tone at f0 in y[from, to), relative to the
    fundamental, in dB. */
static double harmonic_db(const float *y, size_t from, size_t to,
                          double f0, int h, double rate)
{
  return db(cabs(phasor(y, from, to, h * f0, rate)) /
            cabs(phasor(y, from, to, f0, rate)));
}

/** The crest factor (peak over RMS) of y[from, to), in dB. */
static double crest_db(const float *y, size_t from, size_t to)
{
  return db(peak(y + from, to - from) / rms(y + from, to - from));
}

static void test_overdrive_soft_clipping(void)
{
  const size_t n = (size_t)(0.3 * RATE), from = (size_t)(0.1 * RATE);
  const double f0 = 1000.0;  // 48 samples a period
  double gain_small = 0.0, gain_large = 0.0, crest = 0.0, h2 = 0.0, h3 = 0.0;
  double h5 = 0.0;
  for (int level_db = -60; level_db <= -3; level_db += 57) {
    const double amplitude = pow(10.0, level_db / 20.0);
    float *x = new_buffer(n);
    add_sine(x, 0, n, amplitude, f0, RATE);
    float *y = run("overdrive", RATE, "drive", 0.5, "tone", 1.0, x, n);
    const double gain = cabs(phasor(y, from, n, f0, RATE)) / amplitude;
    if (level_db == -60) {
      gain_small = gain;
    } else {
      gain_large = gain;
      crest = crest_db(y, from, n);
      h2 = harmonic_db(y, from, n, f0, 2, RATE);
      h3 = harmonic_db(y, from, n, f0, 3, RATE);
      h5 = harmonic_db(y, from, n, f0, 5, RATE);
    }
    free(x);
    free(y);
  }
  const double compression = db(gain_small / gain_large);
  /* The stage adds the clipped feedback voltage to the clean input, so
     the output keeps a clean part: less than a hard clipper's squashing,
     but the gain still falls by far more than the diodes' knee alone. */
  CHECK(compression > 15.0, "57 dB more input gave only %.1f dB less gain",
        compression);
  CHECK(crest < 2.7, "crest factor %.2f dB at -3 dBFS (a sine: 3.01 dB)",
        crest);
  CHECK(h3 > -20.0 && h5 > -30.0 && h2 < -80.0,
        "harmonics at -3 dBFS: H2 %.1f dB, H3 %.1f dB, H5 %.1f dB", h2, h3,
        h5);
  printf("note: overdrive (drive 0.5, tone 1), 1 kHz: gain falls by %.1f dB "
         "from -60 to -3 dBFS in; crest factor %.2f dB (sine 3.01); H3 "
         "%.1f dB, H5 %.1f dB, H2 %.1f dB\n", compression, crest, h3, h5,
         h2);
}

/* ------------------------------------------------------------------------ */
/* Fuzz */

/** The fuzz's output for a soft burst that follows `before` (1 s of a
    loud tone, or silence) and then `gap` seconds of silence; returns
    the burst's RMS over its first 100 ms and fills `burst` (n_burst). */
static double fuzz_burst(bool is_loud_before, double gap, float *burst,
                         size_t n_burst)
{
  const size_t n_before = (size_t)RATE, n_gap = (size_t)(gap * RATE);
  const size_t n = n_before + n_gap + n_burst;
  float *x = new_buffer(n);
  if (is_loud_before) {
    add_sine(x, 0, n_before, 0.7, 110.0, RATE);
  }
  add_sine(x, n_before + n_gap, n, 0.03, 330.0, RATE);
  float *y = run("fuzz", RATE, "fuzz", 0.5, NULL, 0.0, x, n);
  memcpy(burst, y + n_before + n_gap, n_burst * sizeof(float));
  free(x);
  free(y);
  return rms(burst, (size_t)(0.1 * RATE));
}

static void test_fuzz_memory(void)
{
  const size_t n = (size_t)(0.3 * RATE);
  float *after_loud = new_buffer(n), *after_silence = new_buffer(n);
  const double loud = fuzz_burst(true, 0.01, after_loud, n);
  const double quiet = fuzz_burst(false, 0.01, after_silence, n);
  CHECK(db(quiet / loud) > 6.0, "the burst after a loud passage is only "
        "%.1f dB softer than after silence", db(quiet / loud));
  /* The memory fades: after 1.5 s (20 release times) it is gone. */
  const double late_loud = fuzz_burst(true, 1.5, after_loud, n);
  fuzz_burst(false, 1.5, after_silence, n);
  const double late_difference = test_max_abs_diff(after_loud, after_silence,
                                                   n);
  CHECK(late_difference < 1e-4, "1.5 s later the outputs still differ by "
        "%.3g", late_difference);
  printf("note: fuzz 0.5: a -30 dBFS burst 10 ms after a loud passage comes "
         "out %.1f dB below the same burst after silence (%.1f against "
         "%.1f dBFS); 1.5 s later they differ by %.1g (%.1f dBFS)\n",
         db(quiet / loud), db(loud), db(quiet), late_difference,
         db(late_loud));
  free(after_loud);
  free(after_silence);
}

static void test_fuzz_asymmetry(void)
{
  const size_t n = (size_t)(0.5 * RATE), from = (size_t)(0.25 * RATE);
  const double f0 = 200.0;
  float *x = new_buffer(n);
  add_sine(x, 0, n, 0.1, f0, RATE);
  for (int knob = 0; knob <= 1; ++knob) {
    float *y = run("fuzz", RATE, "fuzz", knob, NULL, 0.0, x, n);
    const double h2 = harmonic_db(y, from, n, f0, 2, RATE);
    const double h3 = harmonic_db(y, from, n, f0, 3, RATE);
    CHECK(h2 > -26.0, "fuzz %d: H2 only %.1f dB: not asymmetric", knob, h2);
    printf("note: fuzz %d, 200 Hz at -20 dBFS: H2 %.1f dB, H3 %.1f dB\n",
           knob, h2, h3);
    free(y);
  }
  free(x);
}

/* ------------------------------------------------------------------------ */
/* Preamp */

/** The gain of a 20 ms, -30 dBFS, 1 kHz tone that starts `gap` seconds
    after 1 s of a 220 Hz tone at `loud_dbfs` (or of silence), in dB. */
static double preamp_tone_gain(double knob, double loud_dbfs, double gap)
{
  const size_t n_before = (size_t)RATE, n_gap = (size_t)(gap * RATE);
  const size_t n_tone = (size_t)(0.02 * RATE);
  const size_t n = n_before + n_gap + n_tone, from = n_before + n_gap;
  float *x = new_buffer(n);
  add_sine(x, 0, n_before, pow(10.0, loud_dbfs / 20.0), 220.0, RATE);
  const double amplitude = pow(10.0, -30.0 / 20.0);
  for (size_t t = from; t < n; ++t) {
    x[t] = (float)(amplitude * sin(2.0 * PI * 1000.0 * (double)(t - from) /
                                   RATE));
  }
  float *y = run("preamp", RATE, "gain", knob, NULL, 0.0, x, n);
  const double gain = cabs(phasor(y, from, n, 1000.0, RATE)) /
                      cabs(phasor(x, from, n, 1000.0, RATE));
  free(x);
  free(y);
  return db(gain);
}

static void test_preamp_sag(void)
{
  static const double gaps[] = {0.0, SAG_RELEASE_S, 3.0 * SAG_RELEASE_S,
                                5.0 * SAG_RELEASE_S};
  const double rest = preamp_tone_gain(1.0, -300.0, 0.0);
  double drops[4];
  for (int k = 0; k < 4; ++k) {
    drops[k] = rest - preamp_tone_gain(1.0, -3.0, gaps[k]);
  }
  CHECK(drops[0] > 2.0, "the gain fell only %.2f dB after a loud passage",
        drops[0]);
  CHECK(drops[1] < 0.5 * drops[0] && drops[1] > 0.1 * drops[0],
        "one release time later the drop is %.2f dB of %.2f", drops[1],
        drops[0]);
  CHECK(drops[3] < 0.05, "five release times later the gain is still "
        "%.2f dB down", drops[3]);
  const double soft_drop = rest - preamp_tone_gain(1.0, -40.0, 0.0);
  CHECK(soft_drop < 0.2 * drops[0], "a soft passage lowered the gain by "
        "%.2f dB, a loud one by %.2f dB", soft_drop, drops[0]);
  printf("note: preamp sag (gain 1): a 1 kHz tone's gain drops %.2f dB "
         "right after 1 s at -3 dBFS (%.2f dB after -40 dBFS), %.2f dB "
         "200 ms later, %.2f dB after 600 ms, %.3f dB after 1 s\n",
         drops[0], soft_drop, drops[1], drops[2], drops[3]);
}

/* ------------------------------------------------------------------------ */
/* Every effect */

/** Non-finite samples are taken as silence: the output is the same, bit
    for bit, as with zeros in their place. */
static void test_non_finite_input(const char *name, double knob)
{
  const size_t n = (size_t)(1.0 * RATE);
  float *x = guitar(n, RATE, 5), *zeroed = new_buffer(n);
  memcpy(zeroed, x, n * sizeof(float));
  test_rng rng = test_rng_new(7);
  static const float bad[] = {NAN, INFINITY, -INFINITY};
  for (int k = 0; k < 300; ++k) {
    const size_t t = (size_t)test_rng_int(&rng, 0, (int)n - 1);
    x[t] = bad[k % 3];
    zeroed[t] = 0.0f;
  }
  effect *fx = make(name, RATE, NULL, 0.0, NULL, 0.0);
  set_all_knobs(fx, knob);
  float *y = new_buffer(n), *expected = new_buffer(n);
  effect_process(fx, x, y, n);
  effect_reset(fx);
  effect_process(fx, zeroed, expected, n);
  CHECK(all_finite(y, n) && !memcmp(y, expected, n * sizeof(float)),
        "%s (knobs %g): NaN and Inf are not taken as 0", name, knob);
  effect_free(fx);
  free(x);
  free(zeroed);
  free(y);
  free(expected);
}

/** Huge inputs give bounded, finite output, and the effect comes back
    to what a fresh one gives once they are over. */
static void test_huge_input(const char *name, double knob)
{
  const size_t n_hostile = (size_t)(0.2 * RATE), n_rest = (size_t)(3 * RATE);
  const size_t n_music = (size_t)(0.5 * RATE);
  const size_t n = n_hostile + n_rest + n_music;
  float *x = new_buffer(n);
  static const float huge[] = {FLT_MAX, -FLT_MAX, 1e30f, -1e30f, 1e6f, 1e3f,
                               -1e3f, 0.0f};
  for (size_t t = 0; t < n_hostile; ++t) {
    x[t] = huge[(t / 7) % 8] * (t % 2 ? 1.0f : -1.0f);
  }
  float *music = guitar(n_music, RATE, 9);
  memcpy(x + n_hostile + n_rest, music, n_music * sizeof(float));
  effect *fx = make(name, RATE, NULL, 0.0, NULL, 0.0);
  set_all_knobs(fx, knob);
  float *y = new_buffer(n);
  effect_process(fx, x, y, n);
  const effect_stats stats = effect_get_stats(fx);
  effect_reset(fx);
  float *fresh = new_buffer(n_music);
  effect_process(fx, music, fresh, n_music);
  const double difference = test_max_abs_diff(y + n_hostile + n_rest, fresh,
                                              n_music);
  CHECK(all_finite(y, n) && peak(y, n) < 10.0,
        "%s (knobs %g): huge input gave %s output, peak %g", name, knob,
        all_finite(y, n) ? "finite" : "non-finite", peak(y, n));
  CHECK(difference < 1e-4, "%s (knobs %g): 3 s after huge input the output "
        "is %.3g away from a fresh effect's", name, knob, difference);
  CHECK(stats.n_unconverged == 0, "%s: %llu solves did not converge on huge "
        "input", name, (unsigned long long)stats.n_unconverged);
  effect_free(fx);
  free(x);
  free(music);
  free(y);
  free(fresh);
}

/** Two instances, one reset, blocks of every size: the same output, bit
    for bit; in place too. */
static void test_invariance(const char *name)
{
  const size_t n = (size_t)(1.5 * RATE);
  float *x = guitar(n, RATE, 3);
  float *whole = run(name, RATE, NULL, 0.0, NULL, 0.0, x, n);
  float *again = run(name, RATE, NULL, 0.0, NULL, 0.0, x, n);
  CHECK(!memcmp(whole, again, n * sizeof(float)),
        "%s: two runs differ", name);
  effect *fx = make(name, RATE, NULL, 0.0, NULL, 0.0);
  float *blocks = new_buffer(n);
  effect_process(fx, x, blocks, n / 3);  // leave some state behind
  effect_reset(fx);
  test_rng rng = test_rng_new(42);
  for (size_t t = 0; t < n;) {
    size_t block = (size_t)test_rng_int(&rng, 0, 3) == 0
                     ? 1 : (size_t)test_rng_int(&rng, 0, 4096);
    block = block < n - t ? block : n - t;
    effect_process(fx, x + t, blocks + t, block);
    t += block;
  }
  CHECK(!memcmp(whole, blocks, n * sizeof(float)),
        "%s: random blocks (and a reset) change the output", name);
  effect_reset(fx);
  effect_process(fx, x, x, n);
  CHECK(!memcmp(whole, x, n * sizeof(float)), "%s: in place differs", name);
  effect_free(fx);
  free(x);
  free(whole);
  free(again);
  free(blocks);
}

/** Every rate runs, and a 440 Hz tone comes out at about the same level
    at every rate (the circuits, not the sampling, set it). */
static void test_rates(const char *name)
{
  double reference = 0.0;
  for (size_t r = 0; r < N_RATES; ++r) {
    const double rate = all_rates[r];
    const size_t n = (size_t)(0.4 * rate), from = (size_t)(0.2 * rate);
    float *x = new_buffer(n);
    add_sine(x, 0, n, 0.25, 440.0, rate);
    float *y = run(name, rate, NULL, 0.0, NULL, 0.0, x, n);
    const double level = cabs(phasor(y, from, n, 440.0, rate));
    if (rate == RATE) {
      reference = level;
    }
    CHECK(all_finite(y, n) && level > 0.0, "%s at %g Hz: no output", name,
          rate);
    free(x);
    free(y);
  }
  for (size_t r = 0; r < N_RATES; ++r) {
    const double rate = all_rates[r];
    const size_t n = (size_t)(0.4 * rate), from = (size_t)(0.2 * rate);
    float *x = new_buffer(n);
    add_sine(x, 0, n, 0.25, 440.0, rate);
    float *y = run(name, rate, NULL, 0.0, NULL, 0.0, x, n);
    const double level = cabs(phasor(y, from, n, 440.0, rate));
    CHECK(fabs(db(level / reference)) < 0.5, "%s at %g Hz: 440 Hz comes out "
          "%.2f dB from its level at 48 kHz", name, rate,
          db(level / reference));
    free(x);
    free(y);
  }
}

/** Knobs at 0 and at 1: finite, audible, below full scale for a -3 dBFS
    input, and different from each other. */
static void test_knob_extremes(const char *name)
{
  const size_t n = (size_t)(4.0 * RATE);
  float *x = guitar(n, RATE, 21);
  add_sine(x, n - (size_t)(0.5 * RATE), n, 0.707, 82.4, RATE);
  const effect_info *info = effect_find(name);
  const int n_settings = 1 << info->n_params;
  float *outputs[4] = {NULL, NULL, NULL, NULL};
  for (int s = 0; s < n_settings; ++s) {
    effect *fx = make(name, RATE, NULL, 0.0, NULL, 0.0);
    for (int k = 0; k < info->n_params; ++k) {
      effect_set_param(fx, info->params[k].name, (s >> k) & 1, NULL);
    }
    outputs[s] = new_buffer(n);
    effect_process(fx, x, outputs[s], n);
    effect_free(fx);
    const double top = peak(outputs[s], n), level = rms(outputs[s], n);
    CHECK(all_finite(outputs[s], n) && top < 1.0 && db(level) > -50.0,
          "%s setting %d: peak %.2f dBFS, RMS %.1f dBFS", name, s, db(top),
          db(level));
    printf("note: %s, knobs %d%s: peak %.1f dBFS, RMS %.1f dBFS for a "
           "-3 dBFS input\n", name, s & 1, info->n_params > 1
             ? ((s & 2) ? " 1" : " 0") : "", db(top), db(level));
    if (s > 0) {
      CHECK(test_max_abs_diff(outputs[s], outputs[0], n) > 0.01,
            "%s: setting %d sounds like setting 0", name, s);
    }
  }
  for (int s = 0; s < n_settings; ++s) {
    free(outputs[s]);
  }
  free(x);
}

static void test_every_effect(void)
{
  for (int e = 0; e < effect_count(); ++e) {
    const char *name = effect_info_at(e)->name;
    test_non_finite_input(name, 0.0);
    test_non_finite_input(name, 1.0);
    test_huge_input(name, 0.0);
    test_huge_input(name, 1.0);
    test_invariance(name);
    test_rates(name);
    test_knob_extremes(name);
  }
}

int main(void)
{
  test_registry();
  test_errors();
  test_clipper_dc_curve();
  test_clipper_small_signal();
  test_newton_convergence();
  test_overdrive_small_signal();
  test_overdrive_tone_corners();
  test_overdrive_soft_clipping();
  test_fuzz_memory();
  test_fuzz_asymmetry();
  test_preamp_sag();
  test_every_effect();
  return test_finish("effects");
}
