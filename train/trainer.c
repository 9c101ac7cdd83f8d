/*
  The training loop: batches of segments with warm-up and truncated
  back-propagation, Adam, validation after every epoch, the best weights,
  the plateau schedule, early stopping and the limits.
*/

#include "train_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_seconds(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ------------------------------------------------------------------------ */
/* Creating */

/** OpenBLAS's thread count is process-wide; results may depend on it, so
    it is always set, never left to the environment. */
static int set_threads(int wanted)
{
  long n = wanted;
  if (n <= 0) {
    n = sysconf(_SC_NPROCESSORS_ONLN);
  }
  n = n < 1 ? 1 : n;
  openblas_set_num_threads((int)n);
  return (int)n;
}

static carry_status allocate(carry_trainer *t, carry_error *err)
{
  const carry_train_settings *s = &t->settings;
  const int B = s->batch_size > t->split.n_val ? s->batch_size
                                               : t->split.n_val;
  const size_t TB = (size_t)s->tbptt_samples * (size_t)B;
  t->net = train_net_create(&s->arch, 1 + t->data->n_knobs, s->tbptt_samples,
                            B);
  const size_t P = t->net ? t->net->n_params : 0;
  t->m = calloc(P + 1, sizeof(float));
  t->v = calloc(P + 1, sizeof(float));
  t->best = calloc(P + 1, sizeof(float));
  t->target = calloc(TB, sizeof(float));
  t->prev_y_hat = calloc((size_t)B, sizeof(float));
  t->prev_y = calloc((size_t)B, sizeof(float));
  t->error_sums = calloc((size_t)B, sizeof(double));
  t->columns = calloc((size_t)B, sizeof(train_sequence));
  t->order = calloc((size_t)t->split.n_segments, sizeof(int));
  if (!t->net || !t->m || !t->v || !t->best || !t->target ||
      !t->prev_y_hat || !t->prev_y || !t->error_sums || !t->columns ||
      !t->order) {
    return carry_fail(err, CARRY_ERR_NO_MEMORY, "out of memory for a "
                      "network of %d steps by %d segments", s->tbptt_samples,
                      B);
  }
  return CARRY_SUCCESS;
}

carry_trainer *train_trainer_new(const carry_train_settings *settings,
                                 const carry_train_data *data,
                                 carry_error *err)
{
  if (carry_train_settings_check(settings, err)) {
    return NULL;
  }
  carry_trainer *t = calloc(1, sizeof(*t));
  if (!t) {
    carry_fail(err, CARRY_ERR_NO_MEMORY, "out of memory for a trainer");
    return NULL;
  }
  t->settings = *settings;
  t->data = data;
  t->adam = (train_adam){0.9, 0.999, 1e-8};
  t->pos.lr = settings->learning_rate;
  t->pos.best_val_loss = INFINITY;
  if (train_split_create(data, settings, &t->split, err) ||
      allocate(t, err)) {
    carry_trainer_free(t);
    return NULL;
  }
  t->fingerprint = train_data_fingerprint(data);
  t->n_threads = set_threads(settings->n_threads);
  return t;
}

carry_trainer *carry_trainer_create(const carry_train_settings *settings,
                                    const carry_train_data *data,
                                    carry_error *err)
{
  carry_trainer *t = train_trainer_new(settings, data, err);
  if (t) {
    t->pos.rng = train_rng_new(settings->seed);
    train_net_init(t->net, &t->pos.rng);
    memcpy(t->best, t->net->params, t->net->n_params * sizeof(float));
    carry_succeed(err);
  }
  return t;
}

void carry_trainer_free(carry_trainer *t)
{
  if (t) {
    train_split_free(&t->split);
    train_net_free(t->net);
    free(t->m);
    free(t->v);
    free(t->best);
    free(t->target);
    free(t->prev_y_hat);
    free(t->prev_y);
    free(t->error_sums);
    free(t->columns);
    free(t->order);
    free(t);
  }
}

const carry_train_settings *carry_trainer_settings(const carry_trainer *t)
{
  return &t->settings;
}

const carry_train_progress *carry_trainer_progress(const carry_trainer *t)
{
  return &t->progress;
}

carry_status carry_trainer_set_limits(carry_trainer *t, int max_epochs,
                                      double max_minutes, int patience,
                                      carry_error *err)
{
  carry_train_settings s = t->settings;
  s.max_epochs = max_epochs;
  s.max_minutes = max_minutes;
  s.patience = patience;
  carry_status st = carry_train_settings_check(&s, err);
  if (!st) {
    t->settings = s;
  }
  return st;
}

const float *carry_trainer_parameters(const carry_trainer *t, bool best,
                                      size_t *n_params)
{
  *n_params = t->net->n_params;
  return best ? t->best : t->net->params;
}

/* ------------------------------------------------------------------------ */
/* Chunks */

/** Loads steps [off, off + n) of each column's sequence into net->x and
    t->target (zeros past a sequence's end). */
static void fill_chunk(carry_trainer *t, int n_batch, size_t off, int n)
{
  const int N = t->net->n_inputs;
  for (int step = 0; step < n; ++step) {
    for (int b = 0; b < n_batch; ++b) {
      const train_sequence *col = &t->columns[b];
      const size_t k = off + (size_t)step;
      const size_t row = (size_t)step * (size_t)n_batch + (size_t)b;
      float *x = t->net->x + row * (size_t)N;  // (N) audio, then knobs
      x[0] = k < col->n ? col->dry[k] : 0.0f;
      memcpy(x + 1, col->knobs, (size_t)(N - 1) * sizeof(float));
      t->target[row] = k < col->n ? col->target[k] : 0.0f;
    }
  }
}

/** The chunk's last outputs and targets, the samples before the next. */
static void keep_last(carry_trainer *t, int n_batch, int n)
{
  const size_t last = (size_t)(n - 1) * (size_t)n_batch;
  memcpy(t->prev_y_hat, t->net->y + last, (size_t)n_batch * sizeof(float));
  memcpy(t->prev_y, t->target + last, (size_t)n_batch * sizeof(float));
}

/** Runs the first W samples of the batch forward, without loss. */
static void warm_up(carry_trainer *t, int n_batch)
{
  const int W = t->settings.warmup_samples, T = t->settings.tbptt_samples;
  memset(t->prev_y_hat, 0, (size_t)n_batch * sizeof(float));
  memset(t->prev_y, 0, (size_t)n_batch * sizeof(float));
  for (int off = 0; off < W; off += T) {
    const int n = W - off < T ? W - off : T;
    fill_chunk(t, n_batch, (size_t)off, n);
    train_net_forward(t->net, n, n_batch);
    keep_last(t, n_batch, n);
    train_net_carry_state(t->net, n, n_batch);
  }
}

/** Adam on the gradient just computed, clipped; false if it was not
    finite (the step is skipped). */
static bool update(carry_trainer *t)
{
  train_net *net = t->net;
  const double norm = train_grad_norm(net->grads, net->n_params);
  if (!isfinite(norm)) {
    ++t->pos.n_skipped;
    return false;
  }
  const double clip = t->settings.clip_norm;
  const float scale = clip > 0.0 && norm > clip ? (float)(clip / norm) : 1.0f;
  train_adam_step(&t->adam, ++t->pos.n_updates, t->pos.lr, scale, net->grads,
                  net->params, t->m, t->v, net->n_params);
  return true;
}

/** Forward, loss, backward and an update over steps [off, off + n). */
static void train_chunk(carry_trainer *t, int n_batch, size_t off, int n)
{
  train_net *net = t->net;
  fill_chunk(t, n_batch, off, n);
  train_net_forward(net, n, n_batch);
  const double loss = train_loss_chunk(net->y, t->target, t->prev_y_hat,
                                       t->prev_y, n, n_batch, net->d_y);
  if (isfinite(loss)) {
    train_net_backward(net, n, n_batch);
    if (update(t)) {
      t->pos.epoch_loss_sum += loss;
      ++t->pos.epoch_loss_count;
    }
  } else {
    ++t->pos.n_skipped;
  }
  keep_last(t, n_batch, n);
  train_net_carry_state(net, n, n_batch);
}

/** Batch `index` of the epoch's shuffled segments. */
static void train_batch(carry_trainer *t, int index)
{
  const carry_train_settings *s = &t->settings;
  const int first = index * s->batch_size;
  const int left = t->split.n_segments - first;
  const int n_batch = left < s->batch_size ? left : s->batch_size;
  for (int b = 0; b < n_batch; ++b) {
    const train_segment *seg = &t->split.segments[t->order[first + b]];
    train_sequence col = t->split.train[seg->sequence];
    col.dry += seg->start;
    col.target += seg->start;
    col.n = (size_t)s->segment_samples;
    t->columns[b] = col;
  }
  train_net_reset_state(t->net, n_batch);
  warm_up(t, n_batch);
  for (int off = s->warmup_samples; off < s->segment_samples;
       off += s->tbptt_samples) {
    const int rest = s->segment_samples - off;
    train_chunk(t, n_batch, (size_t)off,
                rest < s->tbptt_samples ? rest : s->tbptt_samples);
  }
  t->pos.samples_trained += (uint64_t)n_batch * (uint64_t)s->segment_samples;
}

/* ------------------------------------------------------------------------ */
/* Validation */

typedef struct validation {
  double loss;
  double esr;
  double esr_pre;
} validation;

/** Adds each sequence's part of a chunk run forward to the sums. */
static void add_chunk_sums(carry_trainer *t, size_t off, int n,
                           train_loss_sums *sums)
{
  const int V = t->split.n_val;
  for (int v = 0; v < V; ++v) {
    const size_t length = t->split.val[v].n;
    const size_t left = length > off ? length - off : 0;
    const int count = left < (size_t)n ? (int)left : n;
    train_loss_sums_add(sums, t->net->y + v, t->target + v, V, count,
                        &t->prev_y_hat[v], &t->prev_y[v], &t->error_sums[v]);
  }
}

static validation figures(const carry_trainer *t, const train_loss_sums *s)
{
  const double eps = CARRY_TRAIN_LOSS_EPSILON;
  double dc = 0.0;
  for (int v = 0; v < t->split.n_val; ++v) {
    const double mean = t->error_sums[v] / (double)t->split.val[v].n;
    dc += mean * mean;
  }
  validation f;
  f.esr_pre = (s->error_pre / s->n) / (s->target_pre / s->n + eps);
  f.loss = f.esr_pre + (dc / t->split.n_val) / (s->target / s->n + eps);
  f.esr = s->target > 0.0 ? s->error / s->target
                          : (s->error > 0.0 ? INFINITY : 0.0);
  return f;
}

/** Every validation sequence from zero state to its end, in parallel. */
static validation validate(carry_trainer *t)
{
  const int V = t->split.n_val, T = t->settings.tbptt_samples;
  train_loss_sums sums = {0.0, 0.0, 0.0, 0.0, 0.0};
  memcpy(t->columns, t->split.val, (size_t)V * sizeof(train_sequence));
  memset(t->prev_y_hat, 0, (size_t)V * sizeof(float));
  memset(t->prev_y, 0, (size_t)V * sizeof(float));
  memset(t->error_sums, 0, (size_t)V * sizeof(double));
  train_net_reset_state(t->net, V);
  for (size_t off = 0; off < t->split.max_val_length; off += (size_t)T) {
    const size_t rest = t->split.max_val_length - off;
    const int n = rest < (size_t)T ? (int)rest : T;
    fill_chunk(t, V, off, n);
    train_net_forward(t->net, n, V);
    add_chunk_sums(t, off, n, &sums);
    train_net_carry_state(t->net, n, V);
  }
  return figures(t, &sums);
}

/** Keeps the best weights and moves the schedule and the patience on. */
static void judge(carry_trainer *t, const validation *f)
{
  train_position *p = &t->pos;
  p->val_loss = f->loss;
  p->val_esr = f->esr;
  p->val_esr_pre = f->esr_pre;
  if (f->loss < p->best_val_loss) {
    p->best_val_loss = f->loss;
    p->best_val_esr = f->esr;
    p->best_val_esr_pre = f->esr_pre;
    p->best_epoch = p->epoch;
    p->epochs_since_best = 0;
    p->epochs_since_lr_change = 0;
    memcpy(t->best, t->net->params, t->net->n_params * sizeof(float));
    return;
  }
  ++p->epochs_since_best;
  const carry_train_settings *s = &t->settings;
  if (s->lr_patience && ++p->epochs_since_lr_change >= s->lr_patience) {
    p->lr = fmax(p->lr * s->lr_factor, s->lr_min);
    p->epochs_since_lr_change = 0;
  }
}

/* ------------------------------------------------------------------------ */
/* Progress */

static int n_batches(const carry_trainer *t)
{
  return (t->split.n_segments + t->settings.batch_size - 1) /
         t->settings.batch_size;
}

static void update_progress(carry_trainer *t, carry_train_event event)
{
  const train_position *p = &t->pos;
  carry_train_progress *g = &t->progress;
  g->event = event;
  g->epoch = p->epoch;
  g->max_epochs = t->settings.max_epochs;
  g->batch = p->batch;
  g->n_batches = n_batches(t);
  g->train_loss = p->epoch_loss_count
                    ? p->epoch_loss_sum / (double)p->epoch_loss_count : 0.0;
  g->val_loss = p->val_loss;
  g->val_esr = p->val_esr;
  g->val_esr_pre = p->val_esr_pre;
  g->best_val_loss = p->best_val_loss;
  g->best_val_esr = p->best_val_esr;
  g->best_val_esr_pre = p->best_val_esr_pre;
  g->best_epoch = p->best_epoch;
  g->initial_val_loss = p->initial_val_loss;
  g->learning_rate = p->lr;
  g->n_updates = p->n_updates;
  g->n_skipped = p->n_skipped;
  g->seconds = p->seconds;
  g->epoch_seconds = p->epoch_seconds;
  g->val_seconds = t->val_seconds;
  g->epoch_gemm_seconds = t->epoch_gemm_seconds;
  g->val_gemm_seconds = t->val_gemm_seconds;
  g->epoch_samples = t->epoch_samples;
  g->gemm_seconds = p->gemm_seconds;
  g->samples_trained = p->samples_trained;
  g->stop = t->stop;
}

/** Adds the time since `*mark` to the totals and moves the mark. */
static void clock_in(carry_trainer *t, double *mark)
{
  const double now = now_seconds();
  t->pos.seconds += now - *mark;
  t->pos.gemm_seconds += t->net->profile.gemm_seconds;
  t->net->profile.gemm_seconds = 0.0;
  *mark = now;
}

/* ------------------------------------------------------------------------ */
/* Epochs */

void train_trainer_reshuffle(carry_trainer *t)
{
  for (int k = 0; k < t->split.n_segments; ++k) {
    t->order[k] = k;
  }
  t->pos.rng = t->pos.epoch_rng;
  train_rng_shuffle(&t->pos.rng, t->order, t->split.n_segments);
}

static void begin_epoch(carry_trainer *t)
{
  t->pos.epoch_rng = t->pos.rng;
  train_trainer_reshuffle(t);
  t->pos.epoch_loss_sum = 0.0;
  t->pos.epoch_loss_count = 0;
}

/** The limits that end a run before an epoch starts. */
static carry_train_stop limit_reached(const carry_trainer *t)
{
  if (t->pos.epoch >= t->settings.max_epochs) {
    return CARRY_TRAIN_EPOCHS_DONE;
  }
  const int patience = t->settings.patience;
  if (patience && t->pos.epochs_since_best >= patience) {
    return CARRY_TRAIN_EARLY_STOP;
  }
  return CARRY_TRAIN_RUNNING;
}

typedef struct run_context {
  const char *checkpoint_path;
  carry_train_callback callback;
  void *user;
  double start;           ///< When this run started
  double mark;            ///< Time accounted up to here
} run_context;

static bool tell(carry_trainer *t, run_context *run, carry_train_event event)
{
  clock_in(t, &run->mark);
  update_progress(t, event);
  return !run->callback || run->callback(&t->progress, run->user);
}

static bool is_time_up(const carry_trainer *t, const run_context *run)
{
  const double limit = t->settings.max_minutes * 60.0;
  return limit > 0.0 && now_seconds() - run->start >= limit;
}

/** The figures of an epoch, for the throughput report. */
typedef struct epoch_start {
  double seconds;        ///< When it started (this run's part)
  double gemm_seconds;   ///< pos.gemm_seconds then
  uint64_t samples;      ///< pos.samples_trained then
} epoch_start;

static epoch_start start_epoch_clock(carry_trainer *t, run_context *run)
{
  clock_in(t, &run->mark);
  epoch_start start = {run->mark, t->pos.gemm_seconds,
                       t->pos.samples_trained};
  return start;
}

/** Validates, judges, counts the epoch done and writes the checkpoint. */
static carry_status end_epoch(carry_trainer *t, run_context *run,
                              const epoch_start *start, carry_error *err)
{
  const double val_start = now_seconds();
  const double gemm_start = t->net->profile.gemm_seconds;
  const validation f = validate(t);
  t->val_seconds = now_seconds() - val_start;
  t->val_gemm_seconds = t->net->profile.gemm_seconds - gemm_start;
  ++t->pos.epoch;
  judge(t, &f);
  t->pos.batch = 0;
  clock_in(t, &run->mark);
  t->pos.epoch_seconds = run->mark - start->seconds;
  t->epoch_gemm_seconds = t->pos.gemm_seconds - start->gemm_seconds;
  t->epoch_samples = t->pos.samples_trained - start->samples;
  if (run->checkpoint_path) {
    return carry_trainer_save_checkpoint(t, run->checkpoint_path, err);
  }
  return CARRY_SUCCESS;
}

/** Trains the rest of the current epoch; sets t->stop if it must end. */
static carry_status run_epoch(carry_trainer *t, run_context *run,
                              carry_error *err)
{
  const epoch_start start = start_epoch_clock(t, run);
  if (t->pos.batch == 0) {
    begin_epoch(t);
  }
  bool is_cut = false;
  while (t->pos.batch < n_batches(t) && !is_cut) {
    train_batch(t, t->pos.batch++);
    if (!tell(t, run, CARRY_TRAIN_BATCH)) {
      t->stop = CARRY_TRAIN_INTERRUPTED;
      return run->checkpoint_path
               ? carry_trainer_save_checkpoint(t, run->checkpoint_path, err)
               : CARRY_SUCCESS;
    }
    is_cut = is_time_up(t, run);
  }
  const carry_status st = end_epoch(t, run, &start, err);
  if (is_cut) {
    t->stop = CARRY_TRAIN_TIME_UP;
  }
  if (!tell(t, run, CARRY_TRAIN_VALIDATED) && !t->stop) {
    t->stop = CARRY_TRAIN_INTERRUPTED;
  }
  return st;
}

static void validate_initial(carry_trainer *t, run_context *run)
{
  const validation f = validate(t);
  t->pos.best_val_loss = INFINITY;
  judge(t, &f);
  t->pos.initial_val_loss = f.loss;
  t->pos.is_validated = true;
  if (!tell(t, run, CARRY_TRAIN_VALIDATED)) {
    t->stop = CARRY_TRAIN_INTERRUPTED;
  }
}

carry_status carry_trainer_run(carry_trainer *t, const char *checkpoint_path,
                               carry_train_callback callback, void *user,
                               carry_error *err)
{
  run_context run = {checkpoint_path, callback, user, now_seconds(), 0.0};
  run.mark = run.start;
  t->stop = CARRY_TRAIN_RUNNING;
  t->net->profile.gemm_seconds = 0.0;
  carry_status st = CARRY_SUCCESS;
  if (!t->pos.is_validated) {
    validate_initial(t, &run);
  }
  while (!st && !t->stop) {
    t->stop = limit_reached(t);
    if (!t->stop) {
      st = run_epoch(t, &run, err);
    }
  }
  update_progress(t, t->progress.event);
  return st ? st : carry_succeed(err);
}

/* ------------------------------------------------------------------------ */
/* The forward pass on its own */

static void copy_weights(train_net *net, const float *params)
{
  memcpy(net->params, params, net->n_params * sizeof(float));
}

carry_status carry_trainer_forward(const carry_trainer *t, bool best,
                                   const float *dry, const float *knobs,
                                   size_t n, float *out, carry_error *err)
{
  const int T = t->settings.tbptt_samples, N = t->net->n_inputs;
  train_net *net = train_net_create(&t->settings.arch, N, T, 1);
  if (!net) {
    return carry_fail(err, CARRY_ERR_NO_MEMORY, "out of memory");
  }
  copy_weights(net, best ? t->best : t->net->params);
  train_net_reset_state(net, 1);
  for (size_t off = 0; off < n; off += (size_t)T) {
    const int steps = n - off < (size_t)T ? (int)(n - off) : T;
    for (int s = 0; s < steps; ++s) {
      net->x[(size_t)s * (size_t)N] = dry[off + (size_t)s];
      for (int k = 1; k < N; ++k) {
        net->x[(size_t)s * (size_t)N + (size_t)k] = knobs[k - 1];
      }
    }
    train_net_forward(net, steps, 1);
    memcpy(out + off, net->y, (size_t)steps * sizeof(float));
    train_net_carry_state(net, steps, 1);
  }
  train_net_free(net);
  return carry_succeed(err);
}
