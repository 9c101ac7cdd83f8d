/*
  carry process with -o: the files of a batch plan on worker threads that
  share one prepared model, with a progress bar or progress lines.

  Each file gets fresh streams (with the model's core: lanes of a worker's
  lockstep batch, process_lockstep.c, which give the same bits), so its
  output is the same whatever the number of workers or the order they
  finish in.
*/

#include "batch.h"
#include "cli.h"
#include "process.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BAR_WIDTH 24
#define REDRAW_SECONDS 0.25

/** Counts the workers update and the main thread reports. */
typedef struct batch_counts {
  size_t n_processed;
  size_t n_failed;
  double seconds_of_audio;  ///< In the files processed
} batch_counts;

/** The state the workers share, under `lock`. */
typedef struct batch_run {
  const batch_plan *plan;
  const process_args *args;
  const process_model *model;
  bool is_terminal;            ///< A bar on stderr, else a line per file
  bool is_lockstep;            ///< Workers run files in lockstep groups
  int max_lanes;               ///< process_feed's, for each lockstep worker
  pthread_mutex_t lock;
  pthread_cond_t changed;      ///< A file finished or a worker stopped
  size_t next;                 ///< The next item to hand out
  int n_running;               ///< Workers not yet stopped
  batch_counts counts;
  atomic_uint_least64_t meter; ///< Microseconds of audio run so far, in
                               ///< files not yet finished too
  double start;                ///< Monotonic seconds
} batch_run;

static double now_seconds(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static size_t n_to_process(const batch_plan *plan)
{
  return plan->n_items - plan->n_skipped;
}

/* ------------------------------------------------------------------------ */
/* Progress */

/** "1:05" or "1:02:05". */
static void format_duration(double seconds, char *text, size_t size)
{
  const long s = seconds > 0.0 ? (long)(seconds + 0.5) : 0;
  if (s >= 3600) {
    snprintf(text, size, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
  } else {
    snprintf(text, size, "%ld:%02ld", s / 60, s % 60);
  }
}

/** The estimate assumes the files left take as long, on average, as the
    files done so far. */
static void format_eta(const batch_run *run, double elapsed, char *text,
                       size_t size)
{
  const size_t n_total = n_to_process(run->plan);
  const size_t n_done = run->counts.n_processed + run->counts.n_failed;
  if (n_done == 0) {
    snprintf(text, size, "--:--");
    return;
  }
  format_duration(elapsed * (double)(n_total - n_done) / (double)n_done,
                  text, size);
}

/** Redraws the bar in place; called by the main thread, lock held. */
static void draw_bar(const batch_run *run)
{
  const size_t n_total = n_to_process(run->plan);
  const size_t n_done = run->counts.n_processed + run->counts.n_failed;
  const double elapsed = now_seconds() - run->start;
  char bar[BAR_WIDTH + 1], eta[32];
  const size_t filled = n_total ? BAR_WIDTH * n_done / n_total : BAR_WIDTH;
  for (size_t k = 0; k < BAR_WIDTH; ++k) {
    bar[k] = k < filled ? '#' : '.';
  }
  bar[BAR_WIDTH] = '\0';
  format_eta(run, elapsed, eta, sizeof(eta));
  const double seconds = 1e-6 * (double)atomic_load(&run->meter);
  const double speed = elapsed > 0.0 ? seconds / elapsed : 0.0;
  flockfile(stderr);
  fprintf(stderr, "\r\033[K[%s] %zu/%zu files, %.1f s of audio, %.1fx real "
          "time, ETA %s", bar, n_done, n_total, seconds, speed, eta);
  funlockfile(stderr);
}

/** One line per finished file when stderr is not a terminal. */
static void report_file(const batch_run *run, size_t n_done,
                        const batch_item *item,
                        const process_outcome *outcome)
{
  if (!run->is_terminal) {
    cli_note("[%zu/%zu] '%s' -> '%s': %s", n_done, n_to_process(run->plan),
             item->in_path, item->out_path, outcome->summary);
  }
}

static void report_summary(const batch_run *run, bool was_interrupted)
{
  const batch_counts *c = &run->counts;
  const double elapsed = now_seconds() - run->start;
  const size_t n_left = n_to_process(run->plan) - c->n_processed -
                        c->n_failed;
  char left[96] = "";
  if (was_interrupted) {
    snprintf(left, sizeof(left), ", %zu not started or stopped "
             "(interrupted)", n_left);
  }
  cli_note("%zu files: %zu processed, %zu skipped (output exists), %zu "
           "failed%s; %.1f s of audio in %.1f s (%.1fx real time)",
           run->plan->n_items, c->n_processed, run->plan->n_skipped,
           c->n_failed, left, c->seconds_of_audio, elapsed,
           elapsed > 0.0 ? c->seconds_of_audio / elapsed : 0.0);
}

/* ------------------------------------------------------------------------ */
/* Workers */

/** The next item to process, or NULL when there is none or Ctrl-C was
    pressed; lock held. */
static const batch_item *take_item(batch_run *run)
{
  while (run->next < run->plan->n_items && !cli_interrupted()) {
    const batch_item *item = &run->plan->items[run->next++];
    if (!item->is_skipped) {
      return item;
    }
  }
  return NULL;
}

static int process_item(batch_run *run, const batch_item *item,
                        process_outcome *outcome)
{
  const int status = batch_make_parents(item->out_path);
  if (status != CLI_EXIT_OK) {
    return status;
  }
  return process_one_file(run->model, run->args, item->in_path,
                          item->out_path, &run->meter, outcome);
}

/** The next item for a worker (process_feed's take). */
static const batch_item *take_next(void *context)
{
  batch_run *run = context;
  pthread_mutex_lock(&run->lock);
  const batch_item *item = take_item(run);
  pthread_mutex_unlock(&run->lock);
  return item;
}

/** Counts and reports a file a worker is done with (process_feed's
    finish); `outcome` may be NULL when `status` is a failure. */
static void finish_item(void *context, const batch_item *item, int status,
                        const process_outcome *outcome)
{
  batch_run *run = context;
  pthread_mutex_lock(&run->lock);
  /* An interrupted file is neither done nor failed: it was stopped. */
  if (status == CLI_EXIT_OK) {
    ++run->counts.n_processed;
    run->counts.seconds_of_audio += outcome->seconds_of_audio;
    report_file(run, run->counts.n_processed + run->counts.n_failed, item,
                outcome);
  } else if (!cli_interrupted()) {
    ++run->counts.n_failed;
  }
  pthread_cond_signal(&run->changed);
  pthread_mutex_unlock(&run->lock);
}

static void *work(void *context)
{
  batch_run *run = context;
  const process_feed feed = {take_next, finish_item, run, run->max_lanes};
  if (run->is_lockstep) {
    process_lockstep_work(run->model, run->args, &feed, &run->meter);
  } else {
    for (const batch_item *item = take_next(run); item;
         item = take_next(run)) {
      process_outcome outcome;
      memset(&outcome, 0, sizeof(outcome));
      const int status = process_item(run, item, &outcome);
      finish_item(run, item, status, &outcome);
    }
  }
  pthread_mutex_lock(&run->lock);
  --run->n_running;
  pthread_cond_signal(&run->changed);
  pthread_mutex_unlock(&run->lock);
  return NULL;
}

/** Waits for the workers to stop, redrawing the bar meanwhile. */
static void watch(batch_run *run)
{
  pthread_mutex_lock(&run->lock);
  while (run->n_running > 0) {
    if (run->is_terminal) {
      draw_bar(run);
    }
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_nsec += (long)(REDRAW_SECONDS * 1e9);
    until.tv_sec += until.tv_nsec / 1000000000L;
    until.tv_nsec %= 1000000000L;
    pthread_cond_timedwait(&run->changed, &run->lock, &until);
  }
  if (run->is_terminal) {
    draw_bar(run);
    fputc('\n', stderr);
  }
  pthread_mutex_unlock(&run->lock);
}

/** Starts up to `n_jobs` workers (no more than there are files); returns
    how many started. */
static int start_workers(batch_run *run, pthread_t *threads, int n_jobs)
{
  const size_t n_files = n_to_process(run->plan);
  const int n_wanted = (size_t)n_jobs < n_files ? n_jobs : (int)n_files;
  // a fair share of the files each, but never fewer than one vector of
  // lanes (fewer cost as much) nor more than a batch holds
  const size_t share = n_wanted ? (n_files + (size_t)n_wanted - 1) /
                                    (size_t)n_wanted
                                : 1;
  run->max_lanes = share < 8 ? 8 : share > CARRY_MAX_LANES ? CARRY_MAX_LANES
                                                          : (int)share;
  int n_started = 0;
  pthread_mutex_lock(&run->lock);
  for (; n_started < n_wanted; ++n_started) {
    if (pthread_create(&threads[n_started], NULL, work, run) != 0) {
      break;  // fewer workers, same outputs
    }
    ++run->n_running;
  }
  pthread_mutex_unlock(&run->lock);
  return n_started;
}

static int run_workers(batch_run *run, int n_jobs)
{
  pthread_t *threads = calloc((size_t)n_jobs, sizeof(*threads));
  if (!threads) {
    return cli_error(CLI_EXIT_FAILED, "out of memory for %d workers",
                     n_jobs);
  }
  const int n_started = start_workers(run, threads, n_jobs);
  if (n_started == 0 && n_to_process(run->plan) > 0) {
    free(threads);
    return cli_error(CLI_EXIT_FAILED, "cannot start a worker thread");
  }
  watch(run);
  for (int k = 0; k < n_started; ++k) {
    pthread_join(threads[k], NULL);
  }
  free(threads);
  return CLI_EXIT_OK;
}

/* ------------------------------------------------------------------------ */
/* The batch */

static int exit_status(const batch_run *run)
{
  if (cli_interrupted()) {
    return cli_error(CLI_EXIT_FAILED, "interrupted; the outputs not "
                     "finished were not written");
  }
  return run->counts.n_failed || run->plan->n_unreadable ? CLI_EXIT_FILE
                                                         : CLI_EXIT_OK;
}

static void report_plan(const batch_plan *plan, const process_args *args)
{
  if (args->n_shards > 1) {
    cli_note("shard %ld/%ld: %zu of %zu files", args->shard_index,
             args->n_shards, plan->n_items, plan->n_found);
  }
  if (plan->n_skipped) {
    cli_note("skipping %zu files whose output exists (--force overwrites "
             "them)", plan->n_skipped);
  }
}

static int run_plan(const batch_plan *plan, const process_args *args)
{
  batch_run run;
  memset(&run, 0, sizeof(run));
  atomic_init(&run.meter, 0);
  run.plan = plan;
  run.args = args;
  run.is_terminal = isatty(STDERR_FILENO);
  process_model model;
  int status = process_model_prepare(&model, args);
  if (status == CLI_EXIT_OK) {
    run.model = &model;
    run.is_lockstep = process_lockstep_fits(&model, args);
    pthread_mutex_init(&run.lock, NULL);
    pthread_cond_init(&run.changed, NULL);
    cli_clear_line_before_messages(run.is_terminal);
    run.start = now_seconds();
    status = run_workers(&run, args->n_jobs);
    cli_clear_line_before_messages(false);
    pthread_cond_destroy(&run.changed);
    pthread_mutex_destroy(&run.lock);
  }
  if (status == CLI_EXIT_OK) {
    report_summary(&run, cli_interrupted());
    status = exit_status(&run);
  }
  process_model_free(&model);
  return status;
}

int process_batch(const process_args *args)
{
  const batch_options options = {args->out_dir, args->list_path,
                                 args->pattern, args->is_forced,
                                 args->shard_index, args->n_shards};
  batch_plan plan;
  int status = batch_plan_build(&plan, &options, args->n_inputs,
                                args->inputs);
  if (status == CLI_EXIT_OK) {
    report_plan(&plan, args);
    status = run_plan(&plan, args);
  }
  batch_plan_free(&plan);
  return status;
}
