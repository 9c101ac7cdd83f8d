#include "subprocess.h"

#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <sys/wait.h>

extern char **environ;

pid_t subprocess_start(char *const argv[], const subprocess_files *files)
{
  const int made = O_WRONLY | O_CREAT | O_TRUNC;
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  if (files->in) {
    posix_spawn_file_actions_addopen(&actions, 0, files->in, O_RDONLY, 0);
  }
  posix_spawn_file_actions_addopen(&actions, 1,
                                   files->out ? files->out : "/dev/null",
                                   made, 0644);
  posix_spawn_file_actions_addopen(&actions, 2,
                                   files->err ? files->err : "/dev/null",
                                   files->err_flags ? files->err_flags : made,
                                   0644);
  pid_t pid = -1;
  if (!argv[0] || posix_spawn(&pid, argv[0], &actions, NULL, argv, environ)) {
    pid = -1;
  }
  posix_spawn_file_actions_destroy(&actions);
  return pid;
}

int subprocess_wait(pid_t pid)
{
  int wait_status = 0;
  if (pid > 0 && waitpid(pid, &wait_status, 0) == pid &&
      WIFEXITED(wait_status)) {
    return WEXITSTATUS(wait_status);
  }
  return -1;
}

void subprocess_read_text(const char *path, char *text, size_t size)
{
  FILE *file = fopen(path, "rb");
  const size_t n = file ? fread(text, 1, size - 1, file) : 0;
  text[n] = '\0';
  if (file) {
    fclose(file);
  }
}
