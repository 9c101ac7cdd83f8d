/*
  The command-line tests' temporary directory and file reading.
*/

#define _XOPEN_SOURCE 700

#include "temp_files.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TEMP_DIR_SIZE 1024  // short enough that any name still fits a path
#define PATH_SIZE 4096

static char temp_dir[TEMP_DIR_SIZE];

bool temp_files_make(const char *name)
{
  const char *tmp = getenv("TMPDIR");
  snprintf(temp_dir, sizeof(temp_dir), "%s/carry-%s-XXXXXX",
           tmp && tmp[0] ? tmp : "/tmp", name);
  if (!mkdtemp(temp_dir)) {
    perror("mkdtemp");
    return false;
  }
  return true;
}

const char *temp_files_dir(void)
{
  return temp_dir;
}

const char *temp_files_path(const char *name)
{
  static char paths[8][PATH_SIZE];
  static int next = 0;
  char *path = paths[next++ % 8];
  snprintf(path, PATH_SIZE, "%s/%s", temp_dir, name);
  return path;
}

bool temp_files_exists(const char *name)
{
  struct stat info;
  return stat(temp_files_path(name), &info) == 0;
}

void temp_files_remove(void)
{
  DIR *dir = opendir(temp_dir);
  for (struct dirent *e = dir ? readdir(dir) : NULL; e; e = readdir(dir)) {
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
      unlink(temp_files_path(e->d_name));
    }
  }
  if (dir) {
    closedir(dir);
  }
  rmdir(temp_dir);
}

char *temp_files_read_bytes(const char *path, size_t *size)
{
  FILE *file = fopen(path, "rb");
  if (!file) {
    return NULL;
  }
  fseek(file, 0, SEEK_END);
  const long length = ftell(file);
  fseek(file, 0, SEEK_SET);
  char *bytes = length >= 0 ? malloc((size_t)length + 1) : NULL;
  *size = bytes ? fread(bytes, 1, (size_t)length, file) : 0;
  if (bytes) {
    bytes[*size] = '\0';
  }
  fclose(file);
  return bytes;
}

bool temp_files_same_bytes(const char *path_a, const char *path_b)
{
  size_t size_a = 0, size_b = 0;
  char *a = temp_files_read_bytes(path_a, &size_a);
  char *b = temp_files_read_bytes(path_b, &size_b);
  const bool same = a && b && size_a == size_b && !memcmp(a, b, size_a);
  free(a);
  free(b);
  return same;
}

float *temp_files_read_frames(const char *path, SF_INFO *info)
{
  memset(info, 0, sizeof(*info));
  SNDFILE *file = sf_open(path, SFM_READ, info);
  if (!file) {
    return NULL;
  }
  const size_t n = (size_t)info->frames * (size_t)info->channels;
  float *frames = malloc((n ? n : 1) * sizeof(float));
  if (frames && sf_readf_float(file, frames, info->frames) != info->frames) {
    free(frames);
    frames = NULL;
  }
  sf_close(file);
  return frames;
}
