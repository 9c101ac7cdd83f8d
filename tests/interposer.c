#define _GNU_SOURCE

#include "interposer.h"

#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <stdatomic.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#if defined(__x86_64__)
#  include <linux/audit.h>
#  include <linux/filter.h>
#  include <linux/seccomp.h>
#  include <sys/prctl.h>
#  include <sys/syscall.h>
#  include <unistd.h>
#endif

/* The project builds with hidden visibility; interposers must be seen by
   the shared libraries too. */
#define INTERPOSER __attribute__((visibility("default")))

static interposer_counts own_counts;
interposer_counts *interposer = &own_counts;

/* The executable's own thread-local storage is reached through the thread
   pointer, without a call that could allocate. */
static _Thread_local bool counts_this_thread;

static bool is_counted(void)
{
  return interposer->is_counting || counts_this_thread;
}

void interposer_count_this_thread(bool is_on)
{
  counts_this_thread = is_on;
}

void *__libc_malloc(size_t size);
void *__libc_calloc(size_t n, size_t size);
void *__libc_realloc(void *p, size_t size);
void *__libc_memalign(size_t alignment, size_t size);
void __libc_free(void *p);

static void note_alloc(void)
{
  if (is_counted()) {
    ++interposer->n_allocs;
  }
}

/* Bytes in use, in every thread, whether counting or not: what each block
   offers (malloc_usable_size), which is what was asked for rounded up to
   malloc's granule. */
static atomic_long live_bytes;
static atomic_size_t watched_size;
static atomic_long n_watched;

static void *note_live(void *p, size_t request)
{
  if (p) {
    atomic_fetch_add_explicit(&live_bytes, (long)malloc_usable_size(p),
                              memory_order_relaxed);
  }
  if (request && request == atomic_load_explicit(&watched_size,
                                                 memory_order_relaxed)) {
    atomic_fetch_add_explicit(&n_watched, 1, memory_order_relaxed);
  }
  return p;
}

static void forget_live(void *p)
{
  if (p) {
    atomic_fetch_sub_explicit(&live_bytes, (long)malloc_usable_size(p),
                              memory_order_relaxed);
  }
}

long interposer_live_bytes(void)
{
  return atomic_load(&live_bytes);
}

void interposer_watch_size(size_t size)
{
  atomic_store(&watched_size, size);
  atomic_store(&n_watched, 0);
}

long interposer_n_watched(void)
{
  return atomic_load(&n_watched);
}

INTERPOSER void *malloc(size_t size)
{
  note_alloc();
  return note_live(__libc_malloc(size), size);
}

INTERPOSER void *calloc(size_t n, size_t size)
{
  note_alloc();
  return note_live(__libc_calloc(n, size), n * size);
}

INTERPOSER void *realloc(void *p, size_t size)
{
  note_alloc();
  const size_t old = p ? malloc_usable_size(p) : 0;
  void *q = __libc_realloc(p, size);
  if (q || !size) { // else p is untouched
    atomic_fetch_sub_explicit(&live_bytes, (long)old, memory_order_relaxed);
    note_live(q, size);
  }
  return q;
}

void *memalign(size_t alignment, size_t size);
INTERPOSER void *memalign(size_t alignment, size_t size)
{
  note_alloc();
  return note_live(__libc_memalign(alignment, size), size);
}

INTERPOSER void *aligned_alloc(size_t alignment, size_t size)
{
  note_alloc();
  return note_live(__libc_memalign(alignment, size), size);
}

INTERPOSER int posix_memalign(void **p, size_t alignment, size_t size)
{
  note_alloc();
  *p = note_live(__libc_memalign(alignment, size), size);
  return *p ? 0 : ENOMEM;
}

INTERPOSER void free(void *p)
{
  if (is_counted()) {
    ++interposer->n_frees;
  }
  forget_live(p);
  __libc_free(p);
}

typedef int (*lock_fn)(void *);
static lock_fn real_mutex_lock, real_mutex_trylock, real_rdlock, real_wrlock,
  real_sem_wait;

static lock_fn find_next(const char *name)
{
  lock_fn fn;
  void *symbol = dlsym(RTLD_NEXT, name);
  memcpy(&fn, &symbol, sizeof(fn));
  return fn;
}

/** Counts the call and passes it on; libraries may lock in their
    constructors, before main() could call interposer_init(). */
static int counted(lock_fn *real, const char *name, void *lock)
{
  if (!*real) {
    *real = find_next(name);
  }
  if (is_counted()) {
    ++interposer->n_locks;
  }
  return (*real)(lock);
}

INTERPOSER int pthread_mutex_lock(pthread_mutex_t *m)
{
  return counted(&real_mutex_lock, "pthread_mutex_lock", m);
}

INTERPOSER int pthread_mutex_trylock(pthread_mutex_t *m)
{
  return counted(&real_mutex_trylock, "pthread_mutex_trylock", m);
}

INTERPOSER int pthread_rwlock_rdlock(pthread_rwlock_t *l)
{
  return counted(&real_rdlock, "pthread_rwlock_rdlock", l);
}

INTERPOSER int pthread_rwlock_wrlock(pthread_rwlock_t *l)
{
  return counted(&real_wrlock, "pthread_rwlock_wrlock", l);
}

int sem_wait(void *s);
INTERPOSER int sem_wait(void *s)
{
  return counted(&real_sem_wait, "sem_wait", s);
}

void interposer_init(void)
{
  real_mutex_lock = find_next("pthread_mutex_lock");
  real_mutex_trylock = find_next("pthread_mutex_trylock");
  real_rdlock = find_next("pthread_rwlock_rdlock");
  real_wrlock = find_next("pthread_rwlock_wrlock");
  real_sem_wait = find_next("sem_wait");
}

int interposer_forbid_system_calls(void)
{
#if defined(__x86_64__)
  struct sock_filter filter[] = {
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_exit_group, 2, 0),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_exit, 1, 0),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  struct sock_fprog program = {sizeof(filter) / sizeof(filter[0]), filter};
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)) {
    return -1;
  }
  return (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &program);
#else
  return -1;
#endif
}

int interposer_run_without_system_calls(void (*work)(void *, uint64_t),
                                        void *context)
{
  fflush(NULL);
  const pid_t child = fork();
  if (child == 0) {
    work(context, 3);
    if (interposer_forbid_system_calls()) {
      _exit(77);
    }
    work(context, 4);
    _exit(0);
  }
  int status = 0;
  waitpid(child, &status, 0);
  return WIFEXITED(status) && WEXITSTATUS(status) == 77 ? -1 : status;
}
