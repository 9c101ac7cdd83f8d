/*
  Counts allocations and lock waits, to prove that a piece of code makes
  none.  Linking tests/interposer.c into an executable replaces malloc and
  friends, and the pthread lock functions, for every library of the process.
  Calls are counted either in the whole process (`is_counting`) or only on
  the threads that ask for it (interposer_count_this_thread()), so that a
  test can watch an audio thread while a worker thread allocates.  Not for
  the sanitizer builds, whose runtimes own malloc themselves.
*/

#ifndef CARRY_TEST_INTERPOSER_H
#define CARRY_TEST_INTERPOSER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
  volatile int is_counting;  ///< Count calls from every thread while set
  volatile long n_allocs;    ///< malloc, calloc, realloc and aligned forms
  volatile long n_frees;
  volatile long n_locks;     ///< Mutex, rwlock and semaphore waits
} interposer_counts;

/** Where calls are counted: a static block unless a test points it
    elsewhere (shared memory, to count in a forked child). */
extern interposer_counts *interposer;

/** Bytes in use in the whole process (every thread, counting or not), as
    malloc_usable_size() gives them: the difference across a piece of work
    is what it allocated and kept, to within malloc's rounding. */
long interposer_live_bytes(void);

/** Starts counting the allocations of exactly `size` bytes (any thread). */
void interposer_watch_size(size_t size);

/** Allocations of the watched size since interposer_watch_size(). */
long interposer_n_watched(void);

/** Finds the real lock functions, so that none is looked up while
    counting; call first thing in main(). */
void interposer_init(void);

/** Counts (or stops counting) the calls made by the calling thread only,
    whatever `is_counting` says for the others. */
void interposer_count_this_thread(bool is_on);

/** From now on, kills the process on any system call but exit and
    exit_group (seccomp): for a forked child that runs the audio path.
    Returns 0, or -1 where seccomp is not available (not x86-64, or
    refused). */
int interposer_forbid_system_calls(void);

/** In a forked child: `work(context, 3)` (which may make system calls,
    e.g. a first-touch page fault's), then interposer_forbid_system_calls()
    and `work(context, 4)`.  Returns the child's wait status (0: it
    survived), or -1 where seccomp is not available. */
int interposer_run_without_system_calls(void (*work)(void *, uint64_t),
                                        void *context);

#endif
