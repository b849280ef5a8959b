// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/btf.h>
#include "kenum.h"

struct kenum_entry {
	uint32_t value;
	char *name;	/* a copy: the BTF is freed once the programs are loaded */
};

struct kenum {
	size_t n;
	struct kenum_entry e[];
};

static int cmp_entry(const void *a, const void *b)
{
	const struct kenum_entry *x = a, *y = b;

	return x->value < y->value ? -1 : x->value > y->value;
}

struct kenum *kenum_load(const struct btf *btf, const char *name, const char *prefix)
{
	size_t plen = prefix ? strlen(prefix) : 0;
	const struct btf_type *t;
	const struct btf_enum *v;
	struct kenum *k;
	__s32 id;

	id = btf__find_by_name_kind(btf, name, BTF_KIND_ENUM);
	if (id < 0) {
		errno = ENOENT;
		return NULL;
	}
	t = btf__type_by_id(btf, id);
	k = calloc(1, sizeof(*k) + btf_vlen(t) * sizeof(k->e[0]));
	if (!k) {
		errno = ENOMEM;
		return NULL;
	}
	v = btf_enum(t);
	for (unsigned i = 0; i < btf_vlen(t); i++, v++) {
		const char *n = btf__name_by_offset(btf, v->name_off);

		if (!n)
			continue;
		if (plen && !strncmp(n, prefix, plen))
			n += plen;
		k->e[k->n].value = (uint32_t)v->val;
		k->e[k->n].name = strdup(n);
		if (!k->e[k->n].name) {
			kenum_free(k);
			errno = ENOMEM;
			return NULL;
		}
		k->n++;
	}
	qsort(k->e, k->n, sizeof(k->e[0]), cmp_entry);
	return k;
}

void kenum_free(struct kenum *k)
{
	for (size_t i = 0; k && i < k->n; i++)
		free(k->e[i].name);
	free(k);
}

const char *kenum_name(uint32_t value, void *ctx)
{
	const struct kenum *k = ctx;
	struct kenum_entry key = { .value = value }, *e;

	if (!k)
		return NULL;
	e = bsearch(&key, k->e, k->n, sizeof(k->e[0]), cmp_entry);
	return e ? e->name : NULL;
}

int64_t kenum_value(const struct kenum *k, const char *name)
{
	for (size_t i = 0; k && i < k->n; i++)
		if (!strcmp(k->e[i].name, name))
			return k->e[i].value;
	return -1;
}
