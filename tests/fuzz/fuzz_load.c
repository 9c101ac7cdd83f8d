/*
  libFuzzer entry point for the model loaders: any bytes at all go through
  carry_model_load_string (which tells the format from the content).  A
  loaded model must also run, give finite output, and survive being
  written and read back; a refused one must say why.  Built with clang,
  -fsanitize=fuzzer plus AddressSanitizer and UndefinedBehaviorSanitizer
  (`make fuzz`), so a crash, a leak or undefined behaviour stops the run.
*/

#include "carry.h"

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/** A short run of the model: its output must be finite. */
static void run(const carry_model *model)
{
  enum { N = 96 };
  float in[N], out[N];
  for (int t = 0; t < N; ++t) {
    in[t] = 0.5f * sinf(0.1f * (float)t);
  }
  carry_error err;
  carry_stream *stream = carry_stream_create(model, 32, &err);
  if (!stream) {
    abort(); // a loaded model must run
  }
  carry_stream_process(stream, in, NULL, out, N);
  for (int t = 0; t < N; ++t) {
    if (!isfinite(out[t])) {
      abort();
    }
  }
  carry_stream_free(stream);
}

/** Written as Keras JSON, the model must load again. */
static void round_trip(const carry_model *model)
{
  carry_error err;
  char *text = carry_model_to_json(model, &err);
  if (!text) {
    abort();
  }
  carry_model *again = carry_model_load_string(text, strlen(text), "again", &err);
  if (!again) {
    abort();
  }
  carry_model_free(again);
  free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  carry_error err;
  carry_model *model =
    carry_model_load_string((const char *)data, size, "fuzz.json", &err);
  if (!model) {
    if (err.status == CARRY_SUCCESS || !err.message[0]) {
      abort(); // a refusal must say why
    }
    return 0;
  }
  run(model);
  round_trip(model);
  carry_model_free(model);
  return 0;
}
