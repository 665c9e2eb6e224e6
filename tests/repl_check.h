/* SPDX-License-Identifier: MIT
 *
 * repl_check.h — what a frame pm_repl_decode() accepted must hold (every
 * field rule of proto/repl.h, pointers inside the frame, the bytes it used),
 * and that its encoder writes it back byte for byte: the unit suite's
 * property loops (test_repl_proto.c) and the fuzz target (fuzz_repl.c)
 * check every accepted frame with it.
 */
#ifndef POMAI_TESTS_REPL_CHECK_H
#define POMAI_TESTS_REPL_CHECK_H

#include <stddef.h>
#include <stdint.h>

#include "repl.h"

/* NULL when the frame f, decoded from the used bytes at b, keeps every rule
 * and re-encodes to those bytes; else the rule it breaks, as text. */
const char *repl_frame_check(const uint8_t *b, size_t used, const struct pm_repl_frame *f);

#endif
