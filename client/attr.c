/* SPDX-License-Identifier: MIT
 *
 * client/attr.c — attribute records on the client side: built field by field
 * and read back, in the wire's layout (docs/protocol.md, "Attributes"):
 *
 *   u8 nfields, then per field: u8 type (1 numeric, 2 tag), u8 name length,
 *   name, and an f64 LE (numeric) or a u8 length and the bytes (tag).
 *
 * The bounds are the server's (pomai.h PM_CLIENT_ATTR_*): a record built here
 * is one the server accepts.
 */
#include <math.h>
#include <string.h>

#include "pomai.h"

#define TYPE_NUM 1u
#define TYPE_TAG 2u

void pm_client_attr_init(struct pm_client_attr *a)
{
	a->buf[0] = 0;
	a->len = 1;
}

static bool name_ok(const char *name, size_t n)
{
	if (n == 0 || n > PM_CLIENT_ATTR_NAME_BYTES_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = name[i];
		bool alpha = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_';
		if (!alpha && !(i > 0 && ch >= '0' && ch <= '9'))
			return false;
	}
	return true;
}

/* Room for a field named name with `extra` value bytes: its start, or NULL. */
static uint8_t *field_add(struct pm_client_attr *a, uint8_t type, const char *name, size_t extra)
{
	size_t n = name ? strlen(name) : 0;
	if (a->len == 0 || !name_ok(name, n) || a->buf[0] >= PM_CLIENT_ATTR_FIELDS_MAX ||
	    PM_CLIENT_ATTR_BYTES_MAX - a->len < 2 + n + extra)
		return NULL;
	struct pm_client_attr_field f;
	uint32_t pos = 0;
	while (pm_client_attr_next(a->buf, a->len, &pos, &f))
		if (f.name_len == n && !memcmp(f.name, name, n))
			return NULL; /* a name twice */
	uint8_t *p = a->buf + a->len;
	p[0] = type;
	p[1] = (uint8_t)n;
	memcpy(p + 2, name, n);
	a->len += (uint32_t)(2 + n + extra);
	a->buf[0]++;
	return p + 2 + n;
}

enum pm_client_status pm_client_attr_num(struct pm_client_attr *a, const char *name, double v)
{
	if (a == NULL)
		return PM_CLIENT_E_ARG;
	uint8_t *p = isfinite(v) ? field_add(a, TYPE_NUM, name, 8) : NULL;
	if (!p)
		return PM_CLIENT_E_ATTR;
	uint64_t bits;
	memcpy(&bits, &v, 8);
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(bits >> (8 * i));
	return PM_CLIENT_OK;
}

enum pm_client_status pm_client_attr_tag(struct pm_client_attr *a, const char *name,
					 const void *tag, size_t tag_len)
{
	if (a == NULL || (tag == NULL && tag_len))
		return PM_CLIENT_E_ARG;
	uint8_t *p = tag_len <= PM_CLIENT_ATTR_TAG_BYTES_MAX ? field_add(a, TYPE_TAG, name, 1 + tag_len)
							     : NULL;
	if (!p)
		return PM_CLIENT_E_ATTR;
	p[0] = (uint8_t)tag_len;
	if (tag_len)
		memcpy(p + 1, tag, tag_len);
	return PM_CLIENT_OK;
}

bool pm_client_attr_next(const uint8_t *rec, uint32_t len, uint32_t *pos,
			 struct pm_client_attr_field *f)
{
	uint32_t p = *pos ? *pos : 1;
	if (len == 0 || p + 2 > len)
		return false;
	f->is_tag = rec[p] == TYPE_TAG;
	f->name_len = rec[p + 1];
	f->name = (const char *)rec + p + 2;
	p += 2 + f->name_len;
	if ((rec[p - 2 - f->name_len] != TYPE_NUM && !f->is_tag) || p > len)
		return false;
	if (!f->is_tag) {
		if (len - p < 8)
			return false;
		uint64_t bits = 0;
		for (int i = 0; i < 8; i++)
			bits |= (uint64_t)rec[p + i] << (8 * i);
		memcpy(&f->num, &bits, 8);
		*pos = p + 8;
		return true;
	}
	if (p >= len || len - p - 1 < rec[p])
		return false;
	f->tag_len = rec[p];
	f->tag = rec + p + 1;
	*pos = p + 1 + f->tag_len;
	return true;
}
