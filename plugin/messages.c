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
  if (size == 0) {
    return 0;
  }
  const size_t n = carry_utf8_prefix(text, size - 1);
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
  if (!path || length == 0) {
    set_error(self, "error: patch:Set of the model without a file path");
  } else if (length >= CARRY_PATH_SIZE) {
    set_error(self, "error: the model's path is too long");
  } else {
    // Only the newest request of a cycle goes to the worker (after the
    // loop), and it waits here until the worker takes it.
    memcpy(self->pending_path, path, length);
    self->pending_length = length;
    for (int k = 0; k < CARRY_KNOB_PORTS; ++k) {
      self->pending_knobs[k] = self->knobs[k].target;
    }
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
    carry_send_pending(self);
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
  carry_send_pending(self);
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

/** patch:Set of `property` to a Path or String value.  A message that
    does not fit is taken back whole, so the sequence stays well formed;
    false then. */
static bool write_set(carry_plugin *self, LV2_URID property, LV2_URID type,
                      const char *value)
{
  LV2_Atom_Forge *forge = &self->forge;
  LV2_Atom *sequence = (LV2_Atom *)self->notify;
  const uint32_t offset = forge->offset, size = sequence->size;
  LV2_Atom_Forge_Frame frame;
  const uint32_t length = (uint32_t)strlen(value);
  bool ok = lv2_atom_forge_frame_time(forge, 0) &&
            lv2_atom_forge_object(forge, &frame, 0, self->uris.patch_Set);
  if (ok) {
    ok = lv2_atom_forge_key(forge, self->uris.patch_property) &&
         lv2_atom_forge_urid(forge, property) &&
         lv2_atom_forge_key(forge, self->uris.patch_value) &&
         lv2_atom_forge_typed_string(forge, type, value, length);
    lv2_atom_forge_pop(forge, &frame);
  }
  if (!ok) {
    forge->offset = offset;
    sequence->size = size;
  }
  return ok;
}

/** Writes one due report and clears its bit; false if it did not fit. */
static bool write_report(carry_plugin *self, carry_report bit,
                         LV2_URID property, LV2_URID type, const char *value)
{
  if (!(self->report & bit)) {
    return true;
  }
  if (!write_set(self, property, type, value)) {
    return false; // again next cycle
  }
  self->report &= ~(unsigned)bit;
  return true;
}

void carry_end_notify(carry_plugin *self)
{
  if (!self->notify) {
    return;
  }
  const carry_uris *u = &self->uris;
  if (write_report(self, REPORT_MODEL, u->carry_model, u->atom_Path,
                   self->path) &&
      write_report(self, REPORT_NAME, u->carry_modelName, u->atom_String,
                   self->name)) {
    write_report(self, REPORT_STATUS, u->carry_status, u->atom_String,
                 self->status);
  }
  lv2_atom_forge_pop(&self->forge, &self->notify_frame);
}
