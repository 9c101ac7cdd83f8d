/*
  carry signal: writes the guitar-like test signal (see guitar.h) to a WAV
  file.
*/

#include "cli.h"
#include "guitar.h"

#include <getopt.h>
#include <sndfile.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_SECONDS 12.0
#define MIN_SECONDS 0.1
#define MAX_SECONDS 600.0
#define DEFAULT_RATE 48000
#define MIN_RATE 8000
#define MAX_RATE 384000

typedef struct signal_args {
  double seconds;
  long rate;
  uint64_t seed;
  bool is_float;     ///< 32-bit float samples instead of 24-bit integers
  const char *out_path;
} signal_args;

static void print_help(void)
{
  printf(
    "Usage: carry signal [OPTION]... OUT.wav\n"
    "\n"
    "Writes a guitar-like signal made by the project itself.  Up to %g s\n"
    "it is a tour: strummed chords, single notes and palm-muted notes\n"
    "(Karplus-Strong strings), a logarithmic sine sweep from 20 Hz to\n"
    "20 kHz, and silence between them.  Longer, it is training material:\n"
    "phrases of chords, lines, riffs, arpeggios, ringing notes, sweeps,\n"
    "noise bursts and silence, each at its own level from -42 dBFS up.\n"
    "The same seed always gives the same file; use another seed for a\n"
    "validation signal.  The peak is at most %.0f dBFS.\n"
    "Always a mono WAV file, whatever OUT's extension.\n"
    "\n"
    "  -s, --seconds S   length in seconds, %g..%g (default %g)\n"
    "  -r, --rate R      sample rate in Hz, %d..%d (default %d)\n"
    "  -S, --seed N      seed of the random choices (default 1)\n"
    "  -f, --float       32-bit float samples (default 24-bit integer)\n"
    "  -h, --help        shows this help\n"
    "\n"
    "Exit status: 0 success, 1 failed, 2 usage error, 4 file error.\n",
    GUITAR_TOUR_SECONDS, GUITAR_PEAK_DBFS, MIN_SECONDS, MAX_SECONDS,
    DEFAULT_SECONDS, MIN_RATE, MAX_RATE, DEFAULT_RATE);
}

static int parse_option(int option, signal_args *args)
{
  switch (option) {
  case 's':
    if (!cli_parse_double(optarg, &args->seconds) ||
        args->seconds < MIN_SECONDS || args->seconds > MAX_SECONDS) {
      return cli_usage_error("--seconds must be a number from %g to %g, "
                             "not '%s'", MIN_SECONDS, MAX_SECONDS, optarg);
    }
    return -1;
  case 'r':
    if (!cli_parse_long(optarg, MIN_RATE, MAX_RATE, &args->rate)) {
      return cli_usage_error("--rate must be a whole number of Hz from %d "
                             "to %d, not '%s'", MIN_RATE, MAX_RATE, optarg);
    }
    return -1;
  case 'S':
    if (!cli_parse_u64(optarg, &args->seed)) {
      return cli_usage_error("--seed must be a whole number from 0 to "
                             "2^64 - 1, not '%s'", optarg);
    }
    return -1;
  case 'f': args->is_float = true; return -1;
  case 'h': print_help(); return CLI_EXIT_OK;
  default: return cli_bad_option();
  }
}

/** Returns -1 to go on, else the exit code. */
static int parse_args(int argc, char **argv, signal_args *args)
{
  static const struct option options[] = {
    {"seconds", required_argument, NULL, 's'},
    {"rate", required_argument, NULL, 'r'},
    {"seed", required_argument, NULL, 'S'},
    {"float", no_argument, NULL, 'f'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
  };
  *args = (signal_args){DEFAULT_SECONDS, DEFAULT_RATE, 1, false, NULL};
  int option;
  while ((option = getopt_long(argc, argv, "s:r:S:fh", options, NULL)) !=
         -1) {
    const int status = parse_option(option, args);
    if (status >= 0) {
      return status;
    }
  }
  if (optind == argc) {
    return cli_usage_error("missing output file OUT.wav");
  }
  if (argc - optind > 1) {
    return cli_usage_error("too many arguments: '%s' after OUT.wav",
                           argv[optind + 1]);
  }
  args->out_path = argv[optind];
  return -1;
}

static int write_wav(const signal_args *args, const float *samples,
                     size_t n, const char *temp_path)
{
  SF_INFO info;
  memset(&info, 0, sizeof(info));
  info.samplerate = (int)args->rate;
  info.channels = 1;
  info.format = SF_FORMAT_WAV |
                (args->is_float ? SF_FORMAT_FLOAT : SF_FORMAT_PCM_24);
  SNDFILE *file = sf_open(temp_path, SFM_WRITE, &info);
  if (!file) {
    return cli_error(CLI_EXIT_FILE, "cannot write '%s': %s", args->out_path,
                     sf_strerror(NULL));
  }
  /* No PEAK chunk: it holds a time stamp, and a seed should give the
     same bytes every time. */
  sf_command(file, SFC_SET_ADD_PEAK_CHUNK, NULL, SF_FALSE);
  const sf_count_t written = sf_writef_float(file, samples, (sf_count_t)n);
  const int write_error = written == (sf_count_t)n ? sf_error(file) : -1;
  const int close_error = sf_close(file);
  if (write_error != 0 || close_error != 0) {
    return cli_error(CLI_EXIT_FILE, "cannot write '%s': %s", args->out_path,
                     sf_error_number(close_error ? close_error
                                                 : SF_ERR_SYSTEM));
  }
  return CLI_EXIT_OK;
}

static int render_and_write(const signal_args *args, float *samples,
                            size_t n)
{
  if (!guitar_render(samples, n, (double)args->rate, args->seed)) {
    return cli_error(CLI_EXIT_FAILED, "out of memory");
  }
  cli_output output = {NULL, NULL};
  int status = cli_output_open(&output, args->out_path);
  if (status == CLI_EXIT_OK) {
    status = write_wav(args, samples, n, output.temp_path);
  }
  if (status == CLI_EXIT_OK) {
    status = cli_output_commit(&output);
  }
  cli_output_discard(&output);
  return status;
}

int carry_signal(int argc, char **argv)
{
  signal_args args;
  int status = parse_args(argc, argv, &args);
  if (status >= 0) {
    return status;
  }
  const size_t n = (size_t)(args.seconds * (double)args.rate + 0.5);
  float *samples = malloc(n * sizeof(float));
  if (!samples) {
    return cli_error(CLI_EXIT_FAILED, "out of memory for %zu samples", n);
  }
  status = render_and_write(&args, samples, n);
  free(samples);
  if (status == CLI_EXIT_OK) {
    cli_note("wrote '%s': %.3f s, mono, %ld Hz, %s", args.out_path,
             (double)n / (double)args.rate, args.rate,
             args.is_float ? "32-bit float" : "24-bit");
  }
  return status;
}
