// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * libFuzzer target: arbitrary record streams into the correlator, its
 * verdicts through the JSON and text writers. The input format and the
 * checks are in fuzz_one.c. Build and run: make fuzz (until stopped) or
 * make fuzz-ci (60 s from the checked-in corpus); see tests/fuzz/fuzz.mk.
 */
#include "fuzz_one.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return ct_fuzz_one(data, size);
}
