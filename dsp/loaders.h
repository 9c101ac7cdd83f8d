/*
  The model file readers and what they share (not part of the API).

  Every reader works in the same order: it reads the sizes and the
  description from the parsed document, then checks every weight without
  storing it, and only then allocates the model and fills it.  A file that
  declares a huge model but holds garbage costs no allocation, and every
  failure names the JSON path of the value at fault.
*/

#ifndef CARRY_LOADERS_H
#define CARRY_LOADERS_H

#include "json_path.h"

/* ------------------------------------------------------------------------ */
/* Reading and parsing (load.c) */

/** Parses JSON text under the loaders' guards (size and value limits, an
    empty text, a byte order mark) with their syntax messages, naming the
    text `name`.  NULL, with `err` set, on failure. */
json_t *carry_json_parse_text(const char *text, size_t size, const char *name,
                              carry_error *err);

/** Reads a file (refusing one over the size limit before reading it) and
    parses it as carry_json_parse_text() does. */
json_t *carry_json_parse_file(const char *path, const char *name,
                              carry_error *err);

/* ------------------------------------------------------------------------ */
/* The readers, called by carry_model_load_string() */

/** Builds a prepared model from a parsed RTNeural/AIDA-X Keras document.
    `default_name` names the model when its metadata does not. */
carry_model *carry_keras_read(const json_t *root, const carry_json_path *at,
                              const char *default_name);

/** The same for GuitarML / Automated-GuitarAmpModelling PyTorch JSON. */
carry_model *carry_pytorch_read(const json_t *root, const carry_json_path *at,
                                const char *default_name);

/** The same for a Neural Amp Modeler .nam file (LSTM architecture). */
carry_model *carry_nam_read(const json_t *root, const carry_json_path *at,
                            const char *default_name);

/* ------------------------------------------------------------------------ */
/* What the readers share (loaders.c) */

/** Reads the optional "metadata" object of `root` into `*metadata` (NULL
    if there is none), the model's name from metadata.name (else
    `default_name`) and its loudness from a numeric metadata.loudness (dB,
    as NAM writes it). */
carry_status carry_loader_read_metadata(const carry_json_path *at,
                                        const json_t *root,
                                        const char *default_name,
                                        carry_model_spec *spec,
                                        const json_t **metadata);

/** Reads a sample rate (a number or a numeric string: 0 for unknown, or
    1000 to 10^7 Hz) from the first of the NULL-terminated `keys` that
    `object`, at `at`, holds, and says in `*is_found` whether one did.  A
    rate of 0 leaves `spec->sample_rate` as it was: the format's default. */
carry_status carry_loader_read_rate(const carry_json_path *at,
                                    const json_t *object,
                                    const char *const *keys,
                                    carry_model_spec *spec, bool *is_found);

/** Reads Carry's extras object ("carry" in `root`, optional): its version
    and the names, ranges and defaults of the spec->n_inputs - 1 knobs. */
carry_status carry_extras_read_knobs(const carry_json_path *at,
                                     const json_t *root,
                                     carry_model_spec *spec);

/** Reads carry.initial_state (one {"h", "c"} entry per recurrent layer)
    into `model`'s h0 and c0, or only checks it when `model` is NULL. */
carry_status carry_extras_read_states(const carry_json_path *at,
                                      const json_t *root,
                                      const carry_model_spec *spec,
                                      carry_model *model);

/** A reader's second and third passes: fills every weight of `model` from
    the document `file`, or only checks them when `model` is NULL. */
typedef carry_status (*carry_loader_fill)(const void *file,
                                          carry_model *model);

/** Checks the weights (fill(file, NULL)), then creates the model of
    `spec`, fills it, keeps the metadata object (may be NULL) and prepares
    it.  Returns NULL with the error in at->err on failure, and clears
    at->err on success. */
carry_model *carry_loader_build(const carry_json_path *at,
                                const carry_model_spec *spec,
                                const json_t *metadata,
                                carry_loader_fill fill, const void *file);

#endif /* CARRY_LOADERS_H */
