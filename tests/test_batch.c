/*
  `carry process` on batches, through the built binary ($CARRY_EXE): a tree
  of mixed files (mono, stereo, 16/24-bit, float, FLAC, one corrupt file)
  mirrored into an output folder, each output bit for bit the one-file
  run's, the same with -j 1 and -j 2; skipping and --force; --list and
  files given directly; --shard partitions; SIGINT and SIGKILL leaving no
  partial file under a final name; bad arguments with their messages.
*/

#include "harness.h"
#include "subprocess.h"
#include "temp_files.h"

#include <dirent.h>
#include <math.h>
#include <fcntl.h>
#include <signal.h>
#include <sndfile.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define PATH_SIZE 4096
#define TEXT_SIZE 16384
#define MAX_WORDS 40
#define MAX_FILES 64
#define TEMP_MARK ".carry-tmp-"  // what cli_output adds to a temporary

static char root[1024];      // the test's temporary folder
static char model[PATH_SIZE];

/** The audio files of the mixed tree, relative to "in/". */
typedef struct tree_file {
  const char *name;
  int format;
  int channels;
  double seconds;
} tree_file;

static const tree_file tree[] = {
  {"mono16.wav", SF_FORMAT_WAV | SF_FORMAT_PCM_16, 1, 0.5},
  {"sub/stereo24.wav", SF_FORMAT_WAV | SF_FORMAT_PCM_24, 2, 0.4},
  {"sub/deeper/float.wav", SF_FORMAT_WAV | SF_FORMAT_FLOAT, 1, 0.3},
  {"sub/stereo16.flac", SF_FORMAT_FLAC | SF_FORMAT_PCM_16, 2, 0.3},
  {"Upper.WAV", SF_FORMAT_WAV | SF_FORMAT_PCM_24, 1, 0.2},
};
#define N_TREE (sizeof(tree) / sizeof(tree[0]))

/* ------------------------------------------------------------------------ */
/* Paths and files */

/** snprintf for paths, where the test folder keeps every name short; the
    wrapper spares the truncation warnings of names built from names. */
static void format_text(char *out, size_t size, const char *format, ...)
  __attribute__((format(printf, 3, 4)));

static void format_text(char *out, size_t size, const char *format, ...)
{
  va_list args;
  va_start(args, format);
  vsnprintf(out, size, format, args);
  va_end(args);
}

/** `name` under the test folder, in one of a few rotating buffers. */
static const char *at(const char *name)
{
  static char paths[16][PATH_SIZE];
  static int next = 0;
  char *path = paths[next++ % 16];
  format_text(path, PATH_SIZE, "%s/%s", root, name);
  return path;
}

/** mkdir -p for the folder above `path`. */
static void make_parents(const char *path)
{
  char dir[PATH_SIZE];
  format_text(dir, sizeof(dir), "%s", path);
  for (char *slash = strchr(dir + 1, '/'); slash;
       slash = strchr(slash + 1, '/')) {
    *slash = '\0';
    mkdir(dir, 0777);
    *slash = '/';
  }
}

static void write_text(const char *name, const char *text)
{
  make_parents(at(name));
  FILE *file = fopen(at(name), "w");
  if (file) {
    fputs(text, file);
    fclose(file);
  }
}

static char *slurp(const char *path, size_t *size)
{
  FILE *file = fopen(path, "rb");
  if (!file) {
    return NULL;
  }
  fseek(file, 0, SEEK_END);
  const long length = ftell(file);
  rewind(file);
  char *bytes = malloc((size_t)length + 1);
  *size = bytes ? fread(bytes, 1, (size_t)length, file) : 0;
  if (bytes) {
    bytes[*size] = '\0';
  }
  fclose(file);
  return bytes;
}

static bool same_files(const char *name_a, const char *name_b)
{
  size_t n_a = 0, n_b = 0;
  char *a = slurp(at(name_a), &n_a), *b = slurp(at(name_b), &n_b);
  const bool same = a && b && n_a == n_b && !memcmp(a, b, n_a);
  free(a);
  free(b);
  return same;
}

static bool file_exists(const char *name)
{
  struct stat info;
  return stat(at(name), &info) == 0;
}

/** Every file under `dir`, as paths relative to it, sorted, one a line. */
static void list_tree_into(const char *dir, const char *relative,
                           char *text, size_t size)
{
  char path[PATH_SIZE];
  format_text(path, sizeof(path), "%s%s%s", dir, relative[0] ? "/" : "",
           relative);
  struct dirent **entries = NULL;
  const int n = scandir(path, &entries, NULL, alphasort);
  for (int k = 0; k < n; ++k) {
    const char *name = entries[k]->d_name;
    char below[PATH_SIZE], full[PATH_SIZE];
    format_text(below, sizeof(below), "%s%s%s", relative,
             relative[0] ? "/" : "", name);
    format_text(full, sizeof(full), "%s/%s", dir, below);
    struct stat info;
    if (strcmp(name, ".") && strcmp(name, "..") && !stat(full, &info)) {
      if (S_ISDIR(info.st_mode)) {
        list_tree_into(dir, below, text, size);
      } else {
        const size_t used = strlen(text);
        format_text(text + used, size - used, "%s\n", below);
      }
    }
    free(entries[k]);
  }
  free(entries);
}

static void list_tree(const char *name, char *text, size_t size)
{
  text[0] = '\0';
  list_tree_into(at(name), "", text, size);
}

static void remove_tree(const char *path)
{
  struct stat info;
  if (lstat(path, &info) != 0) {
    return;
  }
  DIR *dir = S_ISDIR(info.st_mode) ? opendir(path) : NULL;
  for (struct dirent *e = dir ? readdir(dir) : NULL; e; e = readdir(dir)) {
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
      char below[PATH_SIZE];
      format_text(below, sizeof(below), "%s/%s", path, e->d_name);
      remove_tree(below);
    }
  }
  if (dir) {
    closedir(dir);
    rmdir(path);
  } else {
    unlink(path);
  }
}

/* ------------------------------------------------------------------------ */
/* Audio */

static bool write_signal_at(const char *name, int format, int channels,
                            double seconds, uint64_t seed, int rate)
{
  const size_t n = (size_t)(rate * seconds);
  float *mono = malloc(n * sizeof(float));
  float *frames = malloc(n * (size_t)channels * sizeof(float));
  bool ok = mono && frames;
  for (int c = 0; ok && c < channels; ++c) {
    test_signal(mono, n, seed + (uint64_t)c);
    for (size_t t = 0; t < n; ++t) {
      frames[t * (size_t)channels + (size_t)c] = mono[t];
    }
  }
  make_parents(at(name));
  SF_INFO info = {0, rate, channels, format, 0, 0};
  SNDFILE *file = ok ? sf_open(at(name), SFM_WRITE, &info) : NULL;
  ok = file && sf_writef_float(file, frames, (sf_count_t)n) ==
                 (sf_count_t)n;
  if (file) {
    sf_close(file);
  }
  free(mono);
  free(frames);
  return ok;
}

static bool write_signal(const char *name, int format, int channels,
                         double seconds, uint64_t seed)
{
  return write_signal_at(name, format, channels, seconds, seed, 48000);
}

/** Frames in an audio file, or -1 if libsndfile cannot read it whole. */
static long long count_frames(const char *path)
{
  SF_INFO info;
  memset(&info, 0, sizeof(info));
  SNDFILE *file = sf_open(path, SFM_READ, &info);
  if (!file) {
    return -1;
  }
  float frame[8];
  long long n = 0;
  while (info.channels <= 8 && sf_readf_float(file, frame, 1) == 1) {
    ++n;
  }
  sf_close(file);
  return n == info.frames ? n : -1;
}

/* ------------------------------------------------------------------------ */
/* Running carry */

typedef struct result {
  int status;           ///< Exit code, or -1 if killed
  char err[TEXT_SIZE];  ///< stderr
} result;

/** `text` with "@" standing for the test folder and a slash, and "MODEL"
    for the model file. */
static void expand(const char *text, char *out, size_t size)
{
  size_t used = 0;
  for (const char *p = text; *p && used + 1 < size; ++p) {
    if (*p == '@') {
      used += (size_t)snprintf(out + used, size - used, "%s/", root);
    } else if (!strncmp(p, "MODEL", 5)) {
      used += (size_t)snprintf(out + used, size - used, "%s", model);
      p += 4;
    } else {
      out[used++] = *p;
    }
    used = used < size ? used : size - 1;
  }
  out[used] = '\0';
}

/** argv for carry: the expanded, space-separated words of `command`,
    kept in a static buffer until the next call. */
static void split_words(const char *command, char **argv)
{
  static char words[TEXT_SIZE];
  expand(command, words, sizeof(words));
  int argc = 0;
  argv[argc++] = getenv("CARRY_EXE");
  for (char *w = strtok(words, " "); w && argc < MAX_WORDS - 1;
       w = strtok(NULL, " ")) {
    argv[argc++] = w;
  }
  argv[argc] = NULL;
}

/** Starts carry with `stderr_path` as its stderr (opened with `flags`)
    and `stdin_path`, if not NULL, as its stdin; returns its process id or
    -1. */
static pid_t spawn_with(const char *command, const char *stdin_path,
                        const char *stderr_path, int flags)
{
  char *argv[MAX_WORDS];
  split_words(command, argv);
  const subprocess_files files = {
    .in = stdin_path, .err = stderr_path, .err_flags = flags};
  return subprocess_start(argv, &files);
}

static pid_t spawn_carry(const char *command)
{
  return spawn_with(command, NULL, at("stderr.txt"),
                    O_WRONLY | O_CREAT | O_TRUNC);
}

static result wait_carry(pid_t pid)
{
  result r;
  r.status = subprocess_wait(pid);
  size_t size = 0;
  char *text = slurp(at("stderr.txt"), &size);
  format_text(r.err, sizeof(r.err), "%s", text ? text : "");
  free(text);
  return r;
}

/** Runs carry with stderr on a new pseudo-terminal, as at a user's
    terminal, and collects what it draws there. */
static result carry_on_terminal(const char *command)
{
  result r = {-1, ""};
  const int master = posix_openpt(O_RDWR | O_NOCTTY);
  if (master < 0 || grantpt(master) || unlockpt(master)) {
    CHECK(false, "no pseudo-terminal");
    return r;
  }
  const pid_t pid = spawn_with(command, NULL, ptsname(master),
                              O_RDWR | O_NOCTTY);
  /* Read while it runs, so that it never blocks on a full terminal,
     until its end closes (Linux then reports EIO). */
  size_t used = 0;
  ssize_t n = 0;
  while (pid > 0 && used + 1 < sizeof(r.err) &&
         (n = read(master, r.err + used, sizeof(r.err) - 1 - used)) > 0) {
    used += (size_t)n;
  }
  r.err[used] = '\0';
  r.status = subprocess_wait(pid);
  close(master);
  return r;
}

static result carry(const char *command)
{
  return wait_carry(spawn_carry(command));
}

static bool carry_ok(const char *command)
{
  const result r = carry(command);
  return CHECK(r.status == 0, "'%s' exited %d: %s", command, r.status,
               r.err);
}

/** The message (expanded) is in stderr. */
static bool says(const result *r, const char *message)
{
  char expected[PATH_SIZE];
  expand(message, expected, sizeof(expected));
  return strstr(r->err, expected) != NULL;
}

static int count_lines_with(const char *text, const char *part)
{
  int n = 0;
  for (const char *p = strstr(text, part); p; p = strstr(p + 1, part)) {
    ++n;
  }
  return n;
}

/* ------------------------------------------------------------------------ */
/* The mixed tree */

static bool make_tree(void)
{
  bool ok = true;
  for (size_t k = 0; k < N_TREE; ++k) {
    char name[PATH_SIZE];
    format_text(name, sizeof(name), "in/%s", tree[k].name);
    ok = ok && write_signal(name, tree[k].format, tree[k].channels,
                            tree[k].seconds, 10 + k);
  }
  write_text("in/sub/corrupt.wav", "RIFF\x24\x00\x00\x00WAVEjunk");
  write_text("in/notes.txt", "not audio, not matched\n");
  return CHECK(ok, "cannot write the input tree");
}

/** The one-file run of every tree file, as ref/NAME. */
static void make_references(void)
{
  for (size_t k = 0; k < N_TREE; ++k) {
    char command[PATH_SIZE], out[PATH_SIZE];
    format_text(out, sizeof(out), "ref/%s", tree[k].name);
    make_parents(at(out));
    format_text(command, sizeof(command), "process -m MODEL @in/%s @%s",
             tree[k].name, out);
    carry_ok(command);
  }
}

/** `dir` holds exactly the tree's outputs, each equal to its reference. */
static void check_mirrored(const char *dir)
{
  char found[TEXT_SIZE], expected[TEXT_SIZE];
  list_tree(dir, found, sizeof(found));
  list_tree("ref", expected, sizeof(expected));
  CHECK(!strcmp(found, expected), "%s holds\n%sinstead of\n%s", dir, found,
        expected);
  for (size_t k = 0; k < N_TREE; ++k) {
    char out[PATH_SIZE], ref[PATH_SIZE];
    format_text(out, sizeof(out), "%s/%s", dir, tree[k].name);
    format_text(ref, sizeof(ref), "ref/%s", tree[k].name);
    CHECK(same_files(out, ref), "%s differs from the one-file run", out);
  }
}

static void test_tree(void)
{
  const result r = carry("process -m MODEL -j 2 @in -o @out2");
  CHECK(r.status == 4, "a batch with a corrupt file exited %d: %s",
        r.status, r.err);
  CHECK(says(&r, "carry process: cannot read audio file "
                 "'@in/sub/corrupt.wav'"),
        "the corrupt file is not reported: %s", r.err);
  CHECK(says(&r, "6 files: 5 processed, 0 skipped (output exists), "
                 "1 failed"),
        "the summary is wrong: %s", r.err);
  CHECK(count_lines_with(r.err, "] '") == 5,
        "not one progress line per processed file: %s", r.err);
  check_mirrored("out2");

  const result one = carry("process -m MODEL -j 1 @in -o @out1");
  CHECK(one.status == 4, "-j 1 exited %d: %s", one.status, one.err);
  check_mirrored("out1");
}

/** On a terminal: a bar redrawn in place, messages on lines of their own,
    no line per file; the summary at the end. */
static void test_terminal_progress(void)
{
  const result r = carry_on_terminal("process -m MODEL -j 2 @in -o @tty");
  CHECK(r.status == 4, "on a terminal: exit %d: %s", r.status, r.err);
  CHECK(strstr(r.err, "\r\033[K[") && strstr(r.err, " 6/6 files, ") &&
          strstr(r.err, "x real time, ETA "),
        "no progress bar: %s", r.err);
  CHECK(says(&r, "\r\033[Kcarry process: cannot read audio file "
                 "'@in/sub/corrupt.wav'"),
        "an error does not clear the bar's line first: %s", r.err);
  CHECK(count_lines_with(r.err, "] '") == 0, "lines per file on a "
        "terminal: %s", r.err);
  CHECK(says(&r, "6 files: 5 processed, 0 skipped (output exists), "
                 "1 failed"), "no summary on a terminal: %s", r.err);
}

/* ------------------------------------------------------------------------ */
/* Skipping, --force, --list, files given directly, --pattern */

static void test_skip_and_force(void)
{
  const result first = carry("process -m MODEL @in/mono16.wav @in/sub "
                             "-o @skip");
  CHECK(first.status == 4, "the corrupt file fails: %d", first.status);
  CHECK(file_exists("skip/mono16.wav") && file_exists("skip/stereo24.wav") &&
          file_exists("skip/deeper/float.wav"),
        "a file given directly goes to OUTDIR/its name, a folder's tree "
        "under OUTDIR");
  write_text("skip/stereo24.wav", "keep me");
  remove(at("skip/mono16.wav"));
  /* The corrupt file fails again; the existing output is kept. */
  const result again = carry("process -m MODEL @in/mono16.wav @in/sub "
                             "-o @skip");
  CHECK(again.status == 4 &&
          says(&again, "skipping 3 files whose output exists "
                       "(--force overwrites them)") &&
          says(&again, "5 files: 1 processed, 3 skipped"),
        "existing outputs are not skipped: %d %s", again.status, again.err);
  size_t size = 0;
  char *kept = slurp(at("skip/stereo24.wav"), &size);
  CHECK(kept && !strcmp(kept, "keep me"), "an existing output was changed");
  free(kept);
  CHECK(same_files("skip/mono16.wav", "ref/mono16.wav"),
        "the missing output was not made again");

  const result forced = carry("process -m MODEL --force @in/sub -o @skip");
  CHECK(forced.status == 4 && says(&forced, "3 processed, 0 skipped"),
        "--force: %d %s", forced.status, forced.err);
  CHECK(same_files("skip/stereo24.wav", "ref/sub/stereo24.wav"),
        "--force did not overwrite");
}

static void test_all_skipped(void)
{
  carry_ok("process -m MODEL @in/mono16.wav @in/Upper.WAV -o @done");
  const result r = carry("process -m MODEL @in/mono16.wav @in/Upper.WAV "
                         "-o @done");
  CHECK(r.status == 0 && says(&r, "2 files: 0 processed, 2 skipped"),
        "a batch with nothing left to do: %d %s", r.status, r.err);
}

/** OUTDIR inside the input folder: its outputs are not taken as inputs
    by the next run. */
static void test_out_dir_inside(void)
{
  write_signal("nest/a.wav", SF_FORMAT_WAV | SF_FORMAT_PCM_16, 1, 0.1, 1);
  write_signal("nest/b/c.wav", SF_FORMAT_WAV | SF_FORMAT_PCM_16, 1, 0.1, 2);
  carry_ok("process -m MODEL @nest -o @nest/wet");
  const result again = carry("process -m MODEL @nest -o @nest/wet");
  CHECK(again.status == 0 && says(&again, "2 files: 0 processed, 2 "
                                          "skipped"),
        "OUTDIR inside IN: %d %s", again.status, again.err);
  CHECK(!file_exists("nest/wet/wet"), "the outputs were taken as inputs");
}

static void test_list_and_pattern(void)
{
  char list[PATH_SIZE];
  expand("@in/sub/deeper\n\n@in/Upper.WAV\r\n", list, sizeof(list));
  write_text("list.txt", list);
  carry_ok("process -m MODEL --list @list.txt -o @listed");
  char found[TEXT_SIZE];
  list_tree("listed", found, sizeof(found));
  CHECK(!strcmp(found, "Upper.WAV\nfloat.wav\n"),
        "--list: a folder's files and a file: found\n%s", found);
  CHECK(same_files("listed/float.wav", "ref/sub/deeper/float.wav"),
        "--list output differs from the one-file run");

  const result from_stdin = wait_carry(
    spawn_with("process -m MODEL --list - -o @stdin", at("list.txt"),
               at("stderr.txt"), O_WRONLY | O_CREAT | O_TRUNC));
  list_tree("stdin", found, sizeof(found));
  CHECK(from_stdin.status == 0 && !strcmp(found, "Upper.WAV\nfloat.wav\n"),
        "--list -: exit %d, found\n%s", from_stdin.status, found);

  carry_ok("process -m MODEL --pattern *.flac @in -o @flac");
  list_tree("flac", found, sizeof(found));
  CHECK(!strcmp(found, "sub/stereo16.flac\n"), "--pattern '*.flac': "
        "found\n%s", found);
}

/* ------------------------------------------------------------------------ */
/* --shard */

/** Every output of shard `k` of `n`, appended to `all`; false if one was
    already there. */
static bool collect_shard(int k, int n, char *all, size_t size)
{
  char command[PATH_SIZE], dir[64], found[TEXT_SIZE];
  format_text(dir, sizeof(dir), "shard%d", k);
  format_text(command, sizeof(command), "process -m MODEL --pattern *.wav "
           "--shard %d/%d @many -o @%s", k, n, dir);
  carry_ok(command);
  list_tree(dir, found, sizeof(found));
  bool disjoint = true;
  for (char *line = strtok(found, "\n"); line; line = strtok(NULL, "\n")) {
    char entry[PATH_SIZE];
    format_text(entry, sizeof(entry), "\n%s\n", line);
    disjoint = disjoint && !strstr(all, entry);
    const size_t used = strlen(all);
    format_text(all + used, size - used, "%s\n", line);
  }
  return disjoint;
}

static void test_shards(void)
{
  char name[64];
  for (int k = 0; k < 11; ++k) {
    format_text(name, sizeof(name), "many/%c/f%02d.wav", 'a' + k % 3, k);
    write_signal(name, SF_FORMAT_WAV | SF_FORMAT_PCM_16, 1, 0.05,
                 (uint64_t)k);
  }
  static char all[TEXT_SIZE];
  format_text(all, sizeof(all), "\n");
  bool disjoint = true;
  for (int k = 0; k < 3; ++k) {
    disjoint = collect_shard(k, 3, all, sizeof(all)) && disjoint;
  }
  CHECK(disjoint, "shards overlap:%s", all);
  int n = 0;
  for (int k = 0; k < 11; ++k) {
    char entry[64];
    format_text(entry, sizeof(entry), "\n%c/f%02d.wav\n", 'a' + k % 3, k);
    n += strstr(all, entry) != NULL;
  }
  CHECK(n == 11 && count_lines_with(all, ".wav") == 11,
        "the shards do not cover the 11 files exactly:%s", all);
  const result empty = carry("process -m MODEL --shard 20/21 @many -o "
                             "@shard_empty");
  CHECK(empty.status == 0 && says(&empty, "shard 20/21: 0 of 11 files"),
        "an empty shard: %d %s", empty.status, empty.err);
}

/* ------------------------------------------------------------------------ */
/* Interruptions */

/** Waits up to 20 s for a temporary output under `dir`. */
static bool await_temporary(const char *dir)
{
  char found[TEXT_SIZE];
  for (int k = 0; k < 2000; ++k) {
    list_tree(dir, found, sizeof(found));
    if (strstr(found, TEMP_MARK)) {
      return true;
    }
    nanosleep(&(struct timespec){0, 10000000}, NULL);
  }
  return false;
}

/** Every file under `dir` is either a named temporary (when allowed) or a
    complete output of its input's length. */
static void check_no_partial(const char *dir, bool allows_temporaries,
                             long long n_frames)
{
  char found[TEXT_SIZE];
  list_tree(dir, found, sizeof(found));
  for (char *line = strtok(found, "\n"); line; line = strtok(NULL, "\n")) {
    char path[PATH_SIZE];
    format_text(path, sizeof(path), "%s/%s", dir, line);
    if (strstr(line, TEMP_MARK)) {
      CHECK(allows_temporaries, "a temporary is left: %s", line);
    } else {
      CHECK(count_frames(at(path)) == n_frames, "%s is not complete (%lld "
            "frames of %lld)", line, count_frames(at(path)), n_frames);
    }
  }
}

static void make_long_inputs(void)
{
  for (int k = 0; k < 4; ++k) {
    char command[PATH_SIZE];
    format_text(command, sizeof(command), "signal --seconds 30 --seed %d "
             "@long/l%d.wav", k, k);
    make_parents(at("long/x"));
    carry_ok(command);
  }
}

static void interrupt_batch(int signal_number, const char *dir)
{
  char command[PATH_SIZE];
  format_text(command, sizeof(command), "process -m MODEL --block 1 -j 2 "
           "@long -o @%s", dir);
  const pid_t pid = spawn_carry(command);
  const bool started = await_temporary(dir);
  if (pid > 0) {
    kill(pid, signal_number);
  }
  const result r = wait_carry(pid);
  CHECK(started, "no temporary output appeared in %s", dir);
  if (signal_number == SIGINT) {
    CHECK(r.status == 1 && says(&r, "interrupted"),
          "SIGINT: exit %d, stderr %s", r.status, r.err);
  }
  check_no_partial(dir, signal_number == SIGKILL, 30 * 48000);
}

static void test_interrupts(void)
{
  make_long_inputs();
  interrupt_batch(SIGINT, "int");
  interrupt_batch(SIGKILL, "killed");
  /* Run again, the batch finishes what was left; the killed run's
     temporaries stay, under names no final output has. */
  carry_ok("process -m MODEL -j 2 @long -o @killed");
  check_no_partial("killed", true, 30 * 48000);
  for (int k = 0; k < 4; ++k) {
    char name[64];
    format_text(name, sizeof(name), "killed/l%d.wav", k);
    CHECK(file_exists(name), "%s missing after the rerun", name);
  }
}

/* ------------------------------------------------------------------------ */
/* Through the LV2 plugin (--plugin, --preset, --control), output formats,
   --tail and --resume */

#define CARRY_URI "https://carry.audio/lv2/carry"
#define PRESET_URI "https://carry.audio/lv2/presets/"

/** A whole audio file under the test's root as float frames; NULL if
    unreadable. */
static float *read_frames(const char *name, SF_INFO *info)
{
  return temp_files_read_frames(at(name), info);
}

/** `from` with `seconds` of silence after it, as a float WAV. */
static bool write_padded(const char *from, const char *to, double seconds)
{
  SF_INFO info;
  float *frames = read_frames(from, &info);
  const sf_count_t n_pad = (sf_count_t)(seconds * info.samplerate + 0.5);
  const size_t n_values = (size_t)(info.frames + n_pad) *
                          (size_t)info.channels;
  float *padded = frames ? calloc(n_values, sizeof(float)) : NULL;
  bool ok = padded != NULL;
  if (ok) {
    memcpy(padded, frames, (size_t)info.frames * (size_t)info.channels *
                           sizeof(float));
    SF_INFO out = {0, info.samplerate, info.channels,
                   SF_FORMAT_WAV | SF_FORMAT_FLOAT, 0, 0};
    SNDFILE *file = sf_open(at(to), SFM_WRITE, &out);
    ok = file && sf_writef_float(file, padded, info.frames + n_pad) ==
                   info.frames + n_pad;
    if (file) {
      sf_close(file);
    }
  }
  free(frames);
  free(padded);
  return ok;
}

/** The model file under presets/, for a command line. */
static const char *preset_model(const char *name)
{
  static char path[PATH_SIZE];
  char relative[256];
  format_text(relative, sizeof(relative), "presets/%s.json", name);
  format_text(path, sizeof(path), "%s", test_source_path(relative));
  return path;
}

/** The plugin given the model file renders what the core renders, bit
    for bit: both start from the model's settled state, with unity gains
    and full mix; so does the preset of the same model, at either
    quality. */
static void test_plugin_matches_core(void)
{
  char command[PATH_SIZE];
  mkdir(at("plug"), 0777);
  format_text(command, sizeof(command), "process -m %s @in/mono16.wav "
              "@plug/core.wav", preset_model("diode-clipper"));
  carry_ok(command);
  format_text(command, sizeof(command), "process --plugin " CARRY_URI
              " -m %s @in/mono16.wav @plug/plugin.wav",
              preset_model("diode-clipper"));
  const result r = carry(command);
  CHECK(r.status == 0 && says(&r, CARRY_URI ", 48000 Hz, latency 0"),
        "--plugin --model: %d %s", r.status, r.err);
  CHECK(same_files("plug/core.wav", "plug/plugin.wav"),
        "--plugin " CARRY_URI " --model differs from the core's output");

  format_text(command, sizeof(command), "process -m %s @in/mono16.wav "
              "@plug/od-core.wav", preset_model("overdrive"));
  carry_ok(command);
  carry_ok("process --preset " PRESET_URI "overdrive @in/mono16.wav "
           "@plug/od-preset.wav");
  CHECK(same_files("plug/od-core.wav", "plug/od-preset.wav"),
        "--preset overdrive differs from the core with overdrive.json");

  // Fast quality: the plugin's control and the core's option agree (in
  // float, so that no difference hides under 16-bit steps).
  format_text(command, sizeof(command), "process -m %s --quality fast "
              "--bits float @in/mono16.wav @plug/od-fast-core.wav",
              preset_model("overdrive"));
  carry_ok(command);
  carry_ok("process --preset " PRESET_URI "overdrive --control quality=1 "
           "--bits float @in/mono16.wav @plug/od-fast-preset.wav");
  CHECK(same_files("plug/od-fast-core.wav", "plug/od-fast-preset.wav"),
        "--preset overdrive --control quality=1 differs from the core "
        "with --quality fast");
}

/** A stereo file through the mono plugin: an instance per channel, each
    channel what the core's stream for it gives; through the stereo
    plugin, the same; a preset alone picks the plugin that matches. */
static void test_plugin_stereo(void)
{
  char command[PATH_SIZE];
  format_text(command, sizeof(command), "process -m %s @in/sub/stereo24.wav "
              "@plug/st-core.wav", preset_model("diode-clipper"));
  carry_ok(command);
  format_text(command, sizeof(command), "process --plugin " CARRY_URI
              " -m %s @in/sub/stereo24.wav @plug/st-mono.wav",
              preset_model("diode-clipper"));
  const result mono = carry(command);
  CHECK(mono.status == 0 && says(&mono, "(one per channel)"),
        "a stereo file through the mono plugin: %d %s", mono.status,
        mono.err);
  CHECK(same_files("plug/st-core.wav", "plug/st-mono.wav"),
        "a stereo file through the mono plugin differs from the core's");
  format_text(command, sizeof(command), "process --plugin " CARRY_URI
              "-stereo -m %s @in/sub/stereo24.wav @plug/st-st.wav",
              preset_model("diode-clipper"));
  carry_ok(command);
  CHECK(same_files("plug/st-core.wav", "plug/st-st.wav"),
        "the stereo plugin differs from the core's streams");
  const result preset = carry("process --preset " PRESET_URI "overdrive "
                              "@in/sub/stereo24.wav @plug/st-od.wav");
  CHECK(preset.status == 0 && says(&preset, CARRY_URI "-stereo, 48000 Hz"),
        "--preset on a stereo file takes the stereo plugin: %d %s",
        preset.status, preset.err);
}

/** --control output_gain=-6 scales the output by 10^(-6/20), sample for
    sample (float files, so nothing is rounded away). */
static void test_plugin_control(void)
{
  char command[PATH_SIZE];
  const char *base = "process --plugin " CARRY_URI " -m %s "
                     "@in/sub/deeper/float.wav @plug/%s.wav%s";
  format_text(command, sizeof(command), base, preset_model("diode-clipper"),
              "unity", "");
  carry_ok(command);
  format_text(command, sizeof(command), base, preset_model("diode-clipper"),
              "minus6", " --control output_gain=-6");
  carry_ok(command);
  SF_INFO a_info, b_info;
  float *a = read_frames("plug/unity.wav", &a_info);
  float *b = read_frames("plug/minus6.wav", &b_info);
  const double gain = pow(10.0, -6.0 / 20.0);
  double worst = a && b && a_info.frames == b_info.frames ? 0.0 : INFINITY;
  double peak = 0.0;
  for (sf_count_t t = 0; isfinite(worst) && t < a_info.frames; ++t) {
    worst = fmax(worst, fabs((double)b[t] - gain * (double)a[t]));
    peak = fmax(peak, fabs((double)a[t]));
  }
  CHECK(peak > 0.1 && worst <= 1e-6 * peak, "output_gain=-6 is not a gain "
        "of %.6f: off by up to %g (peak %g)", gain, worst, peak);
  free(a);
  free(b);
}

/** At 44.1 kHz Carry resamples for the 48 kHz model and reports 130
    samples of latency: the plugin path takes it off as the core path
    does (the same file, byte for byte), and --keep-latency writes it. */
static void test_plugin_latency(void)
{
  char command[PATH_SIZE];
  carry_ok("signal --seconds 0.5 --rate 44100 @plug/in44.wav");
  format_text(command, sizeof(command), "process -m %s @plug/in44.wav "
              "@plug/core44.wav", preset_model("diode-clipper"));
  carry_ok(command);
  const char *base = "process --plugin " CARRY_URI " -m %s %s "
                     "@plug/in44.wav @plug/%s.wav";
  format_text(command, sizeof(command), base, preset_model("diode-clipper"),
              "", "plugin44");
  const result r = carry(command);
  CHECK(r.status == 0 && says(&r, "latency 130 samples (compensated)"),
        "at 44.1 kHz: %d %s", r.status, r.err);
  CHECK(same_files("plug/core44.wav", "plug/plugin44.wav"), "at 44.1 kHz "
        "the plugin path differs from the core's");
  format_text(command, sizeof(command), base, preset_model("diode-clipper"),
              "--keep-latency", "kept44");
  carry_ok(command);
  SF_INFO a_info, k_info;
  float *a = read_frames("plug/plugin44.wav", &a_info);
  float *k = read_frames("plug/kept44.wav", &k_info);
  bool is_shifted = a && k && a_info.frames == k_info.frames;
  for (sf_count_t t = 0; is_shifted && t + 130 < a_info.frames; ++t) {
    is_shifted = k[t + 130] == a[t];
  }
  CHECK(is_shifted, "--keep-latency is not the output 130 samples late");
  free(a);
  free(k);
}

/** A batch through the plugin on two workers: the mixed tree mirrored,
    the corrupt file reported, every output the core's one-file run (an
    instance per file, so -j changes nothing).  The plugin's knob1 starts
    at the middle of the model's knob range, the core at the model's
    default (asymmetry 0): knob1=0 makes them the same. */
static void test_plugin_batch(void)
{
  const result r = carry("process --plugin " CARRY_URI " -m MODEL --control "
                         "knob1=0 -j 2 @in -o @pbatch");
  CHECK(r.status == 4 && says(&r, "6 files: 5 processed, 0 skipped (output "
                                  "exists), 1 failed"),
        "a batch through the plugin: %d %s", r.status, r.err);
  check_mirrored("pbatch");
}

/** Any plugin, not only Carry: the preset of a test plugin (a gain of
    0.5 in its state, tests/lv2/broken.lv2/) implies its plugin, which is
    mono, so a stereo file runs through an instance per channel; the
    output is half the input, exactly (float files).  A model file is for
    Carry's plugins only. */
static void test_other_plugin(void)
{
  const result r = carry("process --preset urn:carry:test:forgetful-half "
                         "--bits float @in/sub/stereo24.wav @plug/half.wav");
  CHECK(r.status == 0 && says(&r, "2 channels") &&
          says(&r, "urn:carry:test:forgetful (one per channel)"),
        "a test plugin's preset: %d %s", r.status, r.err);
  SF_INFO in_info, out_info;
  float *x = read_frames("in/sub/stereo24.wav", &in_info);
  float *y = read_frames("plug/half.wav", &out_info);
  bool is_half = x && y && in_info.frames == out_info.frames &&
                 out_info.channels == 2;
  for (sf_count_t t = 0; is_half && t < 2 * in_info.frames; ++t) {
    is_half = y[t] == 0.5f * x[t];
  }
  CHECK(is_half, "the preset's gain of 0.5 is not what came out");
  free(x);
  free(y);
  const result m = carry("process --preset urn:carry:test:forgetful-half "
                         "-m MODEL @in/mono16.wav @x.wav");
  CHECK(m.status == 2 && says(&m, "carry process: --model works with "
                                  "Carry's plugins only; "
                                  "'urn:carry:test:forgetful' takes no model "
                                  "file\n"),
        "--model with another plugin: %d %s", m.status, m.err);
}

typedef struct format_case {
  const char *options;
  const char *out;
  int format;       ///< What libsndfile must find in the output
} format_case;

static const format_case format_cases[] = {
  {"--format flac --bits 24", "f.flac", SF_FORMAT_FLAC | SF_FORMAT_PCM_24},
  {"--format flac", "f16.flac", SF_FORMAT_FLAC | SF_FORMAT_PCM_16},
  {"--format aiff --bits float", "f.aiff", SF_FORMAT_AIFF | SF_FORMAT_FLOAT},
  {"--format ogg", "f.ogg", SF_FORMAT_OGG | SF_FORMAT_VORBIS},
  {"--bits 32", "f32.wav", SF_FORMAT_WAV | SF_FORMAT_PCM_32},
  {"--format wav --bits float", "ff.wav", SF_FORMAT_WAV | SF_FORMAT_FLOAT},
  {"", "same.wav", SF_FORMAT_WAV | SF_FORMAT_PCM_16},
};

/** --format and --bits give the file asked for, through the core and
    the plugin; without them, the input's (16-bit WAV here). */
static void test_formats(void)
{
  mkdir(at("fmt"), 0777);
  for (size_t k = 0; k < sizeof(format_cases) / sizeof(*format_cases); ++k) {
    const format_case *c = &format_cases[k];
    for (int plugin = 0; plugin < 2; ++plugin) {
      char command[PATH_SIZE], out[256];
      format_text(out, sizeof(out), "fmt/%d%s", plugin, c->out);
      format_text(command, sizeof(command), "process %s MODEL %s "
                  "@in/mono16.wav @%s", plugin ? "--plugin " CARRY_URI
                  " -m" : "-m", c->options, out);
      carry_ok(command);
      SF_INFO info;
      float *frames = read_frames(out, &info);
      CHECK(frames && info.format == c->format && info.frames == 24000,
            "'%s' wrote format 0x%x, %lld frames; expected 0x%x, 24000",
            command, (unsigned)info.format, (long long)info.frames,
            (unsigned)c->format);
      free(frames);
    }
  }
}

/** --tail 0.25 adds exactly 0.25 s, and what it adds is what the input
    followed by 0.25 s of silence gives: the decay, not zeros. */
static void test_tail(void)
{
  mkdir(at("tail"), 0777);
  CHECK(write_padded("in/sub/deeper/float.wav", "tail/padded.wav", 0.25),
        "cannot write the padded input");
  const char *paths[] = {"-m MODEL", "--plugin " CARRY_URI " -m MODEL"};
  for (int k = 0; k < 2; ++k) {
    char command[PATH_SIZE], tailed[64], padded[64];
    format_text(tailed, sizeof(tailed), "tail/tailed%d.wav", k);
    format_text(padded, sizeof(padded), "tail/out-padded%d.wav", k);
    format_text(command, sizeof(command), "process %s --tail 0.25 "
                "@in/sub/deeper/float.wav @%s", paths[k], tailed);
    carry_ok(command);
    format_text(command, sizeof(command), "process %s @tail/padded.wav @%s",
                paths[k], padded);
    carry_ok(command);
    CHECK(count_frames(at(tailed)) == 14400 + 12000,
          "%s: --tail 0.25 gave %lld frames, expected 14400 + 12000",
          paths[k], count_frames(at(tailed)));
    CHECK(same_files(tailed, padded), "%s: the tail is not what silence "
          "after the input gives", paths[k]);
    SF_INFO info;
    float *y = read_frames(tailed, &info);
    double first = 0.0, last = 0.0;
    for (sf_count_t t = 0; y && t < 480; ++t) {
      first = fmax(first, fabs((double)y[14400 + t]));
      last = fmax(last, fabs((double)y[info.frames - 480 + t]));
    }
    CHECK(first > 1e-4 && last < first, "%s: no decay in the tail: first "
          "10 ms peak %g, last %g", paths[k], first, last);
    free(y);
  }
}

/** More files than a worker's lanes, of many lengths, mono and stereo, one
    at another rate (which takes the one-file path): a batch runs them in
    lockstep, refilling lanes as files end, and every output is byte for
    byte the one-file run's, with knobs, --tail, odd blocks, --normalize
    and --no-settle. */
static void test_lockstep(void)
{
  enum { N_MANY = 19 };
  static const char *const options[] = {
    "-p 1=0.7 --tail 0.05",
    "-b 100 --normalize --no-settle",
  };
  for (int k = 0; k < N_MANY; ++k) {
    char name[64];
    format_text(name, sizeof(name), "many/%02d.%s", k, k % 5 ? "wav" : "flac");
    const int format = k % 5 ? SF_FORMAT_WAV | SF_FORMAT_FLOAT
                             : SF_FORMAT_FLAC | SF_FORMAT_PCM_24;
    CHECK(write_signal_at(name, format, k % 3 ? 1 : 2, 0.01 + 0.017 * k,
                          100 + (uint64_t)k, k == 7 ? 44100 : 48000),
          "cannot write %s", name);
  }
  for (int v = 0; v < 2; ++v) {
    char command[PATH_SIZE];
    format_text(command, sizeof(command), "process -m MODEL %s -j %d @many "
                "-o @many-out%d", options[v], v + 1, v);
    carry_ok(command);
    for (int k = 0; k < N_MANY; ++k) {
      char in[64], ref[64], out[64];
      format_text(in, sizeof(in), "many/%02d.%s", k, k % 5 ? "wav" : "flac");
      format_text(ref, sizeof(ref), "many-ref%d/%02d.%s", v, k,
                  k % 5 ? "wav" : "flac");
      format_text(out, sizeof(out), "many-out%d/%02d.%s", v, k,
                  k % 5 ? "wav" : "flac");
      make_parents(at(ref));
      format_text(command, sizeof(command), "process -m MODEL %s @%s @%s",
                  options[v], in, ref);
      carry_ok(command);
      CHECK(same_files(out, ref), "%s (%s) differs from the one-file run",
            out, options[v]);
    }
  }
}

/** --resume says what the default does: existing outputs are skipped. */
static void test_resume(void)
{
  carry_ok("process -m MODEL --resume @in/mono16.wav -o @resume");
  const result again = carry("process -m MODEL --resume @in/mono16.wav "
                             "-o @resume");
  CHECK(again.status == 0 && says(&again, "1 files: 0 processed, 1 "
                                          "skipped"),
        "--resume did not skip: %d %s", again.status, again.err);
  CHECK(same_files("resume/mono16.wav", "ref/mono16.wav"),
        "--resume: the output differs from the one-file run");
}

/* ------------------------------------------------------------------------ */
/* Bad arguments */

typedef struct bad_case {
  const char *command;
  int status;
  const char *message;  ///< Expanded like the command
} bad_case;

static const bad_case bad_cases[] = {
  {"process -m MODEL -o @o", 2, "carry process: missing input files or "
   "folders (IN... or --list FILE) before -o @o\n"},
  {"process -m MODEL -j 2 @in/mono16.wav @x.wav", 2, "carry process: --jobs "
   "works on batches: give the output folder with -o OUTDIR\n"},
  {"process -m MODEL --force @in/mono16.wav @x.wav", 2, "carry process: "
   "--force works on batches: give the output folder with -o OUTDIR\n"},
  {"process -m MODEL --shard 0/2 @in/mono16.wav @x.wav", 2, "carry process: "
   "--shard works on batches"},
  {"process -m MODEL --list @l.txt @in/mono16.wav @x.wav", 2,
   "carry process: --list works on batches"},
  {"process -m MODEL @in/mono16.wav @in/Upper.WAV @x.wav", 2,
   "carry process: too many arguments: '@x.wav' after IN and OUT (for many "
   "inputs, give the output folder with -o OUTDIR)\n"},
  {"process -m MODEL -j 0 @in -o @o", 2, "carry process: --jobs must be a "
   "whole number from 1 to 1024, not '0'\n"},
  {"process -m MODEL -j 2x @in -o @o", 2, "not '2x'"},
  {"process -m MODEL --shard 3/3 @in -o @o", 2, "carry process: --shard must "
   "be K/N with N from 1 to 1000000 and K from 0 to N-1, not '3/3'\n"},
  {"process -m MODEL --shard 1 @in -o @o", 2, "not '1'\n"},
  {"process -m MODEL --shard -1/4 @in -o @o", 2, "not '-1/4'\n"},
  {"process -m MODEL --shard 1/0 @in -o @o", 2, "not '1/0'\n"},
  {"process -m MODEL --list @missing.txt -o @o", 4, "carry process: cannot "
   "read the list '@missing.txt': No such file or directory\n"},
  {"process -m MODEL @in -o @in/mono16.wav", 2, "carry process: the output "
   "folder '@in/mono16.wav' is not a folder\n"},
  {"process -m MODEL @empty -o @o", 2, "carry process: no input files: the "
   "folders hold no audio files (.wav .flac .aiff .aif .ogg)\n"},
  {"process -m MODEL --pattern *.mp3 @in -o @o", 2, "carry process: no input "
   "files: the folders hold no names matching --pattern\n"},
  {"process -m MODEL @in/mono16.wav @ref/mono16.wav -o @o", 2,
   "carry process: '@in/mono16.wav' and '@ref/mono16.wav' would both be "
   "written to '@o/mono16.wav'\n"},
  {"process -m @missing.json @in -o @o", 3, "carry process: cannot load "
   "model"},
  {"process --plugin https://carry.audio/lv2/nope @in/mono16.wav @x.wav", 2,
   "carry process: unknown plugin 'https://carry.audio/lv2/nope': no LV2 "
   "plugin of that URI on LV2_PATH"},
  {"process --preset " PRESET_URI "nope @in/mono16.wav @x.wav", 2,
   "carry process: unknown preset '" PRESET_URI "nope': no preset of that "
   "URI with an lv2:appliesTo on LV2_PATH\n"},
  {"process --plugin " CARRY_URI " --control gain=1 @in/mono16.wav @x.wav",
   2, "carry process: --control gain: plugin '" CARRY_URI "' has no control "
   "input of that symbol; it has: input_gain, output_gain, mix, knob1"},
  {"process --plugin " CARRY_URI " --control output_gain=30 @in/mono16.wav "
   "@x.wav", 2, "carry process: --control output_gain: 30 is outside the "
   "port's range [-24, 24]\n"},
  {"process --plugin " CARRY_URI " --control output_gain @in -o @o", 2,
   "carry process: --control 'output_gain' is not SYMBOL=NUMBER\n"},
  {"process -m MODEL --control output_gain=1 @in/mono16.wav @x.wav", 2,
   "carry process: --control sets a plugin's control: give --plugin URI or "
   "--preset URI"},
  {"process --plugin " CARRY_URI " --param drive=1 @in/mono16.wav @x.wav",
   2, "carry process: --param works on the model core, not with --plugin"},
  {"process --preset " PRESET_URI "overdrive --plugin " CARRY_URI "-nope "
   "@in/mono16.wav @x.wav", 2, "carry process: unknown plugin"},
  {"process @in/mono16.wav @x.wav", 2, "carry process: missing --model FILE "
   "(or --plugin URI)\n"},
  {"process -m MODEL --force --resume @in -o @o", 2, "carry process: --force "
   "and --resume contradict each other"},
  {"process -m MODEL --resume @in/mono16.wav @x.wav", 2, "carry process: "
   "--resume works on batches"},
  {"process -m MODEL --format mp3 @in/mono16.wav @x.wav", 2, "carry "
   "process: --format must be wav, flac, aiff or ogg, not 'mp3'\n"},
  {"process -m MODEL --bits 12 @in/mono16.wav @x.wav", 2, "carry process: "
   "--bits must be 16, 24, 32 or float, not '12'\n"},
  {"process -m MODEL --format flac --bits float @in/mono16.wav @x.wav", 2,
   "carry process: --format flac cannot hold --bits float samples"},
  {"process -m MODEL --format ogg --bits 16 @in/mono16.wav @x.wav", 2,
   "carry process: --format ogg cannot hold --bits 16 samples"},
  {"process -m MODEL --format flac @in/sub/deeper/float.wav @x.wav", 2,
   "carry process: cannot write '@x.wav' as FLAC"},
  {"process -m MODEL --tail -1 @in/mono16.wav @x.wav", 2, "carry process: "
   "--tail must be a number of seconds from 0 to 3600, not '-1'\n"},
};

static void test_bad_arguments(void)
{
  mkdir(at("empty"), 0777);
  for (size_t k = 0; k < sizeof(bad_cases) / sizeof(bad_cases[0]); ++k) {
    const bad_case *c = &bad_cases[k];
    const result r = carry(c->command);
    CHECK(r.status == c->status, "'%s' exited %d, expected %d: %s",
          c->command, r.status, c->status, r.err);
    CHECK(says(&r, c->message), "'%s': expected '%s' in: %s", c->command,
          c->message, r.err);
    CHECK(!file_exists("o") && !file_exists("x.wav"), "'%s' wrote output",
          c->command);
  }
}

/* ------------------------------------------------------------------------ */

static bool set_up(void)
{
  const char *exe = getenv("CARRY_EXE");
  if (!exe || access(exe, X_OK) != 0) {
    fprintf(stderr, "CARRY_EXE does not name the built carry\n");
    return false;
  }
  format_text(model, sizeof(model), "%s",
           test_source_path("presets/demo/soft-clip.json"));
  const char *tmp = getenv("TMPDIR");
  format_text(root, sizeof(root), "%s/carry-batch-XXXXXX",
           tmp && tmp[0] ? tmp : "/tmp");
  if (!mkdtemp(root)) {
    perror("mkdtemp");
    return false;
  }
  return make_tree();
}

int main(void)
{
  if (!set_up()) {
    return 1;
  }
  make_references();
  test_tree();
  test_terminal_progress();
  test_skip_and_force();
  test_all_skipped();
  test_list_and_pattern();
  test_out_dir_inside();
  test_shards();
  test_plugin_matches_core();
  test_plugin_stereo();
  test_plugin_control();
  test_plugin_latency();
  test_plugin_batch();
  test_other_plugin();
  test_formats();
  test_tail();
  test_lockstep();
  test_resume();
  test_bad_arguments();
  test_interrupts();
  remove_tree(root);
  return test_finish("batch");
}
