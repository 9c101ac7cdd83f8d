/*
  The patch messages: reading patch:Set and patch:Get from the control port,
  and answering on the notify port with patch:Set of the model's path, its
  name and the status line.
*/

#include "plugin.h"

#include <lv2/atom/util.h>
#include <lv2/patch/patch.h>

#include <string.h>

size_t carry_copy_text(char *buffer, size_t size, const char *text)
{
  size_t n = strlen(text);
  if (size == 0) {
    return 0;
  }
  n = n < size - 1 ? n : size - 1;
  memcpy(buffer, text, n);
  buffer[n] = '\0';
  return n;
}

/** The string of a Path or String atom, or NULL. */
static const char *path_of(const carry_plugin *self, const LV2_Atom *value,
                           uint32_t *length)
{
  if (!value || (value->type != self->uris.atom_Path &&
                 value->type != self->uris.atom_String)) {
    return NULL;
  }
  const char *text = (const char *)LV2_ATOM_BODY_CONST(value);
  *length = value->size ? (uint32_t)strnlen(text, value->size) : 0;
  return text;
}

static void set_error(carry_plugin *self, const char *status)
{
  carry_copy_text(self->status, sizeof(self->status), status);
  self->report |= REPORT_STATUS;
}

static void on_set(carry_plugin *self, const LV2_Atom_Object *object)
{
  const LV2_Atom_URID *property = NULL;
  const LV2_Atom *value = NULL;
  lv2_atom_object_get(object, self->uris.patch_property, &property,
                      self->uris.patch_value, &value, 0);
  if (!property || property->atom.type != self->uris.atom_URID ||
      property->body != self->uris.carry_model) {
    return; // not ours, or read-only
  }
  uint32_t length = 0;
  const char *path = path_of(self, value, &length);
  float knob_ports[CARRY_KNOB_PORTS];
  for (int k = 0; k < CARRY_KNOB_PORTS; ++k) {
    knob_ports[k] = self->knobs[k].target;
  }
  if (!path || length == 0) {
    set_error(self, "error: patch:Set of the model without a file path");
  } else if (length >= CARRY_PATH_SIZE) {
    set_error(self, "error: the model's path is too long");
  } else if (!carry_request_load(self, self->schedule, path, length,
                                 knob_ports)) {
    set_error(self, "error: the host's worker did not take the request");
  }
}

static void on_get(carry_plugin *self, const LV2_Atom_Object *object)
{
  const LV2_Atom_URID *property = NULL;
  lv2_atom_object_get(object, self->uris.patch_property, &property, 0);
  if (!property) {
    self->report |= REPORT_ALL;
  } else if (property->atom.type == self->uris.atom_URID) {
    const LV2_URID key = property->body;
    self->report |= key == self->uris.carry_model       ? REPORT_MODEL
                    : key == self->uris.carry_modelName ? REPORT_NAME
                    : key == self->uris.carry_status    ? REPORT_STATUS
                                                        : 0u;
  }
}

void carry_read_control(carry_plugin *self)
{
  if (!self->control) {
    return;
  }
  LV2_ATOM_SEQUENCE_FOREACH (self->control, event) {
    if (!lv2_atom_forge_is_object_type(&self->forge, event->body.type)) {
      continue;
    }
    const LV2_Atom_Object *object = (const LV2_Atom_Object *)&event->body;
    if (object->body.otype == self->uris.patch_Set) {
      on_set(self, object);
    } else if (object->body.otype == self->uris.patch_Get) {
      on_get(self, object);
    }
  }
}

/* ------------------------------------------------------------------------ */
/* Notify */

void carry_begin_notify(carry_plugin *self)
{
  if (!self->notify) {
    return;
  }
  const uint32_t capacity = self->notify->atom.size;
  lv2_atom_forge_set_buffer(&self->forge, (uint8_t *)self->notify, capacity);
  lv2_atom_forge_sequence_head(&self->forge, &self->notify_frame, 0);
}

/** patch:Set of `property` to a Path or String value; false if the buffer
    is full. */
static bool write_set(carry_plugin *self, LV2_URID property, LV2_URID type,
                      const char *value)
{
  LV2_Atom_Forge *forge = &self->forge;
  LV2_Atom_Forge_Frame frame;
  const uint32_t length = (uint32_t)strlen(value);
  if (!lv2_atom_forge_frame_time(forge, 0) ||
      !lv2_atom_forge_object(forge, &frame, 0, self->uris.patch_Set)) {
    return false;
  }
  const bool ok = lv2_atom_forge_key(forge, self->uris.patch_property) &&
                  lv2_atom_forge_urid(forge, property) &&
                  lv2_atom_forge_key(forge, self->uris.patch_value) &&
                  lv2_atom_forge_typed_string(forge, type, value, length);
  lv2_atom_forge_pop(forge, &frame);
  return ok;
}

void carry_end_notify(carry_plugin *self)
{
  if (!self->notify) {
    return;
  }
  const carry_uris *u = &self->uris;
  bool ok = true;
  if (self->report & REPORT_MODEL) {
    ok = write_set(self, u->carry_model, u->atom_Path, self->path);
  }
  if (ok && (self->report & REPORT_NAME)) {
    ok = write_set(self, u->carry_modelName, u->atom_String, self->name);
  }
  if (ok && (self->report & REPORT_STATUS)) {
    ok = write_set(self, u->carry_status, u->atom_String, self->status);
  }
  if (ok) {
    self->report = 0; // else try again next cycle, with an empty buffer
  }
  lv2_atom_forge_pop(&self->forge, &self->notify_frame);
}
