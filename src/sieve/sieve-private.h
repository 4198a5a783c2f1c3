/*
 * sieve-private.h - what the files of src/sieve share: tokens, the
 * checked tree, the command/test definitions and the extension table, and
 * the run state.  Not for use outside src/sieve.
 */
#ifndef TERN_SIEVE_PRIVATE_H
#define TERN_SIEVE_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "header.h"
#include "sieve.h"

/* ---- lexer (sieve-lex.c), RFC 5228 section 8.1 ---- */

enum sieve_tok {
	TOK_EOF,
	TOK_IDENT,
	TOK_TAG, /* str holds the identifier without ':' */
	TOK_NUMBER,
	TOK_STRING, /* quoted or multi-line; str holds the decoded value */
	TOK_LBRACKET,
	TOK_RBRACKET,
	TOK_LPAREN,
	TOK_RPAREN,
	TOK_LBRACE,
	TOK_RBRACE,
	TOK_COMMA,
	TOK_SEMI,
};

struct sieve_token {
	enum sieve_tok type;
	int line, col;
	char *str; /* owned, NUL-terminated (may hold NULs: see len) */
	size_t len;
	uint64_t num;
};

struct sieve_lexer {
	const char *p;
	size_t n, pos;
	int line, col;
	size_t max_string;
	struct sieve_error *err;
};

void sieve_lex_init(struct sieve_lexer *lx, const char *p, size_t n, size_t max_string,
		    struct sieve_error *err);
/* Reads the next token into t (t->str owned by the caller: free it).
 * Returns 0, or -1 with lx->err set (t then holds nothing to free). */
int sieve_lex_next(struct sieve_lexer *lx, struct sieve_token *t);
/* Sets err to line:col and a printf-style message; returns -1. */
int sieve_fail(struct sieve_error *err, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* ---- tree (sieve-parse.c) ---- */

struct sieve_strlist {
	char **s;
	size_t n;
};

enum sieve_match { MATCH_IS, MATCH_CONTAINS, MATCH_MATCHES, MATCH_COUNT, MATCH_VALUE };
enum sieve_cmp { CMP_OCTET, CMP_CASEMAP, CMP_NUMERIC };
/* the body transform (RFC 5173 5) */
enum sieve_body { BODY_TEXT, BODY_RAW, BODY_CONTENT };
/* the relation of :count and :value (RFC 5231 4) */
enum sieve_rel { REL_GT, REL_GE, REL_LT, REL_LE, REL_EQ, REL_NE };
enum sieve_part { PART_ALL, PART_LOCAL, PART_DOMAIN, PART_USER, PART_DETAIL };

/* Groups of tagged arguments a command or test accepts (sieve_def.tags). */
enum {
	TAGS_MATCH = 1 << 0,     /* :is :contains :matches, :comparator */
	TAGS_PART = 1 << 1,      /* :all :localpart :domain */
	TAGS_SIZE = 1 << 2,      /* :over :under (one, required) */
	TAGS_COPY = 1 << 3,      /* :copy (RFC 3894) */
	TAGS_CREATE = 1 << 4,    /* :create (RFC 5490) */
	TAGS_FLAGS = 1 << 5,     /* :flags LIST (RFC 5232) */
	TAGS_SUBADDR = 1 << 6,   /* :user :detail (RFC 5233), with TAGS_PART */
	TAGS_VACATION = 1 << 7,  /* :days :subject :from :addresses :mime :handle (RFC 5230) */
	TAGS_VACSEC = 1 << 8,    /* :seconds (RFC 6131) */
	TAGS_SET = 1 << 9,       /* :lower :upper ... :length (RFC 5229 4.1) */
	TAGS_REL = 1 << 10,      /* :count :value (RFC 5231), with TAGS_MATCH */
	TAGS_BODY = 1 << 11,     /* :raw :content :text (RFC 5173) */
	TAGS_INDEX = 1 << 12,    /* :index N :last (RFC 5260 6) */
	TAGS_ZONE = 1 << 13,     /* :zone Z (RFC 5260 4.1) */
	TAGS_ORIGZONE = 1 << 14, /* :originalzone (RFC 5260 4.1) */
	TAGS_DUPLICATE = 1 << 15, /* :handle :header/:uniqueid :seconds :last (RFC 7352) */
	TAGS_ADDLAST = 1 << 16,   /* :last of addheader (RFC 5293 4) */
	TAGS_DELINDEX = 1 << 17,  /* :index N :last of deleteheader (RFC 5293 5) */
	TAGS_INCLUDE = 1 << 18,   /* :personal/:global :once :optional (RFC 6609) */
	TAGS_PERCENT = 1 << 19,   /* :percent of spamtest (RFC 5235 3.2) */
};

/* set modifiers (RFC 5229 4.1), n->mods */
enum {
	MOD_LOWER = 1 << 0,
	MOD_UPPER = 1 << 1,
	MOD_LOWERFIRST = 1 << 2,
	MOD_UPPERFIRST = 1 << 3,
	MOD_QUOTEWILDCARD = 1 << 4,
	MOD_LENGTH = 1 << 5,
};

/* Bounds of the variables extension (docs/sieve.md "Limits"). */
#define SIEVE_MAX_VARIABLES 256 /* distinct variable names in a script */
#define SIEVE_MAX_VARNAME 64    /* bytes of a variable name */
#define SIEVE_MAX_VARVALUE 4096 /* bytes a variable holds (longer: truncated) */
#define SIEVE_MAX_MATCHVAR 9    /* ${0} to ${9} */

struct sieve_node;
struct sieve_run;

/* A command or a test.  sig lists the positional arguments in order:
 * 's' a string, 'l' a string list (a single string is accepted), 'n' a
 * number.  run returns for a command 0 or -1 (runtime error, r->error
 * set); for a test 1 (true), 0 (false) or -1. */
struct sieve_def {
	const char *name;
	bool is_test;
	const char *sig;
	int tests; /* 0: none, 1: one test, 2: a test list */
	bool block;
	unsigned tags;
	int (*run)(struct sieve_run *r, const struct sieve_node *n);
	/* Checks the parsed arguments (NULL: nothing to check): 0, or -1
	 * with err set (sieve_fail). */
	int (*check)(const struct sieve_node *n, struct sieve_error *err);
};

/* sig: a trailing 'L' is an optional string list (deleteheader's value
 * patterns, RFC 5293 5).  A leading 'o' is an optional string list (imap4flags' variable
 * name, RFC 5232 3), present only when all positional arguments are
 * given and the variables extension is required; n->has_opt says so. */

/* One extension (RFC 5228 3.2 capability string) and what it adds. */
struct sieve_ext {
	const char *name;
	const struct sieve_def *defs;
	size_t n_defs;
	unsigned tags;        /* tag groups it enables (TAGS_COPY, ...) */
	unsigned comparators; /* bit per enum sieve_cmp it enables; 0 none */
};

/* The table (sieve-ext.c): index 0 is the base language (no require). */
extern const struct sieve_ext *const sieve_ext_table[];
extern const size_t sieve_ext_count;

extern const struct sieve_ext sieve_ext_base;
extern const struct sieve_ext sieve_ext_fileinto;
extern const struct sieve_ext sieve_ext_reject;
extern const struct sieve_ext sieve_ext_ereject;
extern const struct sieve_ext sieve_ext_envelope;
extern const struct sieve_ext sieve_ext_copy;
extern const struct sieve_ext sieve_ext_mailbox;
extern const struct sieve_ext sieve_ext_imap4flags;
extern const struct sieve_ext sieve_ext_subaddress;
extern const struct sieve_ext sieve_ext_vacation;
extern const struct sieve_ext sieve_ext_vacation_seconds;
extern const struct sieve_ext sieve_ext_variables;
extern const struct sieve_ext sieve_ext_relational;
extern const struct sieve_ext sieve_ext_numeric;
extern const struct sieve_ext sieve_ext_body;
extern const struct sieve_ext sieve_ext_date;
extern const struct sieve_ext sieve_ext_index;
extern const struct sieve_ext sieve_ext_duplicate;
extern const struct sieve_ext sieve_ext_editheader;
extern const struct sieve_ext sieve_ext_include;
extern const struct sieve_ext sieve_ext_environment;
extern const struct sieve_ext sieve_ext_ihave;
extern const struct sieve_ext sieve_ext_encoded;
extern const struct sieve_ext sieve_ext_spamtest;
extern const struct sieve_ext sieve_ext_spamtestplus;
extern const struct sieve_ext sieve_ext_virustest;
/* encoded-character (RFC 5228 2.4.2.4, sieve-ext-encoded.c): replaces
 * the sequences of (*s)[0..*len) by what they encode (*s reallocated,
 * NUL-terminated).  0; -1 a well-formed ${unicode:...} out of range; -2
 * a well-formed sequence giving a NUL (not supported). */
int sieve_encoded_decode(char **s, size_t *len);
/* Whether ihave (RFC 5463) reports extension name as available. */
bool sieve_ihave_ok(const char *name);

struct sieve_node {
	const struct sieve_def *def;
	int line, col;
	enum sieve_match match;
	enum sieve_cmp cmp;
	enum sieve_rel rel;           /* with MATCH_COUNT, MATCH_VALUE */
	enum sieve_body body;         /* body transform */
	struct sieve_strlist content; /* :content types */
	uint64_t index;               /* :index (RFC 5260 6); 0: not given */
	bool last;                    /* :last */
	bool origzone;                /* :originalzone */
	struct sieve_strlist zone;    /* :zone (one string); empty: not given */
	enum sieve_part part;
	bool over;   /* size :over (else :under) */
	bool copy;   /* :copy */
	bool create; /* :create */
	bool has_flags;
	bool has_vars;               /* some string holds a variable reference: expand at run */
	bool has_opt;                /* the optional leading argument of an 'o' sig was given */
	unsigned mods;               /* set modifiers, MOD_* */
	struct sieve_strlist flags;  /* :flags */
	struct sieve_strlist pos[3]; /* positional strings / lists */
	uint64_t number;             /* the positional number */
	/* vacation (RFC 5230, 6131) */
	bool has_period;                                       /* :days or :seconds given */
	bool period_seconds;                                   /* it was :seconds */
	uint64_t period;                                       /* its number */
	bool mime;                                             /* :mime */
	struct sieve_strlist subject, from, handle, addresses; /* empty: not given */
	/* duplicate (RFC 7352): :header NAME or :uniqueid VALUE; empty: neither */
	struct sieve_strlist dupid;
	bool dupid_header; /* dupid is a :header name */
	/* include (RFC 6609) */
	bool inc_global, inc_once, inc_optional;
	/* spamtest :percent (RFC 5235 3.2.2) */
	bool percent;
	struct sieve_node **tests;
	size_t n_tests;
	struct sieve_node *block; /* first command of the block */
	struct sieve_node *next;  /* next command in the same block */
	struct sieve_node *alt;   /* elsif/else following an if or elsif */
};

struct sieve_script {
	struct sieve_node *top; /* first command */
	struct sieve_limits lim;
	bool variables; /* "variables" required: :matches sets match variables */
};

/* Bounds of include (docs/sieve.md "Limits"). */
#define SIEVE_MAX_INCLUDE_DEPTH 10 /* scripts including scripts */
#define SIEVE_MAX_INCLUDES 32      /* distinct scripts included in one run */

/* A script included during a run (RFC 6609), compiled once per run. */
struct sieve_inc {
	bool global;
	char *name;
	struct sieve_script *script;
	bool active; /* running now (an include of it again is a loop) */
	bool ran;    /* has run (for :once) */
};

void sieve_strlist_free(struct sieve_strlist *l);

/* ---- run (sieve-run.c) ---- */

struct sieve_run {
	const struct sieve_script *script;
	const struct sieve_input *in;
	struct header hdr;
	bool hdr_ok;
	struct sieve_result *res;
	bool implicit_keep;
	bool stopped;
	uint64_t steps;
	size_t redirects;
	struct sieve_strlist flags; /* the imap4flags internal variable */
	/* variables (RFC 5229): names (lowercase) and values, at most the
	 * distinct names the script sets (checked at compile time) */
	struct sieve_strlist var_names, var_values;
	char *match[SIEVE_MAX_MATCHVAR + 1]; /* ${0}..${9}; NULL: empty */
	/* body (RFC 5173), read once per run: the raw body, and each
	 * entity's content type and text */
	bool body_loaded;
	struct sieve_strlist body_raw, body_types, body_texts;
	int64_t now; /* currentdate's instant (RFC 5260 5), fixed per run; 0: unset */
	/* editheader (RFC 5293): hdr was changed; the texts of added fields */
	bool edited;
	struct sieve_strlist added;
	size_t added_bytes;
	/* include (RFC 6609): the scripts included so far, the depth, a
	 * `return` in progress; the global variables and the names the
	 * running script declared global */
	struct sieve_inc *incs;
	size_t n_incs, inc_depth;
	bool returned;
	struct sieve_strlist gvar_names, gvar_values, gdecl;
};

/* Bytes addheader may add in one run (docs/sieve.md "Limits"). */
#define SIEVE_MAX_ADDED 65536

/* editheader: gives a the header section as edited so far (nothing when
 * unedited: a then stores or sends the message as received). */
void sieve_edit_snapshot(struct sieve_run *r, struct sieve_action *a);

/* Runtime error: sets r->res->error; returns -1. */
int sieve_run_fail(struct sieve_run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Adds an action (arg copied, may be NULL).  Merges a duplicate keep,
 * fileinto of the same mailbox or redirect to the same address; checks
 * the limits and the compatibility of reject.  cancels: whether the
 * action cancels the implicit keep.  Returns the action or NULL after
 * sieve_run_fail. */
struct sieve_action *sieve_run_add(struct sieve_run *r, enum sieve_action_type type,
				   const char *arg, bool cancels);
/* Attaches flags to a in the imap4flags way: list if given (a :flags
 * argument), else the internal variable. */
void sieve_run_set_flags(struct sieve_run *r, struct sieve_action *a,
			 const struct sieve_strlist *list);
/* Runs the commands from n on (a block). 0 or -1. */
int sieve_run_block(struct sieve_run *r, const struct sieve_node *n);
/* Evaluates one test. */
int sieve_run_test(struct sieve_run *r, const struct sieve_node *t);

/* ---- matching (sieve-match.c) ---- */

/* The comparator's order of a and b (RFC 4790): <0, 0 or >0.  For
 * i;ascii-numeric a string is the number of its leading digits, one
 * without a leading digit is infinity (greater than every number). */
int sieve_compare(enum sieve_cmp c, const char *a, size_t an, const char *b, size_t bn);

/* Whether value matches key under the node's match type and comparator
 * (:value included; not :count, which sieve_match_any does). */
bool sieve_match(const struct sieve_node *n, const char *value, size_t vlen, const char *key,
		 size_t klen);
/* Whether any of values matches any of keys.  A successful :matches
 * sets the match variables from the first matching pair when the script
 * uses variables. */
bool sieve_match_any(struct sieve_run *r, const struct sieve_node *n,
		     const struct sieve_strlist *values, const struct sieve_strlist *keys);
/* The same without setting match variables (the body test: RFC 5173 6). */
bool sieve_match_any_nocapture(struct sieve_run *r, const struct sieve_node *n,
			       const struct sieve_strlist *values,
			       const struct sieve_strlist *keys);
/* Splits an address header value into addresses and appends the part
 * asked for of each (RFC 5228 2.7.4) to out. */
void sieve_address_parts(const char *value, size_t n, enum sieve_part part,
			 struct sieve_strlist *out);
/* The part of one bare address (local@domain). */
void sieve_address_part(const char *addr, size_t n, enum sieve_part part,
			struct sieve_strlist *out);
void sieve_strlist_add(struct sieve_strlist *l, const char *s, size_t n);

/* The unfolded (and if decode RFC 2047-decoded) values of the fields
 * named name, in message order, appended to out (sieve-base.c). */
void sieve_header_values(struct sieve_run *r, const char *name, bool decode,
			 struct sieve_strlist *out);
/* With :index (RFC 5260 6), keeps only the field it names (none when
 * there are fewer); without, leaves fields alone. */
void sieve_pick_index(const struct sieve_node *n, struct sieve_strlist *fields);

/* The flag helpers of imap4flags (sieve-ext-imap4flags.c): splits each
 * string of src on spaces and adds the flags not yet in dst. */
void sieve_flags_add(struct sieve_strlist *dst, const struct sieve_strlist *src);

/* ---- variables (sieve-ext-variables.c) ---- */

/* Compile time: checks every variable reference in s (no namespace,
 * match variables up to ${9}); sets *has when s holds one.  0 or -1. */
int sieve_vars_check_string(const char *s, int line, int col, bool global_ns, bool *has,
			    struct sieve_error *err);
/* Whether s is "global." and a valid name: a variable of the global
 * namespace of include (RFC 6609). */
bool sieve_var_global_name(const char *s);
/* Whether s is a valid name for set (an identifier of at most
 * SIEVE_MAX_VARNAME bytes). */
bool sieve_var_name_ok(const char *s);
/* s with its variable references replaced (RFC 5229 3), at most
 * lim.max_string bytes; owned by the caller. */
char *sieve_vars_expand(struct sieve_run *r, const char *s, size_t *len);
/* The value of variable name ("" when unset); not owned. */
const char *sieve_var_get(struct sieve_run *r, const char *name);
/* Sets name to value[0..n), truncated to SIEVE_MAX_VARVALUE bytes. */
void sieve_var_set(struct sieve_run *r, const char *name, const char *value, size_t n);
/* Sets the match variables: caps[0..n) (value, length) pairs. */
void sieve_vars_set_match(struct sieve_run *r, const char *const *cap, const size_t *cap_len,
			  size_t n);
/* Frees the run's variables. */
void sieve_vars_free(struct sieve_run *r);

#endif
