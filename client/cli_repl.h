/* SPDX-License-Identifier: MIT
 *
 * cli_repl.h — the line side of pomai-cli's interactive mode (cli_repl.c):
 * lines read with libedit (editing, history kept in a file) when standard
 * input is a terminal, plain lines otherwise (a script piped in), and a line
 * split into words the way a shell would for the simple cases (blanks,
 * 'single' and "double" quotes, backslash). What a word means is
 * pomai-cli.c's business.
 */
#ifndef POMAI_CLIENT_CLI_REPL_H
#define POMAI_CLIENT_CLI_REPL_H

#include <stdbool.h>
#include <stddef.h>

/* Lines of history kept in memory and in the file: redis-cli's order of
 * magnitude, a few hundred KiB at most of a user's home. */
#define CLI_HISTORY_LINES_MAX 1000
/* The longest line read: a command with a vector of PM_CLIENT_DIM_MAX (4096)
 * components written out at ~16 characters each fits. */
#define CLI_LINE_BYTES_MAX (1u << 17)
/* The history file's path, at most. */
#define CLI_HISTORY_PATH_BYTES 4096u

/* Where history is kept: $POMAI_CLI_HISTORY (empty: nowhere), else
 * $HOME/.pomai_cli_history; "" when neither says (out: CLI_HISTORY_PATH_BYTES). */
void cli_history_path(char *out);

/* Open the reader: libedit when standard input is a terminal (history read
 * from `history`, "" for none; Tab completes a line's first word from
 * `words`, NULL-terminated and kept, and file names after it), plain lines
 * otherwise. */
void cli_repl_open(const char *history, const char *const *words);
/* The next line, without its newline, after `prompt` (a terminal only);
 * NULL at the end of input. Valid until the next call. Non-blank lines read
 * from a terminal join the history. */
char *cli_repl_line(const char *prompt);
/* Write the history back (a terminal only; a new file is the user's alone,
 * mode 0600) and free what the reader holds. */
void cli_repl_close(void);

/* Split line (in place) into at most max words: blanks separate, '...'
 * keeps everything literally, "..." keeps all but \" and \\, a backslash
 * outside quotes keeps the next character. The word count, or -1 with
 * *why set (an unclosed quote, too many words). */
int cli_split(char *line, char **words, int max, const char **why);

#endif
