/*
 * fuzz-vcard.c - libFuzzer target for src/mail/vcard.c.
 *
 * Parses the input as one vCard with small limits and checks that every
 * string handed out lies inside the parser's copy, names are upper-case
 * name characters, the limits hold, an error leaves the vcard empty, and
 * vcard_text stays within its buffer's bound.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vcard.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_name(const char *s)
{
	if (*s == '\0')
		abort();
	for (; *s; s++)
		if (!((*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '-'))
			abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vcard_limits lim = {4096, 200, 50, 512};
	struct vcard v;
	char err[128];
	enum vcard_error e = vcard_parse((const char *)data, size, &lim, &v, err, sizeof err);
	if (e != VCARD_OK) {
		if (v.props != NULL || v.text != NULL || v.n_props != 0 || err[0] == '\0')
			abort();
		return 0;
	}
	if ((v.version != 3 && v.version != 4) || v.n_props > lim.max_props)
		abort();
	const char *lo = v.text, *hi = v.text + size + 1;
	struct buf b = BUF_INIT;
	buf_init(&b, 64);
	for (size_t i = 0; i < v.n_props; i++) {
		const struct vcard_prop *p = &v.props[i];
		check_name(p->name);
		if (p->name < lo || p->value < lo || p->value + p->value_len >= hi ||
		    p->value[p->value_len] != '\0' || strlen(p->value) != p->value_len)
			abort();
		if (p->group != NULL && (p->group < lo || p->group >= hi))
			abort();
		for (size_t k = 0; k < p->n_params; k++) {
			check_name(p->params[k].name);
			if (vcard_param(p, p->params[k].name) == NULL)
				abort();
		}
		if (vcard_find(&v, p->name, NULL) == NULL)
			abort();
		buf_reset(&b);
		if (vcard_text(p->value, p->value_len, ' ', ',', &b) == 0 && b.len > p->value_len)
			abort();
		if (b.len > 64)
			abort();
	}
	buf_free(&b);
	vcard_free(&v);
	return 0;
}
