/*
  The list of a batch: collecting, mirroring, sorting and sharding.
*/

#include "batch.h"

#include "cli.h"

#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/types.h>

/** The folder the outputs go to, if it exists already: the search skips
    it, so that a run with OUTDIR inside an input folder does not take its
    own outputs as inputs. */
typedef struct folder_id {
  bool exists;
  dev_t device;
  ino_t inode;
} folder_id;

/** What the search carries down the tree. */
typedef struct search {
  batch_plan *plan;
  const batch_options *options;
  folder_id out_dir;
} search;

/* ------------------------------------------------------------------------ */
/* Paths */

/** "a/b", with no doubled slash; NULL without memory. */
static char *join_path(const char *dir, const char *name)
{
  const size_t n_dir = strlen(dir);
  const bool has_slash = n_dir > 0 && dir[n_dir - 1] == '/';
  const size_t size = n_dir + strlen(name) + 2;
  char *path = malloc(size);
  if (path) {
    snprintf(path, size, "%s%s%s", dir, has_slash || !n_dir ? "" : "/",
             name);
  }
  return path;
}

static const char *base_name(const char *path)
{
  const char *slash = strrchr(path, '/');
  return slash ? slash + 1 : path;
}

/** The name ends in one of the extensions Carry takes by default. */
static bool has_audio_extension(const char *name)
{
  static const char *const extensions[] = {"wav", "flac", "aiff", "aif",
                                           "ogg"};
  const char *dot = strrchr(name, '.');
  for (size_t k = 0; dot && k < sizeof(extensions) / sizeof(*extensions);
       ++k) {
    if (!strcasecmp(dot + 1, extensions[k])) {
      return true;
    }
  }
  return false;
}

static bool is_wanted(const char *name, const char *pattern)
{
  return pattern ? fnmatch(pattern, name, 0) == 0
                 : has_audio_extension(name);
}

/* ------------------------------------------------------------------------ */
/* Collecting */

static int add_item(batch_plan *plan, const char *in_path,
                    const char *out_dir, const char *relative)
{
  if (plan->n_items == plan->capacity) {
    const size_t capacity = plan->capacity ? 2 * plan->capacity : 64;
    batch_item *items = realloc(plan->items, capacity * sizeof(*items));
    if (!items) {
      return cli_error(CLI_EXIT_FAILED, "out of memory for %zu files",
                       capacity);
    }
    plan->items = items;
    plan->capacity = capacity;
  }
  batch_item *item = &plan->items[plan->n_items];
  item->in_path = strdup(in_path);
  item->out_path = join_path(out_dir, relative);
  item->is_skipped = false;
  ++plan->n_items;  // counted now so that batch_plan_free frees both
  if (!item->in_path || !item->out_path) {
    return cli_error(CLI_EXIT_FAILED, "out of memory for '%s'", in_path);
  }
  return CLI_EXIT_OK;
}

static int search_folder(search *s, const char *dir, const char *relative);

/** One entry of a folder: a subfolder is searched (not through a link, so
    that a link cannot make a loop), a wanted file added. */
static int search_entry(search *s, const char *path, const char *relative,
                        const char *name)
{
  struct stat link_info, info;
  if (lstat(path, &link_info) != 0 || stat(path, &info) != 0) {
    return CLI_EXIT_OK;  // a dangling link: nothing to process
  }
  if (S_ISDIR(info.st_mode)) {
    const bool is_out_dir = s->out_dir.exists &&
                            info.st_dev == s->out_dir.device &&
                            info.st_ino == s->out_dir.inode;
    return S_ISLNK(link_info.st_mode) || is_out_dir
             ? CLI_EXIT_OK : search_folder(s, path, relative);
  }
  if (!S_ISREG(info.st_mode) || !is_wanted(name, s->options->pattern)) {
    return CLI_EXIT_OK;
  }
  return add_item(s->plan, path, s->options->out_dir, relative);
}

static int search_folder(search *s, const char *dir, const char *relative)
{
  DIR *folder = opendir(dir);
  if (!folder) {
    ++s->plan->n_unreadable;
    cli_error(CLI_EXIT_FILE, "cannot read folder '%s': %s", dir,
              strerror(errno));
    return CLI_EXIT_OK;  // reported; the rest of the batch goes on
  }
  int status = CLI_EXIT_OK;
  for (struct dirent *e = readdir(folder); e && status == CLI_EXIT_OK;
       e = readdir(folder)) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) {
      continue;
    }
    char *path = join_path(dir, e->d_name);
    char *below = join_path(relative, e->d_name);
    status = path && below ? search_entry(s, path, below, e->d_name)
                           : cli_error(CLI_EXIT_FAILED, "out of memory");
    free(path);
    free(below);
  }
  closedir(folder);
  return status;
}

/** A folder is searched; anything else is taken as a file, which, if it
    cannot be read, fails in its turn with the others. */
static int add_input(search *s, const char *path)
{
  struct stat info;
  if (stat(path, &info) == 0 && S_ISDIR(info.st_mode)) {
    return search_folder(s, path, "");
  }
  return add_item(s->plan, path, s->options->out_dir, base_name(path));
}

static void strip_line_end(char *line)
{
  size_t n = strlen(line);
  while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) {
    line[--n] = '\0';
  }
}

static int add_list(search *s, const char *list_path)
{
  const bool is_stdin = !strcmp(list_path, "-");
  FILE *file = is_stdin ? stdin : fopen(list_path, "r");
  if (!file) {
    return cli_error(CLI_EXIT_FILE, "cannot read the list '%s': %s",
                     list_path, strerror(errno));
  }
  char *line = NULL;
  size_t size = 0;
  int status = CLI_EXIT_OK;
  while (status == CLI_EXIT_OK && getline(&line, &size, file) >= 0) {
    strip_line_end(line);
    status = line[0] ? add_input(s, line) : CLI_EXIT_OK;
  }
  if (status == CLI_EXIT_OK && ferror(file)) {
    status = cli_error(CLI_EXIT_FILE, "cannot read the list '%s': %s",
                       list_path, strerror(errno));
  }
  free(line);
  if (!is_stdin) {
    fclose(file);
  }
  return status;
}

/* ------------------------------------------------------------------------ */
/* Ordering */

static int compare_inputs(const void *a, const void *b)
{
  const batch_item *x = a, *y = b;
  const int by_in = strcmp(x->in_path, y->in_path);
  return by_in ? by_in : strcmp(x->out_path, y->out_path);
}

static int compare_outputs(const void *a, const void *b)
{
  const batch_item *const *x = a, *const *y = b;
  return strcmp((*x)->out_path, (*y)->out_path);
}

static void free_item(batch_item *item)
{
  free(item->in_path);
  free(item->out_path);
}

/** Sorted by input; the same file named twice is kept once. */
static void sort_and_drop_repeats(batch_plan *plan)
{
  if (plan->n_items == 0) {
    return;  // no array to sort: qsort must not see NULL
  }
  qsort(plan->items, plan->n_items, sizeof(*plan->items), compare_inputs);
  size_t n_kept = 0;
  for (size_t k = 0; k < plan->n_items; ++k) {
    batch_item *item = &plan->items[k];
    if (n_kept && !compare_inputs(item, &plan->items[n_kept - 1])) {
      free_item(item);
    } else {
      plan->items[n_kept++] = *item;
    }
  }
  plan->n_items = n_kept;
}

/** Two inputs that would be written to one output are refused before
    anything is written. */
static int check_outputs_distinct(const batch_plan *plan)
{
  const batch_item **by_out = malloc((plan->n_items + 1) * sizeof(*by_out));
  if (!by_out) {
    return cli_error(CLI_EXIT_FAILED, "out of memory");
  }
  for (size_t k = 0; k < plan->n_items; ++k) {
    by_out[k] = &plan->items[k];
  }
  qsort(by_out, plan->n_items, sizeof(*by_out), compare_outputs);
  int status = CLI_EXIT_OK;
  for (size_t k = 1; k < plan->n_items && status == CLI_EXIT_OK; ++k) {
    if (!strcmp(by_out[k - 1]->out_path, by_out[k]->out_path)) {
      status = cli_usage_error("'%s' and '%s' would both be written to "
                               "'%s'", by_out[k - 1]->in_path,
                               by_out[k]->in_path, by_out[k]->out_path);
    }
  }
  free(by_out);
  return status;
}

/** Keeps items K, K + N, K + 2N, ...: every shard gets files from the
    whole sorted list, so shards of a tree of similar folders take about
    the same time. */
static void take_shard(batch_plan *plan, long index, long n_shards)
{
  size_t n_kept = 0;
  for (size_t k = 0; k < plan->n_items; ++k) {
    if (k % (size_t)n_shards == (size_t)index) {
      plan->items[n_kept++] = plan->items[k];
    } else {
      free_item(&plan->items[k]);
    }
  }
  plan->n_items = n_kept;
}

static void mark_existing(batch_plan *plan)
{
  for (size_t k = 0; k < plan->n_items; ++k) {
    struct stat info;
    batch_item *item = &plan->items[k];
    item->is_skipped = stat(item->out_path, &info) == 0;
    plan->n_skipped += item->is_skipped;
  }
}

/* ------------------------------------------------------------------------ */
/* The plan */

static int identify_out_dir(const char *out_dir, folder_id *id)
{
  struct stat info;
  memset(id, 0, sizeof(*id));
  if (stat(out_dir, &info) != 0) {
    return CLI_EXIT_OK;  // made when the first output is written
  }
  if (!S_ISDIR(info.st_mode)) {
    return cli_usage_error("the output folder '%s' is not a folder",
                           out_dir);
  }
  *id = (folder_id){true, info.st_dev, info.st_ino};
  return CLI_EXIT_OK;
}

static int collect(search *s, int n_inputs, char **inputs)
{
  int status = CLI_EXIT_OK;
  for (int k = 0; k < n_inputs && status == CLI_EXIT_OK; ++k) {
    status = add_input(s, inputs[k]);
  }
  if (status == CLI_EXIT_OK && s->options->list_path) {
    status = add_list(s, s->options->list_path);
  }
  return status;
}

int batch_plan_build(batch_plan *plan, const batch_options *options,
                     int n_inputs, char **inputs)
{
  memset(plan, 0, sizeof(*plan));
  search s = {plan, options, {false, 0, 0}};
  int status = identify_out_dir(options->out_dir, &s.out_dir);
  if (status == CLI_EXIT_OK) {
    status = collect(&s, n_inputs, inputs);
  }
  if (status != CLI_EXIT_OK) {
    return status;
  }
  sort_and_drop_repeats(plan);
  status = check_outputs_distinct(plan);
  plan->n_found = plan->n_items;
  if (status == CLI_EXIT_OK && plan->n_items == 0 && !plan->n_unreadable) {
    status = cli_usage_error("no input files: the folders hold no %s",
                             options->pattern ? "names matching --pattern"
                                              : "audio files (.wav .flac "
                                                ".aiff .aif .ogg)");
  }
  if (status == CLI_EXIT_OK) {
    take_shard(plan, options->shard_index, options->n_shards);
    if (!options->is_forced) {
      mark_existing(plan);
    }
  }
  return status;
}

void batch_plan_free(batch_plan *plan)
{
  for (size_t k = 0; k < plan->n_items; ++k) {
    free_item(&plan->items[k]);
  }
  free(plan->items);
  memset(plan, 0, sizeof(*plan));
}

/* ------------------------------------------------------------------------ */
/* Output folders */

int batch_make_parents(const char *path)
{
  char *dir = strdup(path);
  if (!dir) {
    return cli_error(CLI_EXIT_FAILED, "out of memory");
  }
  int status = CLI_EXIT_OK;
  /* Each prefix ending before a slash, from the top; another thread may
     make the same folder at the same time, hence EEXIST is fine. */
  for (char *slash = dir[0] ? strchr(dir + 1, '/') : NULL; slash && status == CLI_EXIT_OK;
       slash = strchr(slash + 1, '/')) {
    *slash = '\0';
    if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
      status = cli_error(CLI_EXIT_FILE, "cannot create folder '%s': %s",
                         dir, strerror(errno));
    }
    *slash = '/';
  }
  free(dir);
  return status;
}
