/* SPDX-License-Identifier: MIT
 *
 * cli_repl.c — lines for pomai-cli's interactive mode (cli_repl.h).
 *
 * A terminal gets libedit through its readline-compatible calls (Debian's
 * libedit-dev): line editing, history recalled with the arrows and kept in
 * a file between runs. libedit rather than GNU readline: BSD-licensed, so
 * the MIT-licensed pomai-cli can link it without taking on the GPL. Piped
 * input is read as plain lines with no prompt, so a script of commands runs
 * the same way (`pomai-cli < commands.txt`).
 */
#include "cli_repl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <editline/readline.h>

static struct {
	bool tty;
	const char *const *words;        /* completed at a line's start (NULL-terminated) */
	size_t next_word;                /* the completion generator's place in words */
	char history[CLI_HISTORY_PATH_BYTES];
	char *edited;                    /* libedit's last line (malloc'd) */
	char plain[CLI_LINE_BYTES_MAX + 2]; /* the last piped line, its newline, NUL */
} rd;

void cli_history_path(char *out)
{
	const char *env = getenv("POMAI_CLI_HISTORY");
	const char *home = getenv("HOME");
	out[0] = '\0';
	if (env)
		snprintf(out, CLI_HISTORY_PATH_BYTES, "%s", env);
	else if (home && *home)
		snprintf(out, CLI_HISTORY_PATH_BYTES, "%s/.pomai_cli_history", home);
}

/* libedit's generator: the next of rd.words that starts with text (state 0:
 * from the first), malloc'd as libedit frees it; NULL after the last. */
static char *next_word(const char *text, int state)
{
	size_t n = strlen(text);
	if (state == 0)
		rd.next_word = 0;
	while (rd.words[rd.next_word]) {
		const char *w = rd.words[rd.next_word++];
		if (strncmp(w, text, n) == 0)
			return strdup(w);
	}
	return NULL;
}

/* Tab: a command at a line's start; file names elsewhere (load FILE, --file). */
static char **complete_line(const char *text, int start, int end)
{
	(void)end;
	if ((size_t)start > strspn(rl_line_buffer, " \t")) /* not the first word */
		return NULL; /* libedit then completes a file name */
	rl_attempted_completion_over = 1;
	return rl_completion_matches(text, next_word);
}

void cli_repl_open(const char *history, const char *const *words)
{
	rd.tty = isatty(STDIN_FILENO) == 1;
	rd.words = words;
	snprintf(rd.history, sizeof(rd.history), "%s", history);
	if (!rd.tty)
		return;
	rl_readline_name = "pomai-cli"; /* the application name ~/.editrc sees */
	rl_attempted_completion_function = complete_line;
	using_history();
	stifle_history(CLI_HISTORY_LINES_MAX);
	if (rd.history[0])
		read_history(rd.history); /* none yet: the first run */
}

static char *plain_line(void)
{
	if (!fgets(rd.plain, sizeof(rd.plain), stdin))
		return NULL;
	size_t n = strlen(rd.plain);
	if (n && rd.plain[n - 1] == '\n') {
		rd.plain[n - 1] = '\0';
		return rd.plain;
	}
	if (n <= CLI_LINE_BYTES_MAX || feof(stdin)) /* the last line, with no newline */
		return rd.plain;
	int ch;
	while ((ch = getchar()) != EOF && ch != '\n') /* the rest of a line too long */
		;
	fprintf(stderr, "pomai-cli: a line longer than %u bytes: skipped\n", CLI_LINE_BYTES_MAX);
	rd.plain[0] = '\0';
	return rd.plain;
}

/* The history file, the user's alone (its lines hold keys and values). */
static void save_history(void)
{
	mode_t old = umask(S_IRWXG | S_IRWXO);
	if (rd.tty && rd.history[0] && write_history(rd.history) != 0)
		fprintf(stderr, "pomai-cli: history not saved in %s\n", rd.history);
	umask(old);
}

char *cli_repl_line(const char *prompt)
{
	if (!rd.tty)
		return plain_line();
	free(rd.edited);
	rd.edited = readline(prompt);
	if (!rd.edited) /* Ctrl-D: the shell's prompt on a line of its own */
		fputc('\n', stdout);
	if (rd.edited && rd.edited[strspn(rd.edited, " \t")] != '\0') {
		add_history(rd.edited);
		save_history(); /* now: Ctrl-C (SIGINT ends pomai-cli) loses none of it */
	}
	return rd.edited;
}

void cli_repl_close(void)
{
	save_history();
	free(rd.edited);
	rd.edited = NULL;
}

/* ---------------------------------------------------------------- words */

int cli_split(char *line, char **words, int max, const char **why)
{
	int n = 0;
	char *in = line, *out = line;
	for (;;) {
		in += strspn(in, " \t\r\n");
		if (*in == '\0')
			return n;
		if (n == max) {
			*why = "too many words";
			return -1;
		}
		words[n++] = out;
		char quote = 0;
		for (; *in && (quote || !strchr(" \t\r\n", *in)); in++) {
			if (quote == '\'' && *in == '\'')
				quote = 0;
			else if (quote == '"' && *in == '"')
				quote = 0;
			else if (!quote && (*in == '\'' || *in == '"'))
				quote = *in;
			else if (*in == '\\' && in[1] && quote != '\'' &&
				 (!quote || in[1] == '"' || in[1] == '\\'))
				*out++ = *++in;
			else
				*out++ = *in;
		}
		if (quote) {
			*why = "a quote is not closed";
			return -1;
		}
		if (*in)
			in++;
		*out++ = '\0';
	}
}
